// Route registration, split by family of routes (one file each). Internal to serve/.
#pragma once
#include "rmkit/serve/server.h"

namespace rmkit::serve {

struct Routes {
  static void add_reward(Server& s);  // /v1/score, /v1/compare (reward_routes.cpp)
  static void add_compat(Server& s);  // /get_reward, /classify, /pooling, /predict (compat_routes.cpp)
  static void add_openai(Server& s);  // /v1/completions, /v1/chat/completions (openai_routes.cpp)
  // Helpers shared by both files.
  static Server::Slot& slot_for(Server& s, const nlohmann::json& body, bool reward = true) {
    return s.slot_for(body, reward);
  }
  static std::vector<double> score(Server& s, Server::Slot& slot, std::vector<eval::ScoreGroup> groups, size_t n) {
    return s.score(slot, std::move(groups), n);
  }
  static void route(Server& s, const char* method, const std::string& path, Server::JsonHandler fn) {
    s.route(method, path, std::move(fn));
  }
  static std::shared_ptr<void> acquire_inflight(Server& s) { return s.acquire_inflight(); }
  static const ServerConfig& config(const Server& s) { return s.cfg_; }
  static int64_t created(const Server& s) { return s.created_; }
};

double sigmoid(double x);
// 413 naming the limit when n inputs exceed --max-inputs.
void check_input_count(size_t n, int64_t limit, const std::string& field);

}  // namespace rmkit::serve
