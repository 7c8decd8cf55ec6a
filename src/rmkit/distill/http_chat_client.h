// An OpenAI-compatible chat client (POST {base}/chat/completions) over cpp-httplib, https through
// its OpenSSL build. The base URL is given the way OpenAI clients take it ("http://127.0.0.1:8000/v1",
// "https://api.example.com/v1"). One connection per calling thread (keep-alive). Maps every
// failure onto a CallError kind; retrying is the caller's (call_runner.h). The API key goes into
// the Authorization header only: never into a message, log or file.
#pragma once
#include <memory>
#include <string>

#include "rmkit/distill/chat_types.h"

namespace rmkit::distill {

struct HttpClientConfig {
  std::string base_url;        // scheme://host[:port][/path]
  std::string api_key;         // "" = no Authorization header
  double timeout_s = 120;      // connect and read timeout of one call
  std::string ca_cert_file;    // https: extra CA bundle ("" = the system's)
};

class HttpChatClient : public ChatClient {
 public:
  // Throws UsageError for a malformed URL.
  explicit HttpChatClient(HttpClientConfig cfg);
  ~HttpChatClient() override;
  ChatReply complete(const ChatRequest& r) override;
  std::string describe() const override { return cfg_.base_url; }
  void release_thread() override;
  // GET {base}/models: the first model's id (to name a policy server's model when not given).
  std::string first_model_id();

 private:
  struct Impl;
  HttpClientConfig cfg_;
  std::string origin_, prefix_;  // "http://host:port", "/v1"
  std::unique_ptr<Impl> impl_;
};

// The JSON body sent for `r` (the OpenAI chat-completions request; top_k only when > 0).
std::string chat_request_body(const ChatRequest& r);
// Parses a chat-completions response body; throws CallError(Malformed) naming what is missing.
ChatReply parse_chat_response(const std::string& body);
// Seconds from a Retry-After header value (delta-seconds or an HTTP date); -1 when unparsable.
double parse_retry_after(const std::string& value);

}  // namespace rmkit::distill
