#include "rmkit/dist/launch_env.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "rmkit/core/error.h"

extern char** environ;

namespace rmkit::dist {
namespace {

using Env = std::map<std::string, std::string>;

const std::string* get(const Env& env, const std::string& k) {
  auto it = env.find(k);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

int parse_int(const Env& env, const std::string& k, int def, int lo, int hi) {
  const std::string* v = get(env, k);
  if (!v) return def;
  char* end = nullptr;
  long x = std::strtol(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0' || x < lo || x > hi)
    throw ConfigError("environment " + k + "='" + *v + "': expected an integer in [" + std::to_string(lo) +
                      ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

}  // namespace

LaunchEnv LaunchEnv::from_map(const Env& env) {
  LaunchEnv e;
  e.world_size = parse_int(env, "WORLD_SIZE", 1, 1, 1 << 20);
  e.rank = parse_int(env, "RANK", 0, 0, 1 << 20);
  if (e.rank >= e.world_size)
    throw ConfigError("environment RANK=" + std::to_string(e.rank) + " is not below WORLD_SIZE=" +
                      std::to_string(e.world_size));
  e.local_world_size = parse_int(env, "LOCAL_WORLD_SIZE", e.world_size > 1 ? 0 : 1, 0, e.world_size);
  e.local_rank = parse_int(env, "LOCAL_RANK", 0, 0, 1 << 20);
  if (e.local_world_size == 0) e.local_world_size = 1;  // unknown: assume one rank per machine
  if (e.local_rank >= e.local_world_size)
    throw ConfigError("environment LOCAL_RANK=" + std::to_string(e.local_rank) + " is not below LOCAL_WORLD_SIZE=" +
                      std::to_string(e.local_world_size));
  if (const std::string* a = get(env, "MASTER_ADDR")) e.master_addr = *a;
  if (e.world_size > 1 && !get(env, "MASTER_PORT"))
    throw ConfigError("environment WORLD_SIZE=" + std::to_string(e.world_size) +
                      " but MASTER_PORT is not set (launch with torchrun or `rmkit launch`, or set "
                      "MASTER_ADDR/MASTER_PORT)");
  e.master_port = parse_int(env, "MASTER_PORT", 29500, 1, 65535);
  e.restart_count = parse_int(env, "TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 20);
  if (const std::string* u = get(env, "TORCHELASTIC_USE_AGENT_STORE")) {
    if (*u != "True" && *u != "False")
      throw ConfigError("environment TORCHELASTIC_USE_AGENT_STORE='" + *u + "': expected True or False");
    e.use_agent_store = *u == "True";
  }
  if (const std::string* i = get(env, "GLOO_SOCKET_IFNAME")) e.socket_ifname = i->substr(0, i->find(','));
  return e;
}

LaunchEnv LaunchEnv::from_environment() {
  Env env;
  for (char** p = environ; p && *p; ++p) {
    std::string kv(*p);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return from_map(env);
}

std::string LaunchEnv::store_prefix() const {
  return (use_agent_store ? "/worker/attempt_" : "rmkit/attempt_") + std::to_string(restart_count);
}

std::string LaunchEnv::describe() const {
  return "rank " + std::to_string(rank) + "/" + std::to_string(world_size) + " (local " +
         std::to_string(local_rank) + "/" + std::to_string(local_world_size) + ") store " + master_addr + ":" +
         std::to_string(master_port) + (use_agent_store ? " (torchrun agent)" : "") +
         (restart_count ? " restart " + std::to_string(restart_count) : "");
}

int default_threads_per_rank(const LaunchEnv& env, int physical_cores) {
  if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && std::atoi(omp) > 0) return std::atoi(omp);
  int n = physical_cores / std::max(1, env.local_world_size);
  return n < 1 ? 1 : n;
}

}  // namespace rmkit::dist
