// What the distillation pipeline asks a teacher or policy model and what comes back: one
// OpenAI-style chat completion (messages + sampling parameters -> one reply). Torch-free.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/text/message.h"

namespace rmkit::distill {

struct SamplingSpec {
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;
  int64_t top_k = 0;         // 0 = not sent (off)
  int64_t max_tokens = 16;
};

struct ChatRequest {
  std::string model;               // the served model name (part of the cache key)
  text::Conversation messages;
  SamplingSpec sampling;
  // Sampled calls (temperature > 0) are told apart by their sample index (part of the cache key)
  // and sent with seed = base seed + sample index.
  int64_t sample_index = 0;
  std::optional<uint64_t> seed;
};

struct ChatReply {
  std::string text;
  std::string finish_reason;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  bool cached = false;
};

// The canonical form of a request: model name, messages, every sampling parameter, the seed and,
// for sampled calls, the sample index. Keys are sorted, so equal requests dump to equal strings.
nlohmann::json canonical_request(const ChatRequest& r);
// SHA-256 hex of canonical_request(r).dump(): the cache key.
std::string request_key(const ChatRequest& r);
std::string sha256_hex(const std::string& data);

// Streaming SHA-256 (OpenSSL EVP), for digests over several pieces or whole files.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void add(const void* data, size_t n);
  // `field` and its terminating NUL, so that consecutive fields cannot run into each other.
  void add_field(const std::string& field) { add(field.c_str(), field.size() + 1); }
  // The file's bytes; IoError naming it when it cannot be read.
  void add_file(const std::string& path);
  std::string hex();  // lowercase hex of the digest (once)

 private:
  void* ctx_;  // EVP_MD_CTX
};

// A failed call. Retryable kinds are retried with backoff; `retry_after_s` >= 0 is the server's
// Retry-After. Messages never contain the API key.
class CallError : public Error {
 public:
  enum class Kind { Connection, Timeout, RateLimited, Server, Client, Malformed };
  CallError(Kind kind, const std::string& msg, int status = 0, double retry_after_s = -1)
      : Error(msg), kind_(kind), status_(status), retry_after_s_(retry_after_s) {}
  Kind kind() const { return kind_; }
  int status() const { return status_; }
  double retry_after_s() const { return retry_after_s_; }
  // Everything but a plain client error (4xx other than 408/429) is worth another try.
  bool retryable() const { return kind_ != Kind::Client; }
  static const char* kind_name(Kind k);

 private:
  Kind kind_;
  int status_;
  double retry_after_s_;
};

// Something that answers chat requests: an OpenAI-compatible server or an in-process model.
// complete() is called from several threads at once.
class ChatClient {
 public:
  virtual ~ChatClient() = default;
  // Throws CallError.
  virtual ChatReply complete(const ChatRequest& r) = 0;
  // For logs: "http://127.0.0.1:8000/v1 (model m)" or "local DIR". Never holds a key.
  virtual std::string describe() const = 0;
  // A worker thread that called complete() is about to exit (drop its connection).
  virtual void release_thread() {}
};

}  // namespace rmkit::distill
