#include "rmkit/train/reward_model.h"

#include <cmath>

#include "rmkit/core/dir_install.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"

namespace rmkit::train {

// ---------------------------------------------------------------- config / metadata

nlohmann::json HeadConfig::to_json() const {
  return {{"type", type}, {"init", init}, {"mlp_hidden", mlp_hidden}, {"dropout", dropout},
          {"num_attributes", num_attributes}};
}

HeadConfig HeadConfig::from_json(const nlohmann::json& j, const std::string& where) {
  HeadConfig h;
  try {
    h.type = j.value("type", h.type);
    h.init = j.value("init", h.init);
    h.mlp_hidden = j.value("mlp_hidden", h.mlp_hidden);
    h.dropout = j.value("dropout", h.dropout);
    h.num_attributes = j.value("num_attributes", h.num_attributes);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(where + ": field 'head': " + e.what());
  }
  h.validate();
  return h;
}

void HeadConfig::validate() const {
  if (type != "linear" && type != "mlp")
    throw ConfigError("head type: expected linear or mlp, got '" + type + "'");
  if (init != "normal" && init != "zero")
    throw ConfigError("head init: expected normal or zero, got '" + init + "'");
  if (type == "mlp" && mlp_hidden <= 0) throw ConfigError("head mlp_hidden: expected > 0");
  if (dropout < 0 || dropout >= 1) throw ConfigError("head dropout: expected a value in [0, 1)");
  if (num_attributes < 0) throw ConfigError("head num_attributes: expected >= 0");
}

nlohmann::json RewardModelMeta::to_json(const HeadConfig& head) const {
  return {{"format", "rmkit-reward-model"},
          {"version", 1},
          {"head", head.to_json()},
          {"training_config", training_config},
          {"data_hash", data_hash},
          {"chat_template", chat_template},
          {"base_model", base_model},
          {"step", step},
          {"calibration",
           {{"reward_mean", reward_mean}, {"reward_std", reward_std}, {"count", calibration_count}}},
          {"val_accuracy", val_accuracy}};
}

RewardModelMeta RewardModelMeta::from_json(const nlohmann::json& j) {
  RewardModelMeta m;
  try {
    m.training_config = j.value("training_config", nlohmann::json::object());
    m.data_hash = j.value("data_hash", "");
    m.chat_template = j.value("chat_template", "");
    m.base_model = j.value("base_model", "");
    m.step = j.value("step", int64_t{0});
    if (j.contains("calibration")) {
      const auto& c = j["calibration"];
      m.reward_mean = c.value("reward_mean", 0.0);
      m.reward_std = c.value("reward_std", 1.0);
      m.calibration_count = c.value("count", int64_t{0});
    }
    if (j.contains("val_accuracy") && j["val_accuracy"].is_number()) m.val_accuracy = j["val_accuracy"];
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("rmkit.json: ") + e.what());
  }
  return m;
}

std::string sequence_classification_architecture(const model::ModelConfig& cfg) {
  if (cfg.family == "gpt2" || cfg.model_type == "gpt2") return "GPT2ForSequenceClassification";
  if (cfg.model_type == "mistral") return "MistralForSequenceClassification";
  if (cfg.model_type == "qwen2") return "Qwen2ForSequenceClassification";
  if (cfg.model_type == "qwen3") return "Qwen3ForSequenceClassification";
  return "LlamaForSequenceClassification";
}

// ---------------------------------------------------------------- tensor helpers

torch::Tensor last_token_index(const torch::Tensor& mask) {
  // mask [B, T] -> positions where mask==1 keep their index, others 0; the max is the last token.
  auto T = mask.size(1);
  auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(mask.device()));
  return (mask.to(torch::kLong).ne(0).to(torch::kLong) * pos.unsqueeze(0)).amax(1);  // [B]
}

std::pair<torch::Tensor, torch::Tensor> concat_right_padded(const torch::Tensor& ids_a,
                                                            const torch::Tensor& mask_a,
                                                            const torch::Tensor& ids_b,
                                                            const torch::Tensor& mask_b,
                                                            int64_t pad_id) {
  int64_t T = std::max(ids_a.size(1), ids_b.size(1));
  auto pad = [&](const torch::Tensor& t, int64_t value) {
    if (t.size(1) == T) return t;
    return torch::constant_pad_nd(t, {0, T - t.size(1)}, value);
  };
  auto ids = torch::cat({pad(ids_a, pad_id), pad(ids_b, pad_id)}, 0);
  auto mask = torch::cat({pad(mask_a.to(torch::kLong), 0), pad(mask_b.to(torch::kLong), 0)}, 0);
  return {ids, mask};
}

// ---------------------------------------------------------------- module

RewardModelImpl::RewardModelImpl(model::CausalLMPtr backbone, HeadConfig head)
    : backbone_(std::move(backbone)), head_cfg_(std::move(head)) {
  head_cfg_.validate();
  register_module("backbone", backbone_);
  int64_t H = backbone_->config().hidden_size;
  if (head_cfg_.type == "linear") {
    linear_ = register_module("score", torch::nn::Linear(torch::nn::LinearOptions(H, 1).bias(false)));
  } else {
    int64_t M = head_cfg_.mlp_hidden;
    mlp_ = register_module("score", torch::nn::Sequential(torch::nn::Linear(H, M), torch::nn::ReLU(),
                                                          torch::nn::Dropout(head_cfg_.dropout),
                                                          torch::nn::Linear(M, 1)));
  }
  if (head_cfg_.num_attributes > 0)
    attr_ = register_module("score_regression", torch::nn::Linear(H, head_cfg_.num_attributes));
  init_head();
}

void RewardModelImpl::init_head() {
  torch::NoGradGuard ng;
  auto init_linear = [](torch::nn::Linear& l, bool zero) {
    int64_t in = l->weight.size(1);
    if (zero) l->weight.zero_();
    else l->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(in + 1)));
    if (l->bias.defined()) l->bias.zero_();
  };
  bool zero = head_cfg_.init == "zero";
  if (linear_) {
    init_linear(linear_, zero);
  } else {
    torch::nn::Linear f(std::dynamic_pointer_cast<torch::nn::LinearImpl>(mlp_->ptr(0)));
    torch::nn::Linear l(std::dynamic_pointer_cast<torch::nn::LinearImpl>(mlp_->ptr(3)));
    init_linear(f, false);
    init_linear(l, zero);
  }
  if (attr_) init_linear(attr_, zero);
}

torch::Tensor RewardModelImpl::score(const torch::Tensor& pooled) {
  // pooled [B, H] -> [B]
  torch::Tensor out = linear_ ? linear_->forward(pooled) : mlp_->forward(pooled);  // [B, 1]
  return out.squeeze(-1).to(torch::kFloat32);
}

RewardOutput RewardModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask) {
  TORCH_CHECK(ids.dim() == 2 && mask.sizes() == ids.sizes(), "reward model: ids and mask must be [B, T]");
  model::ForwardInput in;
  in.input_ids = ids;
  in.attention_mask = mask;
  RewardOutput out;
  out.hidden = backbone_->forward_hidden(in);  // [B, T, H]
  out.last_index = last_token_index(mask);     // [B]
  const int64_t B = ids.size(0), H = out.hidden.size(2);
  auto idx = out.last_index.view({B, 1, 1}).expand({B, 1, H});
  auto pooled = out.hidden.gather(1, idx).squeeze(1);  // [B, H]
  out.rewards = score(pooled);                          // [B]
  if (attr_) out.attributes = attr_->forward(pooled).to(torch::kFloat32);  // [B, k]
  return out;
}

PairOutput RewardModelImpl::forward_pair(const torch::Tensor& chosen_ids, const torch::Tensor& chosen_mask,
                                         const torch::Tensor& rejected_ids,
                                         const torch::Tensor& rejected_mask) {
  int64_t pad = std::max<int64_t>(0, backbone_->config().pad_token_id);
  auto [ids, mask] = concat_right_padded(chosen_ids, chosen_mask, rejected_ids, rejected_mask, pad);
  PairOutput p;
  p.all = forward(ids, mask);
  const int64_t B = chosen_ids.size(0);
  p.chosen = p.all.rewards.slice(0, 0, B);
  p.rejected = p.all.rewards.slice(0, B, 2 * B);
  return p;
}

namespace {
std::string to_saved_name(const std::string& n) {
  if (n.rfind("score_regression.", 0) == 0) return "score.regression." + n.substr(17);
  return n;
}
}  // namespace

model::TensorMap RewardModelImpl::head_state() const {
  model::TensorMap m;
  for (const auto& kv : named_parameters(true)) {
    const std::string& n = kv.key();
    if (n.rfind("score", 0) != 0) continue;
    m[to_saved_name(n)] = kv.value().detach().to(torch::kCPU).clone();
  }
  return m;
}

void RewardModelImpl::load_head_state(const model::TensorMap& tensors, const std::string& where) {
  torch::NoGradGuard ng;
  std::string problems;
  for (auto& kv : named_parameters(true)) {
    const std::string& n = kv.key();
    if (n.rfind("score", 0) != 0) continue;
    std::string saved = to_saved_name(n);
    auto it = tensors.find(saved);
    if (it == tensors.end()) {
      problems += " missing " + saved + ";";
      continue;
    }
    if (it->second.sizes() != kv.value().sizes()) {
      problems += " " + saved + " has shape " + c10::str(it->second.sizes()) + ", expected " +
                  c10::str(kv.value().sizes()) + ";";
      continue;
    }
    kv.value().copy_(it->second.to(kv.value().dtype()));
  }
  if (!problems.empty()) throw ShapeError(where + ": reward head:" + problems);
}

std::vector<std::pair<std::string, torch::Tensor>> RewardModelImpl::named_trainable_parameters() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& kv : named_parameters(true)) {
    std::string n = kv.key();
    if (n.rfind("backbone.", 0) == 0) n = n.substr(9);
    else n = to_saved_name(n);
    if (kv.value().requires_grad()) out.emplace_back(n, kv.value());
  }
  return out;
}

void RewardModelImpl::set_backbone_trainable(bool trainable) {
  for (auto& p : backbone_->parameters()) p.set_requires_grad(trainable);
}

// ---------------------------------------------------------------- save / load

void save_reward_model(const std::string& dir_in, RewardModelImpl& rm, const text::Tokenizer* tokenizer,
                       const RewardModelMeta& meta, const std::string& dtype) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  model::ModelConfig cfg = rm.backbone().config();
  cfg.architectures = {sequence_classification_architecture(cfg)};
  cfg.num_labels = 1;
  if (cfg.pad_token_id < 0) {
    if (tokenizer && tokenizer->pad_id() >= 0) cfg.pad_token_id = tokenizer->pad_id();
    else if (cfg.eos_token_id >= 0) cfg.pad_token_id = cfg.eos_token_id;
    else if (tokenizer && tokenizer->eos_id() >= 0) cfg.pad_token_id = tokenizer->eos_id();
    else cfg.pad_token_id = 0;
  }
  // A complete copy is written beside DIR and then installed (core/dir_install.h): a kill -9 at any
  // moment leaves DIR the complete previous model or the complete new one, and the next start-up
  // (recover_run_saves) finishes an install it interrupted.
  write_and_install_dir(dir, kModelCommitFile, [&](const std::string& tmp) {
    model::save_pretrained(tmp, cfg, rm.backbone(), tokenizer, rm.head_state(), dtype);
    write_file_atomic(join_path(tmp, "rmkit.json"), meta.to_json(rm.head_config()).dump(2) + "\n");
  });
}

void check_tokenizer_fits(const text::Tokenizer& tok, int64_t vocab_size, const std::string& model_path) {
  if (tok.vocab_size() > vocab_size)
    throw ConfigError(model_path + ": the tokenizer has " + std::to_string(tok.vocab_size()) +
                      " tokens but the model's embedding has " + std::to_string(vocab_size) +
                      " rows; use the tokenizer the model was trained with");
}

LoadedRewardModel load_reward_model(const std::string& path, const std::string& tokenizer_path,
                                    const HeadConfig& fallback_head, bool require_head) {
  auto lm = model::load_pretrained(path, tokenizer_path);
  if (lm.tokenizer) check_tokenizer_fits(*lm.tokenizer, lm.config.vocab_size, path);
  const bool head_tensors = lm.extra_tensors.count("score.weight") || lm.extra_tensors.count("score.0.weight");
  if (require_head && !head_tensors)
    throw ConfigError(path + ": no reward head (score.weight or score.0.weight): this is a base language model, "
                      "not a reward model; train one with `rmkit train --model " + path + "`");
  LoadedRewardModel out;
  out.config = lm.config;
  out.tokenizer = std::move(lm.tokenizer);
  HeadConfig head = fallback_head;
  std::string meta_path = is_directory(path) ? join_path(path, "rmkit.json") : "";
  bool has_meta = !meta_path.empty() && path_exists(meta_path);
  const auto& ex = lm.extra_tensors;
  if (has_meta) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(meta_path));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(meta_path + ": invalid JSON: " + e.what());
    }
    if (j.contains("head")) head = HeadConfig::from_json(j["head"], meta_path);
    out.meta = RewardModelMeta::from_json(j);
  } else if (ex.count("score.0.weight") && ex.count("score.3.weight")) {
    head.type = "mlp";
    head.mlp_hidden = ex.at("score.0.weight").size(0);
  } else if (ex.count("score.weight")) {
    head.type = "linear";
    if (ex.at("score.weight").dim() != 2 || ex.at("score.weight").size(0) != 1)
      throw ShapeError(path + ": score.weight has shape " + c10::str(ex.at("score.weight").sizes()) +
                       ", expected [1, hidden] (a single reward output)");
  }
  if (!has_meta) head.num_attributes = ex.count("score.regression.weight")
                                           ? ex.at("score.regression.weight").size(0)
                                           : (ex.count("score.weight") ? 0 : head.num_attributes);
  out.model = RewardModel(lm.model, head);
  out.has_head = ex.count("score.weight") || ex.count("score.0.weight");
  if (out.has_head) out.model->load_head_state(ex, path);
  return out;
}

}  // namespace rmkit::train
