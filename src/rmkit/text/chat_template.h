// Chat templates: turn a Conversation into model text. Built-in renderers reproduce the Hugging Face
// chat_template Jinja of each family (the Jinja itself is not executed):
//   llama3   <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n{content|trim}<|eot_id|>
//   chatml   <|im_start|>role\n{content}<|im_end|>\n            (Qwen2/2.5 without default system)
//   qwen3    chatml + Qwen3's empty "<think>\n\n</think>\n\n" block on replies after the last user turn
//   llama2   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {reply} </s>
//   mistral  <s>[INST] {user} [/INST]{reply}</s>
//   gemma    <bos><start_of_turn>user\n{content|trim}<end_of_turn>\n ... role assistant -> model
//   plain    Human: {user}\n\nAssistant: {reply}     (base models; the tokenizer adds BOS)
// Roles: "system", "user", "assistant"; anything else is a ConfigError naming role and template.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rmkit/text/message.h"

namespace rmkit::text {

class Tokenizer;

class ChatTemplate {
 public:
  // "llama3","chatml","qwen3","llama2","mistral","gemma","plain"; unknown -> ConfigError listing names.
  static ChatTemplate named(const std::string& name);
  // Recognises a tokenizer_config.json chat_template (Jinja source) by its markers
  // (<|start_header_id|> -> llama3, <|im_start|> -> chatml or qwen3 when it emits <think>,
  // [INST] -> llama2 when it has <<SYS>> else mistral, <start_of_turn> -> gemma), else by
  // model_type (llama -> llama3, mistral/mixtral -> mistral, qwen2 -> chatml, qwen3 -> qwen3,
  // gemma* -> gemma), else "plain".
  static ChatTemplate detect(const std::string& model_type, const std::string& chat_template_source);
  // Same, but only keeps a template whose special marker tokens exist in `tok`'s vocabulary
  // (model_type "llama" alone does not make a llama2.c-style 512-piece vocabulary a Llama-3 one);
  // otherwise "plain".
  static ChatTemplate detect(const std::string& model_type, const Tokenizer& tok);
  // User format applied per message with {role} and {content} placeholders, e.g.
  // "<|{role}|>\n{content}</s>\n"; the generation prompt is the format up to the first {content}
  // with role=assistant. Name "custom". ConfigError when {content} is missing.
  static ChatTemplate from_string(const std::string& fmt);
  // What a --chat-template option names: "auto" or "" -> detect(model_type, tok); a built-in name;
  // a format with {content}; or a file holding such a format. Anything else -> UsageError listing
  // the choices.
  static ChatTemplate resolve(const std::string& spec, const std::string& model_type, const Tokenizer& tok);

  static const std::vector<std::string>& names();

  const std::string& name() const { return name_; }
  // What resolve() takes to rebuild this template: the built-in name, or the custom format
  // (saved in rmkit.json so scoring renders exactly what training rendered).
  const std::string& spec() const { return kind_ == Kind::kCustom ? fmt_ : name_; }
  // The conversation followed by the generation prompt for the assistant's reply.
  std::string render_prompt(const Conversation& conv) const;
  // One assistant reply with its end-of-turn marker, such that
  // render_prompt(c) + render_response(r) == render(c + {assistant, r}, false).
  std::string render_response(const std::string& reply) const;
  std::string render(const Conversation& conv, bool add_generation_prompt) const;
  // True when rendered text starts with the BOS text ("<|begin_of_text|>", "<s>", "<bos>"), so
  // callers must tokenize without adding another BOS.
  bool includes_bos() const;
  // Why a message of `role` cannot be rendered ("role 'tool' is not supported by chat template
  // 'plain' (expected system, user or assistant)"), or "" when it can.
  std::string role_problem(const std::string& role) const;
  // Token ids of a prompt for generation: render(conv, true) tokenized with special tokens parsed,
  // with the tokenizer's BOS (when it has one) exactly once at the start.
  std::vector<int32_t> encode_prompt(const Tokenizer& tok, const Conversation& conv) const;

 private:
  enum class Kind { kLlama3, kChatml, kQwen3, kLlama2, kMistral, kGemma, kPlain, kCustom };
  ChatTemplate(Kind kind, std::string name) : kind_(kind), name_(std::move(name)) {}
  void check_roles(const Conversation& conv) const;

  Kind kind_;
  std::string name_;
  std::string fmt_;  // kCustom only
};

}  // namespace rmkit::text
