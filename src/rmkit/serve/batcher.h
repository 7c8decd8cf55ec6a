// Cross-request batching of reward work (the slot/batch idea of llama.cpp's server, for scoring):
// requests from every client are split into groups (eval/group_scorer.h: a prompt and its
// responses) and queued; one compute thread per model packs queued groups, oldest first, into
// padding-free batches of at most `max_batch_tokens` tokens, waiting at most `max_wait_ms` after the
// oldest arrival for a batch to fill. A group larger than the budget runs alone.
//
// Bounded: at most `max_queue` sequences wait (submit() throws a 503 HttpError at once past it).
// A job whose caller gave up (timeout, disconnect) is cancelled: its queued groups are skipped.
// Compute of all models is serialised by one shared mutex, so two models never fight over the
// cores; HTTP threads only parse, tokenise and wait.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rmkit/eval/group_scorer.h"
#include "rmkit/serve/metrics.h"

namespace rmkit::serve {

using Clock = std::chrono::steady_clock;

struct BatcherConfig {
  int64_t max_batch_tokens = 16384;
  int64_t max_wait_ms = 5;
  int64_t max_queue = 1024;  // queued sequences (responses)
  bool bf16 = false;
  int threads = 0;           // intra-op threads of the compute thread (0 = keep libtorch's)
  // Only for comparisons: a batch takes groups of ONE request (no cross-request batching, the
  // behaviour of a one-request-at-a-time server such as OpenRLHF's serve_rm.py).
  bool per_request = false;
};

// One request's work. rewards[i] belongs to the i-th response of the groups in order.
class ScoreJob {
 public:
  std::vector<eval::ScoreGroup> groups;
  std::vector<double> rewards;
  std::string error;  // set when the forward failed

  // Waits until done or `deadline`; false on timeout (the job is then cancelled).
  bool wait_until(Clock::time_point deadline);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  friend class RewardBatcher;
  std::vector<size_t> offset_;  // first reward index of each group
  size_t remaining_ = 0;
  Clock::time_point enqueued_;
  bool started_ = false;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

class RewardBatcher {
 public:
  RewardBatcher(train::RewardModelImpl& rm, std::string model_name, BatcherConfig cfg, MetricsRegistry* metrics,
                std::mutex* compute_mutex);
  ~RewardBatcher();
  RewardBatcher(const RewardBatcher&) = delete;
  RewardBatcher& operator=(const RewardBatcher&) = delete;

  // Queues the job's groups. Throws HttpError 503 when they would overfill the queue.
  std::shared_ptr<ScoreJob> submit(std::vector<eval::ScoreGroup> groups);
  // Finishes what is queued, then stops the compute thread.
  void stop();
  int64_t queued_sequences() const { return queued_seqs_.load(); }
  int64_t batches_run() const { return batches_.load(); }

 private:
  struct Item {
    std::shared_ptr<ScoreJob> job;
    size_t group;
  };
  void loop();
  void run_batch(std::vector<Item>& batch);

  train::RewardModelImpl& rm_;
  std::string name_;
  BatcherConfig cfg_;
  MetricsRegistry* metrics_;
  std::mutex* compute_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  int64_t queued_tokens_ = 0;
  std::atomic<int64_t> queued_seqs_{0};
  std::atomic<int64_t> batches_{0};
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rmkit::serve
