// The launch environment of a data-parallel process, as torchrun, `rmkit launch` or a scheduler
// wrapper (scripts/rmkit-srun.sh) sets it: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_USE_AGENT_STORE and
// GLOO_SOCKET_IFNAME. Torch-free: the CLI and `rmkit launch` use it without libtorch headers.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace rmkit::dist {

struct LaunchEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int restart_count = 0;          // TORCHELASTIC_RESTART_COUNT (0 outside torchrun)
  bool use_agent_store = false;   // torchrun's agent hosts the TCPStore (static rendezvous)
  std::string socket_ifname;      // GLOO_SOCKET_IFNAME (first entry of a comma list)

  bool distributed() const { return world_size > 1; }
  // Store key prefix of this attempt: torchrun's "/worker/attempt_<n>" when the agent hosts the
  // store, else "rmkit/attempt_<n>" (a restarted group never reads the keys of a failed attempt).
  std::string store_prefix() const;
  std::string describe() const;   // "rank 1/4 (local 1/2) master 10.0.0.1:29500"

  // Reads the variables; WORLD_SIZE unset or 1 gives a single-process environment. Throws
  // ConfigError naming the variable when one is malformed or inconsistent (RANK >= WORLD_SIZE,
  // a distributed run without MASTER_PORT, ...).
  static LaunchEnv from_environment();
  // The same from an explicit map (tests).
  static LaunchEnv from_map(const std::map<std::string, std::string>& env);
};

// Intra-op threads for this rank when the user gave none: the machine's physical cores divided by
// the ranks sharing it (at least 1). OMP_NUM_THREADS, when set, wins (torchrun sets it to 1).
int default_threads_per_rank(const LaunchEnv& env, int physical_cores);

}  // namespace rmkit::dist
