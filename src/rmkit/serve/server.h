// `rmkit serve`: an HTTP server for reward models (cpp-httplib + nlohmann-json).
//   routes (reward_routes.cpp, compat_routes.cpp): /v1/score, /v1/compare, /get_reward (OpenRLHF),
//   /classify and /pooling (vLLM), /predict (TEI), /v1/models; operations: /health, /metrics.
// Lifecycle: bind() (port 0 = any free port) -> start() loads models in the background (/health
// answers 503 until ready) and serves on a thread -> shutdown() stops accepting, lets requests in
// flight finish (bounded by drain_timeout_s) and stops the compute threads.
// Every handler answers JSON; errors are {"error": {code, type, message, param}} (http_error.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/serve/batcher.h"
#include "rmkit/serve/http_error.h"
#include "rmkit/serve/metrics.h"
#include "rmkit/serve/lm_slot.h"
#include "rmkit/serve/reward_slot.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace rmkit::serve {

struct ServerConfig {
  std::vector<std::pair<std::string, std::string>> models;  // (name, path); the first is the default
  SlotOptions slot;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::vector<std::string> api_keys;    // empty = no auth
  bool metrics_public = false;
  int64_t max_body_bytes = 8 << 20;
  int64_t max_inputs = 1024;            // inputs (sequences) per request
  BatcherConfig batcher;
  EngineConfig engine;                  // causal LMs (generation routes)
  double request_timeout_s = 60;
  double drain_timeout_s = 30;
  int http_threads = 64;
  double keep_alive_timeout_s = 5;
  std::function<void()> before_load;   // test seam: runs on the loader thread before loading
};

class Server {
 public:
  explicit Server(ServerConfig cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0 picks a free one); returns the bound port. Throws IoError.
  int bind();
  // Loads the models on a background thread and serves on another. Returns at once.
  void start();
  // Blocks until the models are loaded (true) or loading failed (false, load_error() says why).
  bool wait_ready(double timeout_s);
  std::string load_error() const;
  // Stop accepting, finish requests in flight (at most drain_timeout_s), stop compute. Idempotent.
  // Returns false when the drain timed out.
  bool shutdown();

  int port() const { return port_; }
  const ServerConfig& config() const { return cfg_; }
  MetricsRegistry& metrics() { return metrics_; }
  std::vector<std::string> model_descriptions() const;

 private:
  friend struct Routes;
  enum class State { Loading, Ready, Failed, Draining };
  void load_models();
  void register_routes();
  // Wraps a JSON handler: auth/ready checks already done; counts metrics; turns errors into JSON.
  // A handler that answered itself (a stream) returns null.
  using JsonHandler = std::function<nlohmann::json(const httplib::Request&, httplib::Response&)>;
  void route(const char* method, const std::string& path, JsonHandler fn, bool needs_models = true);
  void answer(const httplib::Request& req, httplib::Response& res, const std::string& route, int status,
              const nlohmann::json& body, double t0);
  bool authorized(const httplib::Request& req) const;

  // Scoring helpers for the route files.
  struct Slot {
    std::string name;
    std::unique_ptr<RewardSlot> rm;           // a reward model...
    std::unique_ptr<RewardBatcher> batcher;
    std::unique_ptr<LmSlot> lm;               // ...or a causal LM
  };
  // The "model" field's slot, or the first of that kind; 404 when unknown, 400 for the wrong kind.
  Slot& slot_for(const nlohmann::json& body, bool reward = true);
  // Queues groups on the slot's batcher and waits (504 at the request timeout).
  std::vector<double> score(Slot& slot, std::vector<eval::ScoreGroup> groups, size_t sequences);
  // One of the max_waiting_ places for a request that holds an HTTP thread while the model works
  // (scoring, generation, a live stream); released when the returned token is destroyed. 503 with
  // Retry-After when none is free, so that 4 HTTP threads always stay free for /health, /metrics
  // and these 503s.
  std::shared_ptr<void> acquire_inflight();

  ServerConfig cfg_;
  MetricsRegistry metrics_;
  std::unique_ptr<httplib::Server> http_;
  std::vector<Slot> slots_;
  std::mutex compute_mu_;
  std::atomic<State> state_{State::Loading};
  mutable std::mutex state_mu_;
  std::string load_error_;
  std::thread loader_, listener_;
  int port_ = 0;
  int64_t created_ = 0;
  std::atomic<bool> loaded_{false};  // load_models() returned (loaded or failed)
  std::atomic<int> waiting_{0};  // requests holding an HTTP thread on compute (acquire_inflight)
  int max_waiting_ = 0;
  std::atomic<bool> shut_{false};
};

}  // namespace rmkit::serve
