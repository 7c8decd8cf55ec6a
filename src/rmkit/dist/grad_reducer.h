// Data-parallel gradient reduction (what PyTorch's DistributedDataParallel does in Python, which
// the C++ frontend lacks): parameters are grouped into buckets in reverse registration order
// (the order backward produces their gradients; the first bucket small so communication starts
// early), a post-hook on each parameter's gradient accumulator marks it ready, and a bucket whose
// gradients are all ready is copied into a flat float32 buffer and all-reduced asynchronously
// while backward continues. finish() launches what is left (parameters that got no gradient this
// step contribute zeros), waits, divides by the world size (Gloo has no AVG) and writes the
// averaged gradients back. Buckets are always launched in the same order on every rank, which is
// what lets Gloo match the collectives.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rmkit/dist/process_group.h"

namespace rmkit::dist {

struct ReducerOptions {
  size_t bucket_cap_bytes = 25u << 20;   // DDP's bucket_cap_mb = 25
  size_t first_bucket_bytes = 1u << 20;  // DDP's first bucket: 1 MiB
  bool overlap = true;                   // false: reduce everything after backward (bench baseline)
};

struct ReducerStats {
  double finish_wait_s = 0;   // time finish() spent (communication not hidden behind backward)
  size_t buckets_launched_in_backward = 0;
  size_t bytes = 0;           // float32 bytes all-reduced per step
};

class GradReducer {
 public:
  GradReducer(std::shared_ptr<Group> group, std::vector<at::Tensor> params, ReducerOptions opts = {});
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before each backward of a step: sync = true on the last micro-batch (the one whose backward
  // completes the accumulated gradients; earlier ones accumulate locally, like DDP's no_sync()).
  void prepare(bool sync);
  // After the last backward: every gradient equals the world average (float32 reduction).
  // `what` names the step in errors ("step 12").
  void finish(const std::string& what);

  size_t num_buckets() const { return buckets_.size(); }
  // Parameter indices (into the constructor's list) of each bucket, in launch order.
  std::vector<std::vector<size_t>> bucket_layout() const;
  const ReducerStats& stats() const { return stats_; }

 private:
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    int64_t numel = 0;
    at::Tensor flat;
    size_t pending = 0;
    bool launched = false;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void on_ready(size_t p);
  void launch(size_t b);
  void launch_ready_prefix();

  std::shared_ptr<Group> group_;
  std::vector<at::Tensor> params_;
  ReducerOptions opts_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<char> ready_;
  size_t next_launch_ = 0;
  bool sync_ = false;
  std::string what_;
  std::mutex mu_;
  std::vector<std::pair<std::shared_ptr<void>, uintptr_t>> hooks_;  // (grad accumulator node, key)
  ReducerStats stats_;
  int64_t step_ = 0;
};

// Copies rank `root`'s values of `tensors` into every rank's (bucketed float32/any-dtype flat
// broadcasts). Used at start so all replicas begin identical.
void broadcast_tensors(Group& g, const std::vector<at::Tensor>& tensors, int root, const std::string& what);

}  // namespace rmkit::dist
