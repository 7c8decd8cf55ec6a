// The generation engine: continuous (iteration-level) batching over per-sequence KV caches, the
// design of vLLM / llama.cpp's server on rmkit's packed forward (model::SeqKV):
//   - every step runs ONE packed forward holding one token of each decoding sequence plus up to
//     `prefill_chunk` prompt tokens of newcomers (chunked prefill), so a new request joins at the
//     next step and a long prompt never stalls running decodes;
//   - a request's n samples compute its prompt once and read it as a shared read-only prefix;
//   - KV memory is reserved at admission (prompt + n * max_tokens) against `kv_cache_mb`; a request
//     that does not fit waits (the wait queue is bounded: 503 beyond `max_queue`); memory returns on
//     finish, stop, cancel (client gone);
//   - sampling per sequence with its own RNG (sampling.h): with a seed, a request's output does not
//     depend on what else runs.
// In-process callers use generate_many(); the server streams events from a handle.
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

#include "rmkit/model/causal_lm.h"
#include "rmkit/serve/metrics.h"
#include "rmkit/serve/sampling.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::serve {

struct EngineConfig {
  int64_t kv_cache_mb = 1024;
  int64_t prefill_chunk = 512;   // prompt tokens per step, over all newcomers
  int64_t max_queue = 256;       // waiting requests
  int64_t max_running = 64;      // sequences decoding at once
  bool bf16 = false;
  int threads = 0;               // intra-op threads of the engine thread (0 = keep)
  bool decode_gemm = true;       // decode-step linears on oneDNN with transposed weight copies (model/decode_gemm.h)
};

struct Completion {
  std::vector<int32_t> tokens;
  std::string text;
  std::string finish_reason;          // "stop" | "length" | "cancelled"
  std::vector<TokenLogprob> logprobs; // per output token, when asked
};

// One streamed piece of one sample.
struct GenEvent {
  int64_t index = 0;          // sample
  std::string text;           // newly released text
  std::vector<int32_t> ids;   // tokens that produced it
  std::vector<TokenLogprob> logprobs;
  bool finished = false;
  std::string finish_reason;
};

class GenHandle {
 public:
  // Next streamed event (stream mode); false at the deadline or when everything was delivered.
  bool next_event(GenEvent* ev, std::chrono::steady_clock::time_point deadline);
  // Blocks until every sample finished; false at the deadline (the request is then cancelled).
  bool wait(std::chrono::steady_clock::time_point deadline);
  void cancel() { cancelled_ = true; }
  // Finished, and (stream mode) every event taken.
  bool drained();
  bool cancelled() const { return cancelled_; }

  int64_t prompt_tokens = 0;
  std::vector<Completion> results;          // after wait()
  std::vector<TokenLogprob> prompt_logprobs;  // prompt_logprobs: one per prompt token after the first
  // Why the request failed ("" when it did not); set by the engine thread together with finishing,
  // so it may be polled while a stream is live.
  std::string error() const;

 private:
  friend class Engine;
  void push(GenEvent ev);
  void finish(std::string error = "");
  bool stream_ = false;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::string error_;  // under mu_
  std::condition_variable cv_;
  std::deque<GenEvent> events_;
  bool done_ = false;
};

class Engine {
 public:
  Engine(model::CausalLMPtr model, std::shared_ptr<const text::Tokenizer> tok, EngineConfig cfg,
         MetricsRegistry* metrics = nullptr, std::mutex* compute_mutex = nullptr, std::string name = "model");
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. Throws HttpError: 400 (bad parameters, prompt too long, needs more KV
  // memory than the whole budget), 503 (queue full, shutting down).
  std::shared_ptr<GenHandle> submit(std::vector<int32_t> prompt, SamplingParams params, bool stream = false);
  // In-process API: submits every request and waits for all (rmkit generate, distillation, LASeR).
  std::vector<std::vector<Completion>> generate_many(const std::vector<std::vector<int32_t>>& prompts,
                                                     const std::vector<SamplingParams>& params);
  void stop();

  struct Stats {
    int64_t prompt_tokens_computed = 0;  // prefill tokens run through the model
    int64_t generated_tokens = 0;
    int64_t kv_bytes_reserved = 0;       // held by admitted requests
    int64_t waiting = 0, running = 0;    // requests
    int64_t steps = 0;
  };
  Stats stats() const;
  int64_t context_length() const { return ctx_len_; }
  int64_t vocab_size() const { return vocab_; }
  const text::Tokenizer& tokenizer() const { return *tok_; }

 private:
  struct Sample;
  struct Request;
  void loop();
  void step(std::vector<std::shared_ptr<Request>>& running);
  bool admit(std::vector<std::shared_ptr<Request>>& running);
  void finish_sample(Request& r, Sample& s, const std::string& reason);
  void accept_token(Request& r, Sample& s, const float* logits_row);

  model::CausalLMPtr model_;
  std::shared_ptr<const text::Tokenizer> tok_;
  EngineConfig cfg_;
  MetricsRegistry* metrics_;
  std::mutex* compute_mu_;
  std::mutex own_compute_mu_;
  std::string name_;
  int64_t ctx_len_ = 0, vocab_ = 0, bytes_per_token_ = 0;
  std::vector<int32_t> eos_ids_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> waiting_;
  bool stopping_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace rmkit::serve
