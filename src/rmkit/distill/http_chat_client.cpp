#include "rmkit/distill/http_chat_client.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

namespace rmkit::distill {

struct HttpChatClient::Impl {
  std::mutex mu;
  std::map<std::thread::id, std::unique_ptr<httplib::Client>> clients;  // one per calling thread
};

namespace {

using json = nlohmann::json;

// The server's own error message from a JSON error body ({error:{message}} or {message} or
// {detail}), else the body's start.
std::string server_message(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
    for (const char* k : {"message", "detail"})
      if (j.contains(k) && j[k].is_string()) return j[k].get<std::string>();
  }
  return clip_text(body, 300);
}

}  // namespace

std::string chat_request_body(const ChatRequest& r) {
  json msgs = json::array();
  for (const auto& m : r.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  json b = {{"model", r.model},
            {"messages", msgs},
            {"temperature", r.sampling.temperature},
            {"top_p", r.sampling.top_p},
            {"max_tokens", r.sampling.max_tokens},
            {"n", 1},
            {"stream", false}};
  if (r.sampling.top_k > 0) b["top_k"] = r.sampling.top_k;
  if (r.seed) b["seed"] = *r.seed;
  return b.dump(-1, ' ', false, json::error_handler_t::replace);
}

ChatReply parse_chat_response(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  auto bad = [&](const std::string& what) {
    return CallError(CallError::Kind::Malformed, "malformed chat completion (" + what + "): " + clip_text(body, 200), 200);
  };
  if (!j.is_object()) throw bad("not a JSON object");
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) throw bad("no choices");
  const auto& c = j["choices"][0];
  if (!c.is_object() || !c.contains("message") || !c["message"].is_object()) throw bad("choices[0].message missing");
  const auto& m = c["message"];
  ChatReply r;
  if (m.contains("content") && m["content"].is_string()) r.text = m["content"].get<std::string>();
  else if (!(m.contains("content") && m["content"].is_null())) throw bad("choices[0].message.content is not a string");
  if (c.contains("finish_reason") && c["finish_reason"].is_string()) r.finish_reason = c["finish_reason"].get<std::string>();
  if (j.contains("usage") && j["usage"].is_object()) {
    const auto& u = j["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) r.prompt_tokens = u["prompt_tokens"];
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
      r.completion_tokens = u["completion_tokens"];
  }
  return r;
}

double parse_retry_after(const std::string& value) {
  if (value.empty()) return -1;
  char* end = nullptr;
  const double s = std::strtod(value.c_str(), &end);
  if (end && *end == '\0' && s >= 0) return s;
  std::tm tm{};
  if (strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
    const double d = std::difftime(timegm(&tm), std::time(nullptr));
    return d > 0 ? d : 0;
  }
  return -1;
}

HttpChatClient::HttpChatClient(HttpClientConfig cfg) : cfg_(std::move(cfg)), impl_(std::make_unique<Impl>()) {
  const std::string& u = cfg_.base_url;
  const size_t scheme_end = u.find("://");
  if (scheme_end == std::string::npos || (u.compare(0, scheme_end, "http") != 0 && u.compare(0, scheme_end, "https") != 0))
    throw UsageError("URL '" + clip_text(u, 100) + "': expected http://HOST[:PORT][/PATH] or https://...");
  const size_t path_start = u.find('/', scheme_end + 3);
  origin_ = u.substr(0, path_start);
  prefix_ = path_start == std::string::npos ? "" : u.substr(path_start);
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  if (origin_.size() <= scheme_end + 3) throw UsageError("URL '" + clip_text(u, 100) + "': no host");
}

HttpChatClient::~HttpChatClient() = default;

namespace {

httplib::Client& client_for(const std::string& origin, const HttpClientConfig& cfg, std::mutex& mu,
                            std::map<std::thread::id, std::unique_ptr<httplib::Client>>& clients) {
  std::lock_guard<std::mutex> lk(mu);
  auto& c = clients[std::this_thread::get_id()];
  if (!c) {
    c = std::make_unique<httplib::Client>(origin);
    if (!c->is_valid()) throw UsageError("URL " + origin + ": cannot create a client (https needs OpenSSL support)");
    const auto secs = static_cast<time_t>(cfg.timeout_s);
    const auto usecs = static_cast<time_t>((cfg.timeout_s - static_cast<double>(secs)) * 1e6);
    c->set_connection_timeout(secs, usecs);
    c->set_read_timeout(secs, usecs);
    c->set_write_timeout(secs, usecs);
    c->set_keep_alive(true);
    // cpp-httplib writes the request head and body in two send()s; with Nagle on, the body waits
    // for the peer's delayed ACK (up to 40 ms per call: 50 ms calls ran at 0.66 of ideal).
    c->set_tcp_nodelay(true);
    if (!cfg.ca_cert_file.empty()) c->set_ca_cert_path(cfg.ca_cert_file);
    if (!cfg.api_key.empty()) c->set_bearer_token_auth(cfg.api_key);
  }
  return *c;
}

}  // namespace

namespace {

// s with every occurrence of the API key replaced by "***": a server may echo the Authorization
// header in an error body, and error texts end up in logs and stage files.
std::string redact_key(std::string s, const std::string& key) {
  if (key.empty()) return s;
  for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + 3)) s.replace(at, key.size(), "***");
  return s;
}

// Bounds a whole call, not each read: cpp-httplib's read timeout applies per recv(), so a server
// that sends a byte now and then would hold the call for ever. A watchdog stops the client's socket
// at the deadline (Client::stop() is the thread-safe way to abort a request in flight).
class CallDeadline {
 public:
  CallDeadline(httplib::Client& cli, double seconds) {
    watchdog_ = std::thread([this, &cli, seconds] {
      std::unique_lock<std::mutex> lk(mu_);
      if (!cv_.wait_for(lk, std::chrono::duration<double>(seconds), [this] { return done_; })) {
        expired_ = true;
        cli.stop();
      }
    });
  }
  ~CallDeadline() { finish(); }
  // Ends the watch; true when the deadline passed first.
  bool finish() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    return expired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, expired_ = false;
  std::thread watchdog_;
};

}  // namespace

ChatReply HttpChatClient::complete(const ChatRequest& r) {
  httplib::Client& cli = client_for(origin_, cfg_, impl_->mu, impl_->clients);
  const std::string where = "POST " + origin_ + prefix_ + "/chat/completions";
  httplib::Result res = [&] {
    CallDeadline deadline(cli, cfg_.timeout_s);
    auto got = cli.Post(prefix_ + "/chat/completions", chat_request_body(r), "application/json");
    if (deadline.finish())
      throw CallError(CallError::Kind::Timeout, where + ": no complete reply within the --timeout of " +
                                                    nlohmann::json(cfg_.timeout_s).dump() + " s");
    return got;
  }();
  if (!res) {
    const auto err = res.error();
    if (err == httplib::Error::SSLServerVerification)  // another try cannot succeed
      throw CallError(CallError::Kind::Client, where + ": " + httplib::to_string(err) +
                                                   " (the server's certificate is not trusted: check --ca-cert)");
    const auto kind = err == httplib::Error::Read || err == httplib::Error::Write ? CallError::Kind::Timeout
                                                                                  : CallError::Kind::Connection;
    throw CallError(kind, where + ": " + httplib::to_string(err));
  }
  const int st = res->status;
  if (st == 200) {
    try {
      return parse_chat_response(res->body);
    } catch (const CallError& e) {
      throw CallError(e.kind(), redact_key(e.what(), cfg_.api_key), e.status(), e.retry_after_s());
    }
  }
  const std::string msg =
      redact_key(where + ": HTTP " + std::to_string(st) + ": " + server_message(res->body), cfg_.api_key);
  const double ra = res->has_header("Retry-After") ? parse_retry_after(res->get_header_value("Retry-After")) : -1;
  if (st == 429) throw CallError(CallError::Kind::RateLimited, msg, st, ra);
  if (st == 408) throw CallError(CallError::Kind::Timeout, msg, st, ra);
  if (st >= 500) throw CallError(CallError::Kind::Server, msg, st, ra);
  throw CallError(CallError::Kind::Client, msg, st);
}

void HttpChatClient::release_thread() {
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->clients.erase(std::this_thread::get_id());
}

std::string HttpChatClient::first_model_id() {
  httplib::Client& cli = client_for(origin_, cfg_, impl_->mu, impl_->clients);
  auto res = cli.Get(prefix_ + "/models");
  const std::string where = "GET " + origin_ + prefix_ + "/models";
  if (!res) throw CallError(CallError::Kind::Connection, where + ": " + httplib::to_string(res.error()));
  if (res->status != 200)
    throw CallError(CallError::Kind::Client,
                    redact_key(where + ": HTTP " + std::to_string(res->status) + ": " + server_message(res->body), cfg_.api_key),
                    res->status);
  auto j = json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].is_object() || !j["data"][0].contains("id") || !j["data"][0]["id"].is_string())
    throw CallError(CallError::Kind::Malformed, where + ": expected {data:[{id}...]}");
  return j["data"][0]["id"].get<std::string>();
}

}  // namespace rmkit::distill
