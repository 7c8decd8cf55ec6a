// A causal LM as the server holds it: weights, tokenizer, chat template and its generation engine.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/model/causal_lm.h"
#include "rmkit/serve/engine.h"
#include "rmkit/text/chat_template.h"

namespace rmkit::serve {

class LmSlot {
 public:
  LmSlot(std::string name, std::string path, const std::string& tokenizer, const std::string& chat_template,
         const EngineConfig& ecfg, MetricsRegistry* metrics, std::mutex* compute_mu);
  const std::string& name() const { return name_; }
  Engine& engine() { return *engine_; }
  const text::Tokenizer& tokenizer() const { return *tok_; }
  std::string describe() const;
  nlohmann::json card(int64_t created) const;
  // Completions: BOS as the tokenizer adds it, special tokens parsed (as `rmkit generate`
  // --parse-special; for text without special tokens the same ids either way).
  std::vector<int32_t> encode_prompt(const std::string& text) const;
  // Chat: the template's rendering with the generation prompt; BOS once.
  std::vector<int32_t> encode_chat(const text::Conversation& conv) const;
  // Token text for log-probs.
  std::string token_text(int32_t id) const;

 private:
  std::string name_, path_;
  model::ModelConfig config_;
  std::shared_ptr<text::Tokenizer> tok_;
  text::ChatTemplate tmpl_;
  std::unique_ptr<Engine> engine_;
};

// Whether `path` holds a reward model (rmkit.json, or a *ForSequenceClassification config) rather
// than a causal LM.
bool is_reward_model_dir(const std::string& path);

}  // namespace rmkit::serve
