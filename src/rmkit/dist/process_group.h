// A c10d process group with rmkit's error handling: every collective runs under the group's
// timeout (--dist-timeout) and a failure becomes one DistError line naming this rank, the
// operation and, when it can be told, the rank that stopped responding (a heartbeat through the
// store). Gloo on CPU; ProcessGroupNCCL when built against a CUDA libtorch with USE_C10D_NCCL and
// RMKIT_DIST_BACKEND=nccl (or CUDA tensors).
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/version.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "rmkit/core/error.h"
#include "rmkit/dist/launch_env.h"

namespace rmkit::dist {

class DistError : public Error { using Error::Error; };

// The collective interface: in libtorch 1.13 ProcessGroupGloo/NCCL derive from ProcessGroup, in 2.x
// from Backend (a ProcessGroup dispatches to one); both have the same collective methods.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

struct GroupOptions {
  std::chrono::milliseconds timeout = std::chrono::minutes(30);
  std::string ifname;          // network interface for Gloo ("" = the hostname's address)
  std::string backend = "auto";  // auto | gloo | nccl
  bool heartbeat = true;       // publish a heartbeat so failures can name the silent rank
};

class Group {
 public:
  // A group over an existing store (tests: c10d::HashStore / FileStore shared by threads).
  static std::shared_ptr<Group> create(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                       const GroupOptions& opts);
  // torchrun / `rmkit launch` / SLURM: TCPStore at MASTER_ADDR:MASTER_PORT (hosted by rank 0, or
  // by torchrun's agent under its attempt prefix).
  static std::shared_ptr<Group> from_env(const LaunchEnv& env, GroupOptions opts);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::chrono::milliseconds timeout() const { return opts_.timeout; }
  const std::string& backend() const { return backend_; }
  Collectives& pg() { return *pg_; }

  // Asynchronous SUM all-reduce; finish with wait(). `what` names the operation in errors.
  c10::intrusive_ptr<c10d::Work> allreduce_async(std::vector<at::Tensor>& tensors);
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what);
  // Synchronous collectives (in place).
  void allreduce_sum(at::Tensor& t, const std::string& what);
  void broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what);
  // Every rank's `t` (same shape on every rank), in rank order.
  std::vector<at::Tensor> allgather(const at::Tensor& t, const std::string& what);
  void barrier(const std::string& what);

  // Throws the one-line DistError for a failed `what` (also used by callers' own waits).
  [[noreturn]] void fail(const std::string& what, const std::string& reason);

 private:
  Group() = default;
  void start_heartbeat();
  std::string silent_ranks();

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Store> hb_store_;  // own connection for the heartbeat thread
  c10::intrusive_ptr<Collectives> pg_;
  int rank_ = 0, size_ = 1;
  GroupOptions opts_;
  std::string backend_;
  std::thread hb_thread_;
  std::atomic<bool> hb_stop_{false};
};

// The process-wide group used by `rmkit train/score/eval` (null when not distributed).
void set_default_group(std::shared_ptr<Group> g);
std::shared_ptr<Group> default_group();
// Creates the default group from the environment when WORLD_SIZE > 1 (idempotent); returns it
// or null for a single process.
std::shared_ptr<Group> init_default_group(const GroupOptions& opts);
// This process writes shared outputs (rank 0, or no group).
bool is_primary();
int world_size();
int world_rank();

}  // namespace rmkit::dist
