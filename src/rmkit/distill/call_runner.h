// Runs a stage's calls: cache lookups first (a cached call is never sent again, and equal
// requests within a stage are sent once), then up to `concurrency` calls in flight, each reply
// committed to the cache as it arrives. Retries connection errors, timeouts, 429 and 5xx with
// exponential backoff and full jitter, honouring Retry-After; other 4xx are not retried and come
// back as that item's failure with the server's message. Budgets (calls, tokens) stop the stage
// after the calls in flight finish, leaving a resumable state. Progress: calls/s, tokens in/out,
// cache hits, failures by kind, cost and ETA. Torch-free.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/distill/call_cache.h"
#include "rmkit/distill/chat_types.h"

namespace rmkit::distill {

struct RunnerConfig {
  int concurrency = 16;
  int max_retries = 6;
  double backoff_base_s = 0.5;    // first retry waits up to this (full jitter), doubling per retry
  double backoff_max_s = 30;      // cap of one backoff (and of a Retry-After that is honoured)
  int64_t max_calls = 0;          // new calls this run (0 = no limit)
  int64_t max_tokens = 0;         // prompt + completion tokens of new calls this run (0 = no limit)
  double price_in = 0, price_out = 0;  // per million tokens (0 = no cost shown)
  uint64_t jitter_seed = 0;
  bool progress = true;
};

// The run stopped at --max-calls / --max-tokens (everything answered so far is cached).
class BudgetReached : public Error { using Error::Error; };

struct CallOutcome {
  std::optional<ChatReply> reply;
  std::string error;       // non-retryable failure: the server's message
  std::string error_kind;  // CallError::kind_name
};

struct CallTotals {
  int64_t sent = 0, hits = 0, retries = 0, tokens_in = 0, tokens_out = 0;
  std::map<std::string, int64_t> failures;  // by kind (final failures)
  std::map<std::string, int64_t> retried;   // by kind (attempts that were retried)
  nlohmann::json to_json() const;
};

class CallRunner {
 public:
  CallRunner(CallCache& cache, RunnerConfig cfg);
  // Outcomes in the order of `reqs`. Throws BudgetReached, or the last CallError when a call
  // still fails after max_retries (the server is unreachable or keeps failing), in both cases
  // after every call in flight has finished and been cached.
  std::vector<CallOutcome> run(const std::string& stage, ChatClient& client, const std::vector<ChatRequest>& reqs);
  const CallTotals& totals() const { return totals_; }
  // Totals of the last run() only.
  const CallTotals& stage_totals() const { return stage_; }
  double cost(const CallTotals& t) const;

 private:
  CallCache& cache_;
  RunnerConfig cfg_;
  CallTotals totals_, stage_;
  uint64_t jitter_state_;
  std::mutex mu_;
};

}  // namespace rmkit::distill
