#include "rmkit/serve/server.h"

#include <sys/socket.h>

#include <ATen/Parallel.h>
#include <httplib.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>

#include "rmkit/core/error.h"
#include "rmkit/serve/request.h"
#include "rmkit/serve/routes.h"

namespace rmkit::serve {

double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }

void check_input_count(size_t n, int64_t limit, const std::string& field) {
  if (n == 0) throw HttpError::unprocessable(field + ": no input to score", field);
  if (static_cast<int64_t>(n) > limit)
    throw HttpError::too_large(field + ": " + std::to_string(n) + " inputs, more than the limit " +
                                   std::to_string(limit) + " (--max-inputs)",
                               field);
}

namespace {
double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// Constant-time comparison: the time depends on the lengths only, not on where the bytes differ.
bool same_key(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

const std::vector<double> kSecondsBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}  // namespace

Server::Server(ServerConfig cfg) : cfg_(std::move(cfg)), http_(std::make_unique<httplib::Server>()) {
  if (cfg_.models.empty()) throw UsageError("serve: at least one --model is required");
  created_ = static_cast<int64_t>(std::time(nullptr));
  // The compute threads are new threads: give them the intra-op thread count configured here
  // (OpenMP settings are per thread).
  if (cfg_.batcher.threads <= 0) cfg_.batcher.threads = at::get_num_threads();
  metrics_.counter("rmkit_requests_total", "HTTP requests by route and status code");
  metrics_.histogram("rmkit_request_seconds", "Time from request parsed to response ready, by route", kSecondsBuckets);
  metrics_.gauge("rmkit_queue_sequences", "Sequences waiting for a batch, by model");
  metrics_.histogram("rmkit_queue_seconds", "Time a request waited before its first batch ran", kSecondsBuckets);
  metrics_.histogram("rmkit_compute_seconds", "Forward time per batch", kSecondsBuckets);
  metrics_.histogram("rmkit_batch_sequences", "Sequences per batch", {1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  metrics_.histogram("rmkit_batch_tokens", "Tokens per batch",
                     {64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536});
  metrics_.counter("rmkit_scored_sequences_total", "Sequences scored, by model");
  metrics_.counter("rmkit_computed_tokens_total", "Tokens run through the model (a shared prompt counts once), by model");
  metrics_.gauge("rmkit_ready", "1 when every model is loaded");
  metrics_.counter("rmkit_generated_tokens_total", "Tokens generated, by model");
  metrics_.gauge("rmkit_kv_cache_bytes", "KV-cache memory reserved by admitted generation requests, by model");
  metrics_.histogram("rmkit_time_to_first_token_seconds", "Time from request to its first generated token", kSecondsBuckets);
  metrics_.histogram("rmkit_inter_token_seconds", "Time between consecutive tokens of a sequence", kSecondsBuckets);
  metrics_.set("rmkit_ready", 0);
  // Keep a few HTTP threads free of compute waits so /health, /metrics and 503s always answer.
  max_waiting_ = std::max(1, cfg_.http_threads - 4);
  register_routes();
}

Server::~Server() {
  shutdown();
  if (loader_.joinable()) loader_.join();
}

int Server::bind() {
  auto& h = *http_;
  h.new_task_queue = [n = cfg_.http_threads] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  h.set_payload_max_length(static_cast<size_t>(cfg_.max_body_bytes));
  h.set_keep_alive_max_count(1000);
  // cpp-httplib sends the response head and body in two send()s: with Nagle on, every reply on a
  // kept-alive connection waited for the client's delayed ACK (~44 ms even for /health).
  h.set_tcp_nodelay(true);
  h.set_keep_alive_timeout(static_cast<time_t>(std::max(1.0, cfg_.keep_alive_timeout_s)));
  h.set_read_timeout(std::max<time_t>(1, static_cast<time_t>(cfg_.request_timeout_s)), 0);
  h.set_write_timeout(std::max<time_t>(1, static_cast<time_t>(cfg_.request_timeout_s)), 0);
  // cpp-httplib 0.11 listens with a backlog of 5 (compiled into Debian's library): 32 clients
  // connecting at once overflowed the accept queue and some saw their first request fail (bench_serve
  // counted "Read" client errors, with or without TCP_NODELAY). The listening socket is captured
  // here and listen() is called again with a real backlog (Linux adjusts it in place).
  int listen_fd = -1;
  h.set_socket_options([&listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd = static_cast<int>(sock);
  });
  if (cfg_.port == 0) {
    port_ = h.bind_to_any_port(cfg_.host);
  } else {
    port_ = h.bind_to_port(cfg_.host, cfg_.port) ? cfg_.port : -1;
  }
  h.set_socket_options(httplib::default_socket_options);  // accepted sockets: the defaults
  if (port_ <= 0)
    throw IoError("serve: cannot bind " + cfg_.host + ":" + std::to_string(cfg_.port) +
                  " (address in use, or not an address of this machine)");
  if (listen_fd >= 0) ::listen(listen_fd, 1024);
  return port_;
}

void Server::start() {
  loader_ = std::thread([this] { load_models(); });
  listener_ = std::thread([this] { http_->listen_after_bind(); });
}

void Server::load_models() {
  try {
    if (cfg_.before_load) cfg_.before_load();
    for (const auto& [name, path] : cfg_.models) {
      if (shut_) break;  // SIGTERM while loading: no further model
      Slot s;
      s.name = name;
      if (is_reward_model_dir(path)) s.rm = std::make_unique<RewardSlot>(name, path, cfg_.slot);
      else s.lm = std::make_unique<LmSlot>(name, path, cfg_.slot.tokenizer, cfg_.slot.chat_template, cfg_.engine, &metrics_, &compute_mu_);
      slots_.push_back(std::move(s));
    }
    for (auto& s : slots_)
      if (s.rm)
        s.batcher = std::make_unique<RewardBatcher>(s.rm->model(), s.rm->name(), cfg_.batcher, &metrics_, &compute_mu_);
    State expected = State::Loading;
    state_.compare_exchange_strong(expected, State::Ready);
    metrics_.set("rmkit_ready", 1);
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lk(state_mu_);
    load_error_ = e.what();
    if (auto nl = load_error_.find('\n'); nl != std::string::npos) load_error_.resize(nl);
    state_ = State::Failed;
  }
  loaded_ = true;
}

bool Server::wait_ready(double timeout_s) {
  const auto end = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < end) {
    State s = state_.load();
    if (s == State::Ready) return true;
    if (s == State::Failed || s == State::Draining) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string Server::load_error() const {
  std::lock_guard<std::mutex> lk(state_mu_);
  return load_error_;
}

std::vector<std::string> Server::model_descriptions() const {
  std::vector<std::string> v;
  for (const auto& s : slots_) v.push_back(s.name + ": " + (s.rm ? s.rm->describe() : s.lm->describe()));
  return v;
}

bool Server::shutdown() {
  if (shut_.exchange(true)) return true;
  if (state_.load() != State::Failed) state_ = State::Draining;
  // httplib's stop() closes the listening socket; its worker pool then finishes the requests in
  // flight and joins. Bound that by the drain timeout.
  bool drained = true;
  const auto end = Clock::now() + std::chrono::duration<double>(cfg_.drain_timeout_s);
  if (listener_.joinable()) {
    http_->stop();
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread joiner([this, done] {
      listener_.join();
      *done = true;
    });
    while (!*done && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    drained = done->load();
    if (drained) {
      joiner.join();
    } else {
      joiner.detach();  // the process is about to exit
    }
  }
  // a load still in progress (a big model on a slow disk) is waited for until the same deadline,
  // then left behind: the caller exits the process (run_serve's _Exit) instead of hanging
  if (loader_.joinable()) {
    while (!loaded_ && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (loaded_) {
      loader_.join();
    } else {
      loader_.detach();
      return false;
    }
  }
  if (drained)
    for (auto& s : slots_) {
      if (s.batcher) s.batcher->stop();
      if (s.lm) s.lm->engine().stop();
    }
  return drained;
}

bool Server::authorized(const httplib::Request& req) const {
  if (cfg_.api_keys.empty()) return true;
  const std::string h = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (h.size() <= prefix.size() || h.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string key = h.substr(prefix.size());
  bool ok = false;
  for (const auto& k : cfg_.api_keys) ok |= same_key(key, k);  // no early exit
  return ok;
}

void Server::answer(const httplib::Request& req, httplib::Response& res, const std::string& route, int status,
                    const nlohmann::json& body, double t0) {
  res.status = status;
  if (status == 503) res.set_header("Retry-After", "1");
  if (status == 401) res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  metrics_.inc("rmkit_requests_total", {{"route", route}, {"status", std::to_string(status)}});
  metrics_.observe("rmkit_request_seconds", now_s() - t0, {{"route", route}});
}

void Server::route(const char* method, const std::string& path, JsonHandler fn, bool needs_models) {
  auto handler = [this, path, fn = std::move(fn), needs_models](const httplib::Request& req, httplib::Response& res) {
    const double t0 = now_s();
    try {
      if (needs_models) {
        State s = state_.load();
        if (s == State::Loading) throw HttpError::overloaded("models are still loading; retry shortly");
        if (s == State::Draining) throw HttpError::overloaded("server is shutting down");
        if (s == State::Failed) throw HttpError::internal("model loading failed: " + load_error());
      }
      nlohmann::json out = fn(req, res);
      if (out.is_null()) {  // answered by the handler (a stream)
        metrics_.inc("rmkit_requests_total", {{"route", path}, {"status", std::to_string(res.status)}});
        return;
      }
      answer(req, res, path, 200, out, t0);
    } catch (const HttpError& e) {
      answer(req, res, path, e.status, error_body(e), t0);
    } catch (const std::exception& e) {
      std::string m = e.what();
      if (auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
      answer(req, res, path, 500, error_body(HttpError::internal(quote_input(m, 300))), t0);
    }
  };
  if (std::string(method) == "GET") http_->Get(path, handler);
  else http_->Post(path, handler);
}

Server::Slot& Server::slot_for(const nlohmann::json& body, bool reward) {
  const char* kind = reward ? "reward model" : "causal LM";
  auto name = opt_string(body, "model");
  for (auto& s : slots_) {
    if (name && s.name != *name) continue;
    if (!name && !(reward ? bool(s.rm) : bool(s.lm))) continue;
    if (reward ? !s.rm : !s.lm)
      throw HttpError::bad_request("model '" + s.name + "' is a " + (reward ? "causal LM" : "reward model") +
                                       ", this route needs a " + kind +
                                       (reward ? " (use /v1/completions)" : " (use /v1/score)"),
                                   "model");
    return s;
  }
  std::string known;
  for (auto& s : slots_) known += (known.empty() ? "" : ", ") + s.name;
  if (!name) throw HttpError::not_found(std::string("no ") + kind + " is served here (served: " + known + ")", "model");
  throw HttpError::not_found("model '" + quote_input(*name, 100) + "' is not served here (served: " + known + ")",
                             "model");
}

std::shared_ptr<void> Server::acquire_inflight() {
  if (waiting_.fetch_add(1) >= max_waiting_) {
    --waiting_;
    throw HttpError::overloaded("too many requests in flight (" + std::to_string(max_waiting_) +
                                ", from --http-threads); retry later");
  }
  return std::shared_ptr<void>(nullptr, [w = &waiting_](void*) { --*w; });
}

std::vector<double> Server::score(Slot& slot, std::vector<eval::ScoreGroup> groups, size_t sequences) {
  const auto place = acquire_inflight();
  auto job = slot.batcher->submit(std::move(groups));
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(cfg_.request_timeout_s));
  if (!job->wait_until(deadline))
    throw HttpError::timeout("request timed out after " + std::to_string(cfg_.request_timeout_s) +
                             " s (--request-timeout) with " + std::to_string(sequences) + " sequences");
  if (!job->error.empty()) throw HttpError::internal("scoring failed: " + quote_input(job->error, 300));
  return job->rewards;
}

void Server::register_routes() {
  auto& h = *http_;
  // Runs before cpp-httplib reads a body. Refusals here are immediate: httplib itself would first
  // read (and discard) a declared body past --max-body-bytes, and read a POST without
  // Content-Length until the client closes, each holding a worker up to the read timeout. A refused
  // request's body is never read, so its connection is closed after the answer.
  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool has_body_method = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    const bool chunked = req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
    const std::string length = req.get_header_value("Content-Length");
    auto refuse = [&](const char* route, int status, const std::string& type, const std::string& message) {
      answer(req, res, route, status, error_body({status, type, message, ""}), now_s());
      if (has_body_method || !length.empty() || chunked) res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    };
    if (req.path == "/health" || (req.path == "/metrics" && cfg_.metrics_public) || authorized(req)) {
      if (has_body_method && length.empty() && !chunked)
        return refuse("other", 411, "invalid_request_error", "a request body needs a Content-Length header");
      char* end = nullptr;
      errno = 0;
      const unsigned long long declared = length.empty() ? 0 : std::strtoull(length.c_str(), &end, 10);
      if (!length.empty() && (errno != 0 || end == length.c_str() || *end != '\0' ||
                              declared > static_cast<unsigned long long>(cfg_.max_body_bytes)))
        return refuse("other", 413, "invalid_request_error",
                      "request body larger than " + std::to_string(cfg_.max_body_bytes) + " bytes (--max-body-bytes)");
      return httplib::Server::HandlerResponse::Unhandled;
    }
    return refuse("auth", 401, "authentication_error", "missing or invalid API key (send Authorization: Bearer KEY)");
  });
  // httplib's own errors (404 unknown path, 413 body too large, 400 bad request line) get JSON.
  h.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    HttpError e{res.status, "invalid_request_error", "", ""};
    if (res.status == 404) e = HttpError::not_found("no route " + req.method + " " + quote_input(req.path, 100));
    else if (res.status == 413)
      e = HttpError::too_large("request body larger than " + std::to_string(cfg_.max_body_bytes) +
                               " bytes (--max-body-bytes)");
    else if (res.status == 405) e.message = "method not allowed";
    else e.message = "bad request";
    metrics_.inc("rmkit_requests_total", {{"route", "other"}, {"status", std::to_string(res.status)}});
    res.set_content(error_body(e).dump(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  h.Get("/health", [this](const httplib::Request& req, httplib::Response& res) {
    const double t0 = now_s();
    State s = state_.load();
    const char* st = s == State::Ready ? "ok" : s == State::Loading ? "loading" : s == State::Draining ? "draining" : "failed";
    nlohmann::json body = {{"status", st}};
    if (s == State::Failed) body["error"] = load_error();
    answer(req, res, "/health", s == State::Ready ? 200 : 503, body, t0);
  });
  h.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    res.set_content(metrics_.render({{"process_resident_memory_bytes", "Resident set size of the server process",
                                      process_rss_bytes()}}),
                    "text/plain; version=0.0.4; charset=utf-8");
    metrics_.inc("rmkit_requests_total", {{"route", "/metrics"}, {"status", "200"}});
  });
  route("GET", "/v1/models", [this](const httplib::Request&, httplib::Response&) {
    nlohmann::json data = nlohmann::json::array();
    for (const auto& s : slots_) data.push_back(s.rm ? s.rm->card(created_) : s.lm->card(created_));
    return nlohmann::json{{"object", "list"}, {"data", data}};
  });
  Routes::add_reward(*this);
  Routes::add_compat(*this);
  Routes::add_openai(*this);
}

}  // namespace rmkit::serve
