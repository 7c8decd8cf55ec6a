#include "rmkit/serve/batcher.h"

#include <torch/torch.h>

#include "rmkit/serve/http_error.h"

namespace rmkit::serve {

bool ScoreJob::wait_until(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lk(mu_);
  if (cv_.wait_until(lk, deadline, [&] { return done_; })) return true;
  cancelled_ = true;
  return false;
}

RewardBatcher::RewardBatcher(train::RewardModelImpl& rm, std::string model_name, BatcherConfig cfg,
                             MetricsRegistry* metrics, std::mutex* compute_mutex)
    : rm_(rm), name_(std::move(model_name)), cfg_(cfg), metrics_(metrics), compute_mu_(compute_mutex) {
  thread_ = std::thread([this] { loop(); });
}

RewardBatcher::~RewardBatcher() { stop(); }

void RewardBatcher::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<ScoreJob> RewardBatcher::submit(std::vector<eval::ScoreGroup> groups) {
  auto job = std::make_shared<ScoreJob>();
  job->groups = std::move(groups);
  size_t seqs = 0;
  int64_t tokens = 0;
  for (const auto& g : job->groups) {
    job->offset_.push_back(seqs);
    seqs += g.responses.size();
    tokens += eval::group_tokens(g);
  }
  job->rewards.assign(seqs, 0.0);
  job->remaining_ = job->groups.size();
  job->enqueued_ = Clock::now();
  if (job->groups.empty()) {
    job->done_ = true;
    return job;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw HttpError::overloaded("server is shutting down");
    if (queued_seqs_.load() + static_cast<int64_t>(seqs) > cfg_.max_queue)
      throw HttpError::overloaded("queue full: " + std::to_string(queued_seqs_.load()) + " sequences waiting, limit " +
                                  std::to_string(cfg_.max_queue) + " (--max-queue); retry later");
    for (size_t g = 0; g < job->groups.size(); ++g) queue_.push_back({job, g});
    queued_seqs_ += static_cast<int64_t>(seqs);
    queued_tokens_ += tokens;
  }
  if (metrics_) metrics_->set("rmkit_queue_sequences", static_cast<double>(queued_seqs_.load()), {{"model", name_}});
  cv_.notify_one();
  return job;
}

void RewardBatcher::loop() {
  if (cfg_.threads > 0) at::set_num_threads(cfg_.threads);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    // Let a batch fill: until the budget is reached or the oldest item has waited max_wait_ms.
    const auto window_end = queue_.front().job->enqueued_ + std::chrono::milliseconds(cfg_.max_wait_ms);
    cv_.wait_until(lk, window_end, [&] { return stopping_ || queued_tokens_ >= cfg_.max_batch_tokens; });
    std::vector<Item> batch;
    int64_t tokens = 0;
    while (!queue_.empty()) {
      Item& it = queue_.front();
      const auto& g = it.job->groups[it.group];
      const int64_t t = eval::group_tokens(g);
      if (!batch.empty() && (tokens + t > cfg_.max_batch_tokens || (cfg_.per_request && it.job != batch.front().job)))
        break;
      tokens += t;
      queued_tokens_ -= t;
      queued_seqs_ -= static_cast<int64_t>(g.responses.size());
      batch.push_back(std::move(it));
      queue_.pop_front();
    }
    lk.unlock();
    if (metrics_) metrics_->set("rmkit_queue_sequences", static_cast<double>(queued_seqs_.load()), {{"model", name_}});
    run_batch(batch);
    lk.lock();
  }
}

void RewardBatcher::run_batch(std::vector<Item>& batch) {
  std::vector<const eval::ScoreGroup*> groups;
  std::vector<Item*> live;
  int64_t tokens = 0, seqs = 0;
  const auto now = Clock::now();
  for (auto& it : batch) {
    if (it.job->cancelled()) continue;
    if (!it.job->started_) {
      it.job->started_ = true;
      if (metrics_)
        metrics_->observe("rmkit_queue_seconds", std::chrono::duration<double>(now - it.job->enqueued_).count(),
                          {{"model", name_}});
    }
    groups.push_back(&it.job->groups[it.group]);
    live.push_back(&it);
    tokens += eval::group_tokens(it.job->groups[it.group]);
    seqs += static_cast<int64_t>(it.job->groups[it.group].responses.size());
  }
  std::vector<double> rewards;
  std::string error;
  if (!groups.empty()) {
    const auto t0 = Clock::now();
    try {
      std::lock_guard<std::mutex> clk(*compute_mu_);
      rewards = eval::score_groups(rm_, groups, cfg_.bf16);
    } catch (const std::exception& e) {
      error = e.what();
      if (auto nl = error.find('\n'); nl != std::string::npos) error.resize(nl);
    }
    ++batches_;
    if (metrics_) {
      const Labels l = {{"model", name_}};
      metrics_->observe("rmkit_compute_seconds", std::chrono::duration<double>(Clock::now() - t0).count(), l);
      metrics_->observe("rmkit_batch_sequences", static_cast<double>(seqs), l);
      metrics_->observe("rmkit_batch_tokens", static_cast<double>(tokens), l);
      metrics_->inc("rmkit_scored_sequences_total", l, static_cast<double>(seqs));
      metrics_->inc("rmkit_computed_tokens_total", l, static_cast<double>(tokens));
    }
  }
  // Hand each live group its rewards (score_groups returns them in group, then response order).
  size_t next_live = 0, r = 0;
  for (auto& it : batch) {
    ScoreJob& job = *it.job;
    const bool computed = next_live < live.size() && live[next_live] == &it;
    if (computed) {
      ++next_live;
      const auto& g = job.groups[it.group];
      for (size_t k = 0; k < g.responses.size(); ++k, ++r)
        if (error.empty()) job.rewards[job.offset_[it.group] + k] = rewards[r];
    }
    std::lock_guard<std::mutex> jl(job.mu_);
    if (!error.empty() && job.error.empty()) job.error = error;
    if (--job.remaining_ == 0) {
      job.done_ = true;
      job.cv_.notify_all();
    }
  }
}

}  // namespace rmkit::serve
