#include "serve_fixture.h"

#include <filesystem>
#include <mutex>

#include "rmkit/core/file_io.h"
#include "rmkit/data/encode.h"
#include "rmkit/data/readers.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/train/reward_model.h"

namespace rmkit::serve::testing {

const std::string& rm_dir() {
  static std::string dir;
  static std::once_flag once;
  std::call_once(once, [] {
    dir = rmkit::testing::temp_dir("serve_rm");
    torch::manual_seed(1234);
    auto lm = model::load_pretrained(rmkit::testing::asset("models/stories260K/stories260K.bin"),
                                     rmkit::testing::asset("models/stories260K/tok512.model"));
    train::RewardModel rm(lm.model, train::HeadConfig());
    train::RewardModelMeta meta;
    meta.chat_template = "plain";
    meta.reward_mean = 0.5;
    meta.reward_std = 2.0;
    meta.calibration_count = 100;
    train::save_reward_model(dir, *rm, lm.tokenizer.get(), meta);
  });
  return dir;
}

std::vector<data::PrefPair> sample_pairs(size_t n) {
  // HH-RLHF dialogues, keeping pairs that fit 512 tokens untruncated: pair scoring (`rmkit score`)
  // and single scoring truncate differently, and these tests compare rewards, not truncation.
  auto all = data::read_prefs(rmkit::testing::asset("prefs/hh_rlhf_harmless_base_test.jsonl.gz"));
  auto tok = text::load_tokenizer(rm_dir());
  auto tmpl = text::ChatTemplate::named("plain");
  std::vector<data::PrefPair> out;
  for (auto& p : all) {
    if (out.size() == n) break;
    if (p.chosen.empty() || p.rejected.empty() || p.chosen == p.rejected) continue;
    if (data::encode_pair(p, *tok, tmpl, 512).truncated) continue;
    out.push_back(p);
  }
  return out;
}

ServerConfig base_config() {
  ServerConfig c;
  c.models = {{"rm", rm_dir()}};
  c.port = 0;
  c.http_threads = 32;
  c.drain_timeout_s = 10;
  c.slot.max_length = 512;
  return c;
}

RunningServer::RunningServer(ServerConfig cfg) {
  server = std::make_unique<Server>(std::move(cfg));
  port = server->bind();
  server->start();
  if (!server->wait_ready(120)) throw std::runtime_error("server did not become ready: " + server->load_error());
}

RunningServer::~RunningServer() { server->shutdown(); }

httplib::Client RunningServer::client(double timeout_s) const {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(static_cast<time_t>(timeout_s), 0);
  c.set_connection_timeout(5, 0);
  return c;
}

namespace {
Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) return out;  // status 0: no response
  out.status = r->status;
  out.raw = r->body;
  out.retry_after = r->get_header_value("Retry-After");
  try {
    out.body = json::parse(r->body);
  } catch (...) {
  }
  return out;
}
httplib::Headers auth(const std::string& key) {
  httplib::Headers h;
  if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
  return h;
}
}  // namespace

Reply post(const httplib::Client& c, const std::string& path, const json& body, const std::string& key) {
  auto& cc = const_cast<httplib::Client&>(c);
  return to_reply(cc.Post(path.c_str(), auth(key), body.dump(), "application/json"));
}

Reply post_raw(httplib::Client& c, const std::string& path, const std::string& body, const std::string& key) {
  return to_reply(c.Post(path.c_str(), auth(key), body, "application/json"));
}

Reply get(httplib::Client& c, const std::string& path, const std::string& key) {
  return to_reply(c.Get(path.c_str(), auth(key)));
}

json fixture(const std::string& name) {
  return json::parse(read_file(std::string(RMKIT_SOURCE_DIR) + "/tests/data/serve/" + name));
}

std::string shape_diff(const json& want, const json& got, const std::string& at) {
  auto kind = [](const json& j) { return j.is_number() ? std::string("number") : std::string(j.type_name()); };
  if (kind(want) != kind(got)) return at + ": expected " + kind(want) + ", got " + kind(got);
  if (want.is_object()) {
    for (auto& [k, v] : want.items()) {
      if (!got.contains(k)) return at + ": missing key '" + k + "'";
      auto d = shape_diff(v, got[k], at + "." + k);
      if (!d.empty()) return d;
    }
    for (auto& [k, v] : got.items())
      if (!want.contains(k)) return at + ": unexpected key '" + k + "'";
  }
  if (want.is_array() && !want.empty())
    for (size_t i = 0; i < got.size(); ++i) {
      auto d = shape_diff(want[0], got[i], at + "[" + std::to_string(i) + "]");
      if (!d.empty()) return d;
    }
  return "";
}

json score_input(const data::PrefPair& p, bool chosen) {
  json msgs = json::array();
  for (const auto& m : p.prompt) msgs.push_back({{"role", m.role}, {"content", m.content}});
  return {{"prompt", msgs}, {"response", chosen ? p.chosen : p.rejected}};
}

}  // namespace rmkit::serve::testing
