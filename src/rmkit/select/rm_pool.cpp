#include "rmkit/select/rm_pool.h"

#include <httplib.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/encode.h"
#include "rmkit/eval/scorer.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/serve/reward_slot.h"
#include "rmkit/train/logprobs.h"

namespace rmkit::select {

using json = nlohmann::json;

ArmSpec ArmSpec::parse(const std::string& s) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("--rm '" + clip_text(s, 100) + "': expected NAME=SPEC (SPEC: DIR, policy=DIR[,reference=DIR] or a URL)");
  ArmSpec a;
  a.name = s.substr(0, eq);
  const std::string spec = s.substr(eq + 1);
  if (spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0) {
    a.kind = "remote";
    a.url = spec;
    return a;
  }
  if (spec.rfind("policy=", 0) == 0) {
    size_t pos = 0;
    while (pos <= spec.size()) {
      const size_t comma = spec.find(',', pos);
      const std::string part = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      const size_t e = part.find('=');
      const std::string k = part.substr(0, e), v = e == std::string::npos ? "" : part.substr(e + 1);
      if (k == "policy" && !v.empty()) a.policy = v;
      else if (k == "reference" && !v.empty()) a.reference = v;
      else throw UsageError("--rm " + a.name + ": unknown or empty key '" + clip_text(part, 60) + "' (expected policy=DIR[,reference=DIR])");
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    a.kind = a.reference.empty() ? "logprob" : "dpo";
    return a;
  }
  if (spec.empty()) throw UsageError("--rm " + a.name + ": empty SPEC");
  a.kind = "rm";
  a.path = spec;
  return a;
}

std::string ArmSpec::describe() const {
  if (kind == "rm") return name + ": reward model " + path;
  if (kind == "dpo") return name + ": DPO implicit reward of " + policy + " against " + reference;
  if (kind == "logprob") return name + ": mean response log-prob under " + policy;
  return name + ": remote " + url;
}

namespace {

// A local reward model: the server's slot encoders + one packed forward per batch of groups.
class LocalRmArm : public RewardArm {
 public:
  LocalRmArm(const ArmSpec& s, const ArmOptions& o) {
    name_ = s.name;
    serve::SlotOptions so;
    so.tokenizer = o.tokenizer;
    so.chat_template = o.chat_template;
    so.max_length = o.max_length;
    slot_ = std::make_unique<serve::RewardSlot>(s.name, s.path, so);
  }
  std::vector<double> score(const std::vector<ScoreItem>& items) override {
    std::vector<serve::EncodedInput> in;
    for (size_t i = 0; i < items.size(); ++i)
      for (size_t k = 0; k < items[i].responses.size(); ++k)
        in.push_back(slot_->encode_chat(items[i].prompt, items[i].responses[k],
                                        "items[" + std::to_string(i) + "][" + std::to_string(k) + "]"));
    serve::GroupedInputs g = serve::group_by_prompt(std::move(in));
    std::vector<const eval::ScoreGroup*> ptrs;
    for (const auto& grp : g.groups) {
      ptrs.push_back(&grp);
      tokens_ += eval::group_tokens(grp);
    }
    const std::vector<double> r = eval::score_groups(slot_->model(), ptrs);
    std::vector<double> out(g.reward_index.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = r[g.reward_index[i]];
    return out;
  }

 private:
  std::unique_ptr<serve::RewardSlot> slot_;
};

// Σ (or mean) response log-prob of each (prompt, response) under one causal LM, batched with right
// padding (the mask makes padding irrelevant).
std::vector<double> response_logprobs(model::CausalLMImpl& lm, const std::vector<data::EncodedSingle>& enc, bool mean,
                                      int64_t* tokens) {
  torch::InferenceMode guard;
  std::vector<double> out(enc.size());
  const size_t batch = 8;
  for (size_t b0 = 0; b0 < enc.size(); b0 += batch) {
    const size_t b1 = std::min(enc.size(), b0 + batch);
    size_t T = 1;
    for (size_t i = b0; i < b1; ++i) T = std::max(T, enc[i].length());
    auto ids = torch::zeros({static_cast<int64_t>(b1 - b0), static_cast<int64_t>(T)}, torch::kLong);
    auto attn = torch::zeros_like(ids), resp = torch::zeros_like(ids);
    for (size_t i = b0; i < b1; ++i) {
      const auto& e = enc[i];
      const int64_t r = static_cast<int64_t>(i - b0);
      size_t t = 0;
      for (int32_t id : e.prompt_ids) ids[r][static_cast<int64_t>(t++)] = id;
      for (int32_t id : e.response_ids) {
        resp[r][static_cast<int64_t>(t)] = 1;
        ids[r][static_cast<int64_t>(t++)] = id;
      }
      attn[r].narrow(0, 0, static_cast<int64_t>(t)).fill_(1);
      *tokens += static_cast<int64_t>(t);
    }
    model::ForwardInput in;
    in.input_ids = ids;
    in.attention_mask = attn;
    auto logits = lm.forward(in);
    auto lp = mean ? train::sequence_logprob_mean(logits, ids, resp) : train::sequence_logprob_sum(logits, ids, resp);
    auto acc = lp.to(torch::kDouble).contiguous();
    for (size_t i = b0; i < b1; ++i) out[i] = acc[static_cast<int64_t>(i - b0)].item<double>();
  }
  return out;
}

class CausalArm : public RewardArm {
 public:
  CausalArm(const ArmSpec& s, const ArmOptions& o) : max_length_(o.max_length) {
    name_ = s.name;
    auto p = model::load_pretrained(s.policy, o.tokenizer);
    if (!p.tokenizer) throw ConfigError(s.policy + ": no tokenizer found beside the model (pass --tokenizer)");
    policy_ = p.model;
    tok_ = std::shared_ptr<text::Tokenizer>(std::move(p.tokenizer));
    tmpl_ = std::make_unique<text::ChatTemplate>(eval::choose_template(p.config, *tok_, "", o.chat_template == "auto" ? "" : o.chat_template));
    if (max_length_ <= 0) max_length_ = p.config.max_position_embeddings;
    if (!s.reference.empty()) {
      auto r = model::load_pretrained(s.reference, o.tokenizer);
      reference_ = r.model;
    }
  }
  std::vector<double> score(const std::vector<ScoreItem>& items) override {
    std::vector<data::EncodedSingle> enc;
    for (const auto& it : items)
      for (const auto& resp : it.responses)
        enc.push_back(data::encode_single(it.prompt, resp, *tok_, *tmpl_, static_cast<size_t>(max_length_)));
    const bool dpo = reference_ != nullptr;
    auto pol = response_logprobs(*policy_, enc, !dpo, &tokens_);
    if (!dpo) return pol;
    auto ref = response_logprobs(*reference_, enc, false, &tokens_);
    for (size_t i = 0; i < pol.size(); ++i) pol[i] -= ref[i];
    return pol;
  }

 private:
  int64_t max_length_;
  model::CausalLMPtr policy_, reference_;
  std::shared_ptr<text::Tokenizer> tok_;
  std::unique_ptr<text::ChatTemplate> tmpl_;
};

// POST {inputs:[{prompt:[messages], response}...]} to /v1/score; reads data[i].reward.
class RemoteArm : public RewardArm {
 public:
  RemoteArm(const ArmSpec& s, const ArmOptions& o) : key_(o.api_key), timeout_s_(o.timeout_s) {
    name_ = s.name;
    const size_t scheme = s.url.find("://");
    const size_t path = s.url.find('/', scheme + 3);
    origin_ = s.url.substr(0, path);
    path_ = path == std::string::npos ? "" : s.url.substr(path);
    while (!path_.empty() && path_.back() == '/') path_.pop_back();
    if (path_.size() < 9 || path_.compare(path_.size() - 9, 9, "/v1/score") != 0) path_ += "/v1/score";
  }
  std::vector<double> score(const std::vector<ScoreItem>& items) override {
    json inputs = json::array();
    for (const auto& it : items) {
      json p = json::array();
      for (const auto& m : it.prompt) p.push_back({{"role", m.role}, {"content", m.content}});
      for (const auto& r : it.responses) inputs.push_back({{"prompt", p}, {"response", r}});
    }
    httplib::Client c(origin_);
    c.set_read_timeout(static_cast<time_t>(timeout_s_), 0);
    c.set_connection_timeout(static_cast<time_t>(timeout_s_), 0);
    if (!key_.empty()) c.set_bearer_token_auth(key_);
    auto res = c.Post(path_, json{{"inputs", inputs}}.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    const std::string where = "arm " + name_ + ": POST " + origin_ + path_;
    if (!res) throw IoError(where + ": " + httplib::to_string(res.error()));
    auto j = json::parse(res->body, nullptr, false);
    if (res->status != 200)
      throw IoError(where + ": HTTP " + std::to_string(res->status) + ": " + clip_text(res->body, 200));
    if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].size() != inputs.size())
      throw FormatError(where + ": expected {data:[{reward}...]} with one entry per input");
    std::vector<double> out;
    for (const auto& d : j["data"]) {
      if (!d.contains("reward") || !d["reward"].is_number()) throw FormatError(where + ": data[].reward missing");
      out.push_back(d["reward"].get<double>());
    }
    if (j.contains("usage") && j["usage"].contains("prompt_tokens") && j["usage"]["prompt_tokens"].is_number_integer())
      tokens_ += j["usage"]["prompt_tokens"].get<int64_t>();
    return out;
  }

 private:
  std::string origin_, path_, key_;
  double timeout_s_;
};

}  // namespace

std::unique_ptr<RewardArm> make_arm(const ArmSpec& spec, const ArmOptions& opts) {
  if (spec.kind == "rm") return std::make_unique<LocalRmArm>(spec, opts);
  if (spec.kind == "dpo" || spec.kind == "logprob") return std::make_unique<CausalArm>(spec, opts);
  if (spec.kind == "remote") return std::make_unique<RemoteArm>(spec, opts);
  throw UsageError("arm " + spec.name + ": unknown kind '" + spec.kind + "'");
}

}  // namespace rmkit::select
