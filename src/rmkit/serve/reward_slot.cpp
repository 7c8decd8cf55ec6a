#include "rmkit/serve/reward_slot.h"

#include <map>

#include "rmkit/core/error.h"
#include "rmkit/data/encode.h"
#include "rmkit/eval/scorer.h"
#include "rmkit/serve/http_error.h"

namespace rmkit::serve {

RewardSlot::RewardSlot(std::string name, std::string path, const SlotOptions& opts)
    : name_(std::move(name)), path_(std::move(path)), tmpl_(text::ChatTemplate::named("plain")) {
  // require_head (the default): a directory without score.* tensors is refused, never served with
  // a random head; the tokenizer is checked against the embedding there too
  loaded_ = train::load_reward_model(path_, opts.tokenizer);
  if (!loaded_.tokenizer)
    throw ConfigError(path_ + ": no tokenizer found beside the model (pass --tokenizer)");
  tmpl_ = eval::choose_template(loaded_.config, *loaded_.tokenizer, loaded_.meta.chat_template, opts.chat_template);
  const int64_t ctx = loaded_.config.max_position_embeddings;
  max_length_ = opts.max_length > 0 ? opts.max_length : ctx;
  if (max_length_ < 3) throw UsageError("--max-length must be at least 3, got " + std::to_string(max_length_));
  truncate_ = opts.truncate;
  loaded_.model->eval();
}

std::string RewardSlot::describe() const {
  const auto& c = loaded_.config;
  return "reward model (" + c.model_type + ", " + std::to_string(c.num_hidden_layers) + " layers, hidden " +
         std::to_string(c.hidden_size) + ", head " + loaded_.model->head_config().type + ", template " +
         tmpl_.spec() + ", max length " + std::to_string(max_length_) +
         (has_calibration() ? ", calibrated" : "") + ")";
}

nlohmann::json RewardSlot::card(int64_t created) const {
  return {{"id", name_},          {"object", "model"},       {"created", created},
          {"owned_by", "rmkit"},  {"root", path_},           {"parent", nullptr},
          {"kind", "reward-model"}, {"max_model_len", max_length_}, {"chat_template", tmpl_.spec()}};
}

EncodedInput RewardSlot::encode_chat(const text::Conversation& prompt, const std::string& reply,
                                     const std::string& field) const {
  const auto& tok = *loaded_.tokenizer;
  data::EncodedSingle e = data::encode_single(prompt, reply, tok, tmpl_, truncate_ ? max_length_ : 0);
  const int64_t len = static_cast<int64_t>(e.length());
  if (!truncate_ && len > max_length_)
    throw HttpError::unprocessable(field + ": " + std::to_string(len) + " tokens, longer than the limit " +
                                       std::to_string(max_length_) + " (--max-length; truncation is off)",
                                   field);
  if (len == 0) throw HttpError::unprocessable(field + ": nothing to score (no token)", field);
  EncodedInput out;
  out.tokens = len;
  out.truncated = e.truncated;
  out.group.prompt = std::move(e.prompt_ids);
  out.group.responses.push_back(std::move(e.response_ids));
  return out;
}

EncodedInput RewardSlot::finish_flat(std::vector<int32_t> ids, bool truncated, const std::string& field) const {
  const auto& tok = *loaded_.tokenizer;
  const int32_t bos = tok.bos_id();
  if (bos >= 0 && (ids.empty() || ids.front() != bos)) ids.insert(ids.begin(), bos);
  if (ids.empty()) throw HttpError::unprocessable(field + ": nothing to score (no token)", field);
  const int64_t len = static_cast<int64_t>(ids.size());
  if (len > max_length_) {
    if (!truncate_)
      throw HttpError::unprocessable(field + ": " + std::to_string(len) + " tokens, longer than the limit " +
                                         std::to_string(max_length_) + " (--max-length; truncation is off)",
                                     field);
    const size_t keep_head = (bos >= 0 && ids.front() == bos) ? 1 : 0;
    const size_t keep_tail = static_cast<size_t>(max_length_) - keep_head;
    std::vector<int32_t> cut(ids.begin(), ids.begin() + static_cast<long>(keep_head));
    cut.insert(cut.end(), ids.end() - static_cast<long>(keep_tail), ids.end());
    ids = std::move(cut);
    truncated = true;
  }
  EncodedInput out;
  out.tokens = static_cast<int64_t>(ids.size());
  out.truncated = truncated;
  out.group.responses.push_back(std::move(ids));
  return out;
}

EncodedInput RewardSlot::encode_text(const std::string& text, const std::string& field) const {
  return finish_flat(loaded_.tokenizer->encode(text, /*add_special=*/false, /*parse_special=*/true), false, field);
}

EncodedInput RewardSlot::encode_ids(const std::vector<int64_t>& ids, const std::string& field) const {
  const int64_t V = loaded_.config.vocab_size;
  std::vector<int32_t> v;
  v.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= V)
      throw HttpError::unprocessable(field + "[" + std::to_string(i) + "]: token id " + std::to_string(ids[i]) +
                                         " outside the vocabulary [0, " + std::to_string(V) + ")",
                                     field);
    v.push_back(static_cast<int32_t>(ids[i]));
  }
  return finish_flat(std::move(v), false, field);
}

GroupedInputs group_by_prompt(std::vector<EncodedInput> inputs) {
  GroupedInputs out;
  std::map<std::vector<int32_t>, size_t> by_prompt;
  std::vector<std::pair<size_t, size_t>> where;  // per input: (group, response within group)
  for (auto& e : inputs) {
    out.tokens.push_back(e.tokens);
    out.truncated.push_back(e.truncated);
    auto it = e.group.prompt.empty() ? by_prompt.end() : by_prompt.find(e.group.prompt);
    if (it == by_prompt.end()) {
      if (!e.group.prompt.empty()) by_prompt.emplace(e.group.prompt, out.groups.size());
      where.emplace_back(out.groups.size(), 0);
      out.groups.push_back(std::move(e.group));
    } else {
      auto& g = out.groups[it->second];
      where.emplace_back(it->second, g.responses.size());
      g.responses.push_back(std::move(e.group.responses[0]));
    }
  }
  std::vector<size_t> first(out.groups.size(), 0);
  for (size_t g = 1; g < out.groups.size(); ++g) first[g] = first[g - 1] + out.groups[g - 1].responses.size();
  for (const auto& [g, k] : where) out.reward_index.push_back(first[g] + k);
  return out;
}

}  // namespace rmkit::serve
