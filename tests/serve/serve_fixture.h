// Shared fixture for the serve tests: a stories260K reward model (seeded random linear head,
// calibration written to rmkit.json) saved once per process, an in-process Server on 127.0.0.1:0,
// an HTTP client helper, and real preference rows from the shared assets.
#pragma once
#include <httplib.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/data/pairs.h"
#include "rmkit/serve/server.h"
#include "test_util.h"

namespace rmkit::serve::testing {

using nlohmann::json;

// Directory of the saved reward model (created on first use).
const std::string& rm_dir();
// The first n pairs of ultrafeedback_sample (real rows; identical/empty sides skipped).
std::vector<data::PrefPair> sample_pairs(size_t n);

ServerConfig base_config();

// Starts a server and waits until it is ready; stops it on destruction.
struct RunningServer {
  explicit RunningServer(ServerConfig cfg);
  ~RunningServer();
  std::unique_ptr<Server> server;
  int port = 0;
  httplib::Client client(double timeout_s = 60) const;
};

struct Reply {
  int status = 0;
  json body;
  std::string raw;
  std::string retry_after;
};
Reply post(const httplib::Client& c, const std::string& path, const json& body, const std::string& key = "");
Reply post_raw(httplib::Client& c, const std::string& path, const std::string& body, const std::string& key = "");
Reply get(httplib::Client& c, const std::string& path, const std::string& key = "");

// A request/response fixture from tests/data/serve/.
json fixture(const std::string& name);
// "" when `got` has the shape of `want`: equal key sets (recursively), array elements shaped like
// want's first element, the same value kinds (any number matches any number); else where it differs.
std::string shape_diff(const json& want, const json& got, const std::string& at = "$");

// {"prompt": [...messages], "response": reply} input objects for /v1/score.
json score_input(const data::PrefPair& p, bool chosen);

}  // namespace rmkit::serve::testing
