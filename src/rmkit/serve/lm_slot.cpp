#include "rmkit/serve/lm_slot.h"

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/train/reward_model.h"

namespace rmkit::serve {

bool is_reward_model_dir(const std::string& path) {
  if (!is_directory(path)) return false;  // llama2.c .bin: a causal LM
  if (path_exists(join_path(path, "rmkit.json"))) return true;
  const std::string cfg = join_path(path, "config.json");
  if (!path_exists(cfg)) return false;
  auto c = model::ModelConfig::from_file(cfg);
  for (const auto& a : c.architectures)
    if (a.find("ForSequenceClassification") != std::string::npos) return true;
  return false;
}

LmSlot::LmSlot(std::string name, std::string path, const std::string& tokenizer, const std::string& chat_template,
               const EngineConfig& ecfg, MetricsRegistry* metrics, std::mutex* compute_mu)
    : name_(std::move(name)), path_(std::move(path)), tmpl_(text::ChatTemplate::named("plain")) {
  auto lm = model::load_pretrained(path_, tokenizer);
  if (!lm.tokenizer) throw ConfigError(path_ + ": no tokenizer found beside the model (pass --tokenizer)");
  train::check_tokenizer_fits(*lm.tokenizer, lm.config.vocab_size, path_);
  config_ = lm.config;
  tok_ = std::shared_ptr<text::Tokenizer>(std::move(lm.tokenizer));
  tmpl_ = text::ChatTemplate::resolve(chat_template, config_.model_type, *tok_);  // "auto"/"": detected
  engine_ = std::make_unique<Engine>(lm.model, tok_, ecfg, metrics, compute_mu, name_);
}

std::string LmSlot::describe() const {
  return "causal LM (" + config_.model_type + ", " + std::to_string(config_.num_hidden_layers) + " layers, hidden " +
         std::to_string(config_.hidden_size) + ", template " + tmpl_.spec() + ", context " +
         std::to_string(config_.max_position_embeddings) + ")";
}

nlohmann::json LmSlot::card(int64_t created) const {
  return {{"id", name_},         {"object", "model"}, {"created", created},
          {"owned_by", "rmkit"}, {"root", path_},     {"parent", nullptr},
          {"kind", "causal-lm"}, {"max_model_len", config_.max_position_embeddings}, {"chat_template", tmpl_.spec()}};
}

std::vector<int32_t> LmSlot::encode_prompt(const std::string& text) const {
  auto ids = tok_->encode(text, /*add_special=*/true, /*parse_special=*/true);
  if (ids.empty() && tok_->bos_id() >= 0) ids.push_back(tok_->bos_id());
  return ids;
}

std::vector<int32_t> LmSlot::encode_chat(const text::Conversation& conv) const { return tmpl_.encode_prompt(*tok_, conv); }

std::string LmSlot::token_text(int32_t id) const { return tok_->decode({id}, false); }

}  // namespace rmkit::serve
