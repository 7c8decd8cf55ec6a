#include "rmkit/distill/call_runner.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <exception>
#include <thread>
#include <unordered_map>

#include "rmkit/core/progress.h"

namespace rmkit::distill {

nlohmann::json CallTotals::to_json() const {
  return {{"sent", sent},           {"cache_hits", hits},     {"retries", retries},   {"tokens_in", tokens_in},
          {"tokens_out", tokens_out}, {"failures", failures}, {"retried", retried}};
}

CallRunner::CallRunner(CallCache& cache, RunnerConfig cfg)
    : cache_(cache), cfg_(cfg), jitter_state_(cfg.jitter_seed ^ 0x9E3779B97F4A7C15ULL) {}

double CallRunner::cost(const CallTotals& t) const {
  return (static_cast<double>(t.tokens_in) * cfg_.price_in + static_cast<double>(t.tokens_out) * cfg_.price_out) / 1e6;
}

std::vector<CallOutcome> CallRunner::run(const std::string& stage, ChatClient& client,
                                         const std::vector<ChatRequest>& reqs) {
  std::vector<CallOutcome> out(reqs.size());
  stage_ = CallTotals();
  // One call per distinct request; cached ones are answered at once.
  std::unordered_map<std::string, std::vector<size_t>> by_key;
  std::vector<std::string> pending;  // keys to send, in first-seen order
  std::vector<size_t> pending_req;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const std::string key = request_key(reqs[i]);
    auto& idx = by_key[key];
    idx.push_back(i);
    if (idx.size() > 1) continue;
    if (auto hit = cache_.get(key)) {
      out[i].reply = *hit;
      ++stage_.hits;
    } else {
      pending.push_back(key);
      pending_req.push_back(i);
    }
  }
  for (auto& [key, idx] : by_key)
    for (size_t k = 1; k < idx.size(); ++k) out[idx[k]] = out[idx[0]];

  Progress progress(stage, static_cast<int64_t>(pending.size()),
                    cfg_.progress ? Progress::Mode::Auto : Progress::Mode::Off);
  const double budget_cost_before = cost(totals_);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::string stop_reason;       // under mu_
  std::optional<CallError> fatal;  // under mu_
  std::exception_ptr other_error;  // under mu_: a worker's non-call exception, rethrown after the join
  int64_t done = 0, reserved_calls = totals_.sent;

  auto status = [&]() {  // under mu_
    std::string s = "sent " + std::to_string(stage_.sent) + " hits " + std::to_string(stage_.hits) + " tok " +
                    std::to_string(stage_.tokens_in) + "/" + std::to_string(stage_.tokens_out);
    int64_t failed = 0;
    for (const auto& [k, v] : stage_.failures) failed += v;
    if (failed) {
      s += " failed";
      for (const auto& [k, v] : stage_.failures) s += " " + k + "=" + std::to_string(v);
    }
    if (stage_.retries) s += " retries " + std::to_string(stage_.retries);
    if (cfg_.price_in > 0 || cfg_.price_out > 0) {
      const double c = cost(stage_);
      const double proj = done > 0 ? c / static_cast<double>(done) * static_cast<double>(pending.size()) : 0;
      char buf[96];
      std::snprintf(buf, sizeof buf, " cost $%.4f (stage projected $%.4f, run $%.4f)", c, proj,
                    budget_cost_before + c);
      s += buf;
    }
    return s;
  };

  auto worker = [&]() {
    for (;;) {
      if (stop) break;
      const size_t j = next++;
      if (j >= pending.size()) break;
      {
        std::lock_guard<std::mutex> lk(mu_);
        const int64_t tokens = totals_.tokens_in + totals_.tokens_out + stage_.tokens_in + stage_.tokens_out;
        if (cfg_.max_calls > 0 && reserved_calls >= cfg_.max_calls) {
          stop = true;
          stop_reason = "--max-calls " + std::to_string(cfg_.max_calls) + " reached";
          break;
        }
        if (cfg_.max_tokens > 0 && tokens >= cfg_.max_tokens) {
          stop = true;
          stop_reason = "--max-tokens " + std::to_string(cfg_.max_tokens) + " reached";
          break;
        }
        ++reserved_calls;
      }
      const ChatRequest& req = reqs[pending_req[j]];
      CallOutcome oc;
      for (int attempt = 0;; ++attempt) {
        try {
          ChatReply r = client.complete(req);
          cache_.put(pending[j], stage, req, r);
          oc.reply = std::move(r);
          break;
        } catch (const CallError& e) {
          const std::string kind = CallError::kind_name(e.kind());
          if (!e.retryable()) {
            oc.error = e.what();
            oc.error_kind = kind;
            break;
          }
          if (attempt >= cfg_.max_retries || stop) {
            std::lock_guard<std::mutex> lk(mu_);
            // a retry skipped because a budget stopped the run is not a failure of the endpoint: the
            // run ends resumably (BudgetReached), the call is sent again next time
            const bool budget_stop = attempt < cfg_.max_retries && !stop_reason.empty();
            if (!fatal && !budget_stop) fatal = e;
            stop = true;
            oc.error = e.what();
            oc.error_kind = kind;
            break;
          }
          double wait;
          {
            std::lock_guard<std::mutex> lk(mu_);
            ++stage_.retries;
            ++stage_.retried[kind];
            jitter_state_ = jitter_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
            const double u = static_cast<double>(jitter_state_ >> 11) / 9007199254740992.0;
            const double cap = std::min(cfg_.backoff_max_s, cfg_.backoff_base_s * std::pow(2.0, attempt));
            wait = u * cap;  // full jitter
            if (e.retry_after_s() >= 0) wait = std::min(std::max(wait, e.retry_after_s()), cfg_.backoff_max_s);
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(wait * 1000)));
        } catch (const std::exception& e) {  // not a call failure (e.g. the cache write): stop the run
          std::lock_guard<std::mutex> lk(mu_);
          if (!other_error) other_error = std::current_exception();
          stop = true;
          oc.error = e.what();
          oc.error_kind = "internal";
          break;
        }
      }
      std::lock_guard<std::mutex> lk(mu_);
      if (oc.reply) {
        ++stage_.sent;
        stage_.tokens_in += oc.reply->prompt_tokens;
        stage_.tokens_out += oc.reply->completion_tokens;
      } else {
        ++stage_.failures[oc.error_kind];
      }
      for (size_t i : by_key[pending[j]]) out[i] = oc;
      ++done;
      progress.update(done, status());
    }
    client.release_thread();
  };
  const int n = static_cast<int>(std::min<size_t>(std::max(1, cfg_.concurrency), pending.size()));
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  progress.finish(status());

  totals_.sent += stage_.sent;
  totals_.hits += stage_.hits;
  totals_.retries += stage_.retries;
  totals_.tokens_in += stage_.tokens_in;
  totals_.tokens_out += stage_.tokens_out;
  for (const auto& [k, v] : stage_.failures) totals_.failures[k] += v;
  for (const auto& [k, v] : stage_.retried) totals_.retried[k] += v;
  if (other_error) std::rethrow_exception(other_error);  // replies committed before it stay cached
  if (fatal)
    throw CallError(fatal->kind(), std::string(fatal->what()) + " (after " + std::to_string(cfg_.max_retries) +
                                       " retries; every answer so far is cached: re-run the same command to resume)",
                    fatal->status());
  if (!stop_reason.empty())
    throw BudgetReached("stopped in stage " + stage + ": " + stop_reason + " (" + std::to_string(totals_.sent) +
                        " calls, " + std::to_string(totals_.tokens_in + totals_.tokens_out) +
                        " tokens this run); every answer so far is cached: re-run with a larger budget to continue");
  return out;
}

}  // namespace rmkit::distill
