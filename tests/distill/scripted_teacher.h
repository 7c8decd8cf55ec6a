// A scripted OpenAI-compatible teacher for the distillation tests: a real HTTP server on
// 127.0.0.1 (free port) that answers /v1/chat/completions by a fixed rule, so the pipeline's
// output can be checked against the rule exactly.
//
// The rule: quality(text) = 1 + min(9, number of times the word "good" occurs).
//   judge prompt   -> "S1 S2" with S = quality of each shown answer, plus `position_bias` for the
//                     answer shown first (both orders averaged cancel it out but add bias/2);
//                     an answer containing NOPARSE gets "I cannot decide." (a parse failure);
//   refine prompt  -> reasoning + the non-preferred response with " good good" appended, in tags;
//   re-score turn  -> quality of the modified response in the conversation;
//   anything else  -> "teacher says good good good" (the teacher's own answer).
// Faults, keyed by a marker in the request (each fault fires on the first attempts only):
//   RATELIMIT -> 429 with Retry-After: 1 once; FAIL5XX -> 500 twice; SLOWREPLY -> sleeps
//   `slow_ms` once (longer than the client timeout); MALFORMED -> 200 with a non-JSON body once;
//   BADREQUEST -> 400 always (not retryable).
#pragma once
#include <httplib.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace rmkit::distill::testing {

int quality(const std::string& text);

// The ablation's rule (bench/distill_ablation.sh): a response is a clean text with k noise marks
// " ~~" inserted; true quality = 10 - min(9, k). The judge scores by it; the refinement removes
// half of the rejected response's marks (rounded up: a minimal edit); the teacher's own answer is
// the clean reference text for the question when `answers` holds it.
int noise_marks(const std::string& text);
int noise_quality(const std::string& text);
std::string remove_marks(const std::string& text, int n);

class ScriptedTeacher {
 public:
  // latency_ms: every answer waits this long first (throughput bench); the server runs 160
  // handler threads so that many calls can wait at once.
  explicit ScriptedTeacher(double position_bias = 0, int slow_ms = 1500, int latency_ms = 0);
  // Switches to the noise rule; `answers`: question -> clean reference response.
  void use_noise_rule(std::map<std::string, std::string> answers);
  ~ScriptedTeacher();
  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

  struct Logged {
    std::string body;   // the request body
    int status = 0;     // what was answered (0 = not answered: the client was killed first)
    std::string kind;   // judge | refine | rescore | respond
  };
  std::vector<Logged> log();
  // Called with the number of requests answered 200 so far, before answering; returning true
  // means "do not answer this one" (the hook has e.g. killed the client).
  void set_before_answer(std::function<bool(int answered)> hook);
  // How many times each distinct request body was answered with 200.
  std::map<std::string, int> answered_counts();

 private:
  void handle(const httplib::Request& req, httplib::Response& res);
  double bias_;
  int slow_ms_, latency_ms_;
  bool noise_ = false;
  std::map<std::string, std::string> answers_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<Logged> log_;
  std::map<std::string, int> attempts_;  // fault marker + body -> attempts seen
  std::function<bool(int)> hook_;
  int answered_ = 0;
};

}  // namespace rmkit::distill::testing
