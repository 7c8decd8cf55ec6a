// One reward model as the server holds it: the loaded weights, tokenizer, chat template, length
// policy and calibration, and the encoders that turn request inputs into scoring groups with the
// same rendering and truncation as `rmkit score` (data/encode.h; no double BOS).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/eval/group_scorer.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/train/reward_model.h"

namespace rmkit::serve {

struct SlotOptions {
  std::string tokenizer;               // override (required for llama2.c .bin)
  std::string chat_template = "auto";
  int64_t max_length = 0;              // 0 = the model's context length
  bool truncate = true;                // false: over-long input -> 422
};

// An input encoded for scoring: one group (prompt + responses) and what the response reports.
struct EncodedInput {
  eval::ScoreGroup group;
  int64_t tokens = 0;      // prompt + response tokens of the (first) sequence
  bool truncated = false;
};

// Single-response inputs merged so that inputs whose (non-empty) prompt tokens are identical share
// one group and their prompt runs once: a pair's chosen and rejected, /v1/compare's responses, n
// samples of one prompt.
struct GroupedInputs {
  std::vector<eval::ScoreGroup> groups;
  std::vector<size_t> reward_index;  // per input: its position in score_groups' reward order
  std::vector<int64_t> tokens;       // per input
  std::vector<bool> truncated;       // per input
};
GroupedInputs group_by_prompt(std::vector<EncodedInput> inputs);

class RewardSlot {
 public:
  // Loads `path`; throws rmkit::Error subclasses when it is not a reward model (no score.* head).
  RewardSlot(std::string name, std::string path, const SlotOptions& opts);

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  train::RewardModelImpl& model() { return *loaded_.model; }
  const text::Tokenizer& tokenizer() const { return *loaded_.tokenizer; }
  int64_t max_length() const { return max_length_; }
  const std::string& template_spec() const { return tmpl_.spec(); }
  bool has_calibration() const { return loaded_.meta.calibration_count > 0; }
  double reward_mean() const { return loaded_.meta.reward_mean; }
  double reward_std() const { return loaded_.meta.reward_std; }
  // "reward model (llama, 5 layers, hidden 64, template plain, max length 512)"
  std::string describe() const;
  nlohmann::json card(int64_t created) const;  // /v1/models entry

  // `field` names the input in errors ("inputs[2]"). Throw HttpError 422 for over-long input
  // under --no-truncate, ids out of the vocabulary, or nothing to score.
  EncodedInput encode_chat(const text::Conversation& prompt, const std::string& reply, const std::string& field) const;
  // Already-templated text: tokenised with special tokens parsed, BOS prepended only when the text
  // does not already start with it; truncation keeps BOS and the LAST tokens (the reward is read
  // at the end).
  EncodedInput encode_text(const std::string& text, const std::string& field) const;
  EncodedInput encode_ids(const std::vector<int64_t>& ids, const std::string& field) const;

 private:
  EncodedInput finish_flat(std::vector<int32_t> ids, bool truncated, const std::string& field) const;
  std::string name_, path_;
  train::LoadedRewardModel loaded_;
  text::ChatTemplate tmpl_;
  int64_t max_length_ = 0;
  bool truncate_ = true;
};

}  // namespace rmkit::serve
