// The trainer's data-parallel hooks (src/rmkit/dist/ does the communication). One object per
// training run when the process belongs to a group of more than one rank (dist::default_group());
// the loop calls it at a few narrow points:
//   shard()            this rank's contiguous part of each global batch (global batch = per-rank
//                      batch x world size, built once from the seed exactly as one process with the
//                      global batch would build it), so every rank runs the same number of steps;
//   combine()          the loss terms normalised by GLOBAL counts (pairs, SFT tokens, KL positions,
//                      regression targets: one small all-reduce per micro-batch), scaled so that the
//                      ranks' mean is the one-process loss and the averaged gradient its gradient;
//   before_backward() / finish_step()   the bucketed, overlapped gradient all-reduce;
//   reduce_stats()     step metrics summed over ranks.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rmkit/dist/grad_reducer.h"
#include "rmkit/dist/process_group.h"
#include "rmkit/train/batch.h"
#include "rmkit/train/losses.h"
#include "rmkit/train/optim.h"

namespace rmkit::train {

struct StepStats;

class DataParallelStep {
 public:
  // Null when there is no default group (a single process).
  static std::unique_ptr<DataParallelStep> create(const std::vector<torch::Tensor>& params,
                                                  dist::ReducerOptions ro = {});
  DataParallelStep(std::shared_ptr<dist::Group> g, const std::vector<torch::Tensor>& params,
                   dist::ReducerOptions ro);

  int rank() const { return group_->rank(); }
  int world() const { return group_->size(); }
  dist::Group& group() { return *group_; }
  dist::GradReducer& reducer() { return *reducer_; }

  // Rank 0's parameter values to every rank.
  void broadcast_parameters(const std::vector<torch::Tensor>& params);
  // This rank's slice of a global batch. When the batch has fewer pairs than ranks, a rank left
  // without pairs gets the first pair with *dummy = true: it runs it with zero weight (and its
  // statistics must be discarded), so every rank still takes part in the step's collectives.
  std::vector<size_t> shard(const std::vector<size_t>& global, bool* dummy) const;
  // Dropout / sampling stream of this rank for this step: a function of (seed, rank, step) only,
  // so a resumed run (from a checkpoint of any world size) continues the same streams.
  void seed_step(uint64_t seed, int64_t step);
  LossResult combine(const std::vector<LossTerm>& terms, const LossInputs& in, const LossHyper& hyper,
                     const PairBatch& b);
  void set_dummy(bool dummy) { dummy_ = dummy; }
  void before_backward(bool last_micro) { reducer_->prepare(last_micro); }
  void finish_step(int64_t step) { reducer_->finish("step " + std::to_string(step)); }
  void reduce_stats(StepStats* st, const std::string& what);
  // A scalar's sum over ranks (e.g. a flag "loss was not finite here").
  double sum(double v, const std::string& what);

  // ZeRO-1 (--zero1): AdamW's moments sharded over ranks. Each parameter (whole tensors, in the
  // order decay then no-decay) is owned by one rank (greedy by size); zero1_groups() is this rank's
  // share for make_adamw, and after_optimizer_step() broadcasts every parameter from its owner.
  // Gradients are still all-reduced in full (clipping sees the global norm), so the run equals plain
  // data parallel. Returns `g` unchanged in a single process.
  static ParamGroups zero1_groups(const ParamGroups& g);
  void enable_zero1(const ParamGroups& g);
  bool zero1() const { return !owned_by_.empty(); }
  void after_optimizer_step();

 private:
  std::shared_ptr<dist::Group> group_;
  std::unique_ptr<dist::GradReducer> reducer_;
  bool dummy_ = false;
  int64_t step_ = 0;  // 0-based, for error messages
  std::vector<std::vector<torch::Tensor>> owned_by_;  // ZeRO-1: parameters of each rank
};

}  // namespace rmkit::train
