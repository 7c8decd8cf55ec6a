#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"

#include <algorithm>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::text {
namespace {

// Length of the UTF-8 character ending at s[end) / starting at s[begin] when it is whitespace in
// Python's str.isspace() sense (what Jinja's trim and str.strip() remove), else 0.
uint32_t decode_at(const std::string& s, size_t i, size_t* len) {
  uint8_t c = static_cast<uint8_t>(s[i]);
  int n = c < 0x80 ? 1 : c >> 5 == 6 ? 2 : c >> 4 == 14 ? 3 : c >> 3 == 30 ? 4 : 1;
  if (i + n > s.size()) n = 1;
  uint32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  *len = n;
  return cp;
}
bool py_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}
// Python str.strip() (Jinja |trim).
std::string py_strip(const std::string& s) {
  size_t b = 0;
  while (b < s.size()) {
    size_t n;
    if (!py_isspace(decode_at(s, b, &n))) break;
    b += n;
  }
  size_t e = s.size();
  while (e > b) {
    size_t start = e - 1;
    while (start > b && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80 && e - start < 4) --start;
    size_t n;
    uint32_t cp = decode_at(s, start, &n);
    if (start + n != e || !py_isspace(cp)) break;
    e = start;
  }
  return s.substr(b, e - b);
}
std::string lstrip_nl(const std::string& s) {
  size_t b = s.find_first_not_of('\n');
  return b == std::string::npos ? "" : s.substr(b);
}
std::string rstrip_nl(const std::string& s) {
  size_t e = s.find_last_not_of('\n');
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}
bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
bool contains(const std::string& s, const char* p) { return s.find(p) != std::string::npos; }

// Qwen3: an assistant message may carry "<think>reasoning</think>content".
void split_think(const std::string& msg, std::string* reasoning, std::string* content) {
  *reasoning = "";
  *content = msg;
  size_t last = msg.rfind("</think>");
  if (last == std::string::npos) return;
  *content = lstrip_nl(msg.substr(last + 8));            // split('</think>')[-1].lstrip('\n')
  std::string before = rstrip_nl(msg.substr(0, msg.find("</think>")));
  size_t t = before.rfind("<think>");
  *reasoning = lstrip_nl(t == std::string::npos ? before : before.substr(t + 7));
}
std::string qwen3_think_block(const std::string& msg) {
  std::string reasoning, content;
  split_think(msg, &reasoning, &content);
  std::string r = lstrip_nl(rstrip_nl(reasoning));      // reasoning_content.strip('\n')
  return "<think>\n" + r + "\n</think>\n\n" + lstrip_nl(content);
}

// {role}/{content} substitution in one pass (content containing "{role}" stays literal).
std::string substitute(const std::string& fmt, const std::string& role, const std::string& content) {
  std::string out;
  for (size_t i = 0; i < fmt.size();) {
    if (fmt.compare(i, 6, "{role}") == 0) { out += role; i += 6; }
    else if (fmt.compare(i, 9, "{content}") == 0) { out += content; i += 9; }
    else out += fmt[i++];
  }
  return out;
}

}  // namespace

const std::vector<std::string>& ChatTemplate::names() {
  static const std::vector<std::string> n = {"llama3", "chatml", "qwen3", "llama2", "mistral", "gemma", "plain"};
  return n;
}

ChatTemplate ChatTemplate::named(const std::string& name) {
  static const std::pair<const char*, Kind> table[] = {
      {"llama3", Kind::kLlama3}, {"chatml", Kind::kChatml},   {"qwen3", Kind::kQwen3}, {"llama2", Kind::kLlama2},
      {"mistral", Kind::kMistral}, {"gemma", Kind::kGemma}, {"plain", Kind::kPlain}};
  for (const auto& [n, k] : table)
    if (name == n) return ChatTemplate(k, name);
  std::string list;
  for (const auto& n : names()) list += (list.empty() ? "" : ", ") + n;
  throw ConfigError("unknown chat template '" + name + "'; expected one of: " + list +
                    " (or a custom format string with {role} and {content})");
}

ChatTemplate ChatTemplate::detect(const std::string& model_type, const std::string& src) {
  if (contains(src, "<|start_header_id|>")) return named("llama3");
  if (contains(src, "<|im_start|>")) return named(contains(src, "<think>") ? "qwen3" : "chatml");
  if (contains(src, "<start_of_turn>")) return named("gemma");
  if (contains(src, "[INST]")) return named(contains(src, "<<SYS>>") ? "llama2" : "mistral");
  std::string mt = model_type;
  std::transform(mt.begin(), mt.end(), mt.begin(), [](unsigned char c) { return std::tolower(c); });
  if (mt == "llama") return named("llama3");
  if (mt == "mistral" || mt == "mixtral") return named("mistral");
  if (mt == "qwen3" || mt == "qwen3_moe") return named("qwen3");
  if (starts_with(mt, "qwen")) return named("chatml");
  if (starts_with(mt, "gemma")) return named("gemma");
  return named("plain");
}

ChatTemplate ChatTemplate::detect(const std::string& model_type, const Tokenizer& tok) {
  ChatTemplate t = detect(model_type, tok.chat_template_source());
  const char* marker = nullptr;
  switch (t.kind_) {
    case Kind::kLlama3: marker = "<|start_header_id|>"; break;
    case Kind::kChatml:
    case Kind::kQwen3: marker = "<|im_start|>"; break;
    case Kind::kGemma: marker = "<start_of_turn>"; break;
    default: break;
  }
  if (marker && !tok.piece_to_id(marker)) return named("plain");
  return t;
}

ChatTemplate ChatTemplate::from_string(const std::string& fmt) {
  if (!contains(fmt, "{content}"))
    throw ConfigError("chat template format '" + fmt + "' has no {content} placeholder");
  ChatTemplate t(Kind::kCustom, "custom");
  t.fmt_ = fmt;
  return t;
}

ChatTemplate ChatTemplate::resolve(const std::string& spec, const std::string& model_type, const Tokenizer& tok) {
  if (spec.empty() || spec == "auto") return detect(model_type, tok);
  for (const auto& n : names())
    if (n == spec) return named(spec);
  if (contains(spec, "{content}")) return from_string(spec);
  if (path_exists(spec)) return from_string(read_file(spec));
  std::string list;
  for (const auto& n : names()) list += " " + n;
  throw UsageError("--chat-template: '" + spec + "' is not auto, a template name (" + list.substr(1) +
                   "), a format with {role}/{content} or an existing file");
}

bool ChatTemplate::includes_bos() const {
  return kind_ == Kind::kLlama3 || kind_ == Kind::kLlama2 || kind_ == Kind::kMistral || kind_ == Kind::kGemma;
}

std::string ChatTemplate::role_problem(const std::string& r) const {
  if (r == "system" || r == "user" || r == "assistant") return "";
  return "role '" + r + "' is not supported by chat template '" + name_ + "' (expected system, user or assistant)";
}

void ChatTemplate::check_roles(const Conversation& conv) const {
  for (size_t i = 0; i < conv.size(); ++i) {
    const std::string why = role_problem(conv[i].role);
    if (!why.empty()) throw ConfigError("message " + std::to_string(i) + ": " + why);
  }
}

std::string ChatTemplate::render_prompt(const Conversation& conv) const { return render(conv, true); }

std::string ChatTemplate::render_response(const std::string& reply) const {
  switch (kind_) {
    case Kind::kLlama3: return py_strip(reply) + "<|eot_id|>";
    case Kind::kChatml: return reply + "<|im_end|>\n";
    // Assumes the prompt holds a user turn (then the reply follows the last query).
    case Kind::kQwen3: return qwen3_think_block(reply) + "<|im_end|>\n";
    case Kind::kLlama2: return " " + py_strip(reply) + " </s>";
    case Kind::kMistral: return reply + "</s>";
    case Kind::kGemma: return py_strip(reply) + "<end_of_turn>\n";
    case Kind::kPlain: return " " + reply;
    case Kind::kCustom: {
      size_t c = fmt_.find("{content}");
      return reply + substitute(fmt_.substr(c + 9), "assistant", reply);
    }
  }
  return {};
}

std::string ChatTemplate::render(const Conversation& conv, bool gen) const {
  check_roles(conv);
  std::string out;
  switch (kind_) {
    case Kind::kLlama3:
      // BOS even for an empty conversation (the Jinja emits it with the first message), so that
      // includes_bos() always holds; the generation prompt follows add_generation_prompt as in
      // Llama-3-Instruct (the base config's template appends it unconditionally).
      out = "<|begin_of_text|>";
      for (const auto& m : conv)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + py_strip(m.content) + "<|eot_id|>";
      if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case Kind::kChatml:
      for (const auto& m : conv) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (gen) out += "<|im_start|>assistant\n";
      return out;
    case Kind::kQwen3: {
      // tokenizer_config.json (Qwen3) without tools: last_query_index = last user message that is
      // not a <tool_response>; assistant turns after it get the think block when last.
      int last_query = static_cast<int>(conv.size()) - 1;
      for (int i = static_cast<int>(conv.size()) - 1; i >= 0; --i) {
        const auto& c = conv[i].content;
        if (conv[i].role == "user" && !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
          last_query = i;
          break;
        }
      }
      for (int i = 0; i < static_cast<int>(conv.size()); ++i) {
        const Message& m = conv[i];
        if (m.role != "assistant") {
          out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
          continue;
        }
        std::string reasoning, content;
        split_think(m.content, &reasoning, &content);
        bool last = i + 1 == static_cast<int>(conv.size());
        if (i > last_query && (last || !reasoning.empty())) out += "<|im_start|>assistant\n" + qwen3_think_block(m.content);
        else out += "<|im_start|>assistant\n" + content;
        out += "<|im_end|>\n";
      }
      if (gen) out += "<|im_start|>assistant\n";
      return out;
    }
    case Kind::kLlama2: {
      // Meta's Llama-2-chat template: "<s>[INST] " + strip(content) + " [/INST]" per user turn,
      // " " + strip(reply) + " </s>" per reply; a system message is folded as <<SYS>> into the
      // next message. The first "<s>" is emitted even when the first turn is not a user turn.
      out = "<s>";
      std::string sys;
      bool have_sys = false, first = true;
      for (const auto& m : conv) {
        if (m.role == "system") { sys += (have_sys ? "\n\n" : "") + m.content; have_sys = true; continue; }
        std::string content = have_sys ? "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + m.content : m.content;
        have_sys = false;
        sys.clear();
        if (m.role == "user") out += std::string(first ? "" : "<s>") + "[INST] " + py_strip(content) + " [/INST]";
        else out += " " + py_strip(content) + " </s>";
        first = false;
      }
      if (have_sys) out += std::string(first ? "" : "<s>") + "[INST] " + py_strip("<<SYS>>\n" + sys + "\n<</SYS>>\n\n") + " [/INST]";
      return out;  // the generation prompt is the end of the last [INST] turn: nothing to add
    }
    case Kind::kMistral: {
      // Mistral-Instruct: "<s>" once, "[INST] user [/INST]", "reply</s>"; a system message is
      // prefixed to the next user message with a blank line (as Mistral's newer templates do).
      out = "<s>";
      std::string sys;
      for (const auto& m : conv) {
        if (m.role == "system") { sys += (sys.empty() ? "" : "\n\n") + m.content; continue; }
        if (m.role == "user") {
          out += "[INST] " + (sys.empty() ? m.content : sys + "\n\n" + m.content) + " [/INST]";
          sys.clear();
        } else {
          out += m.content + "</s>";
        }
      }
      if (!sys.empty()) out += "[INST] " + sys + " [/INST]";
      return out;
    }
    case Kind::kGemma: {
      // Gemma-2/3: "<bos>", "<start_of_turn>{user|model}\n" + trim(content) + "<end_of_turn>\n";
      // a system message becomes a prefix (content + "\n\n") of the next user turn (Gemma-3).
      out = "<bos>";
      std::string sys;
      for (const auto& m : conv) {
        if (m.role == "system") { sys += m.content + "\n\n"; continue; }
        std::string role = m.role == "assistant" ? "model" : m.role;
        std::string prefix = m.role == "user" ? sys : "";
        if (m.role == "user") sys.clear();
        out += "<start_of_turn>" + role + "\n" + prefix + py_strip(m.content) + "<end_of_turn>\n";
      }
      if (!sys.empty()) out += "<start_of_turn>user\n" + sys + "<end_of_turn>\n";
      if (gen) out += "<start_of_turn>model\n";
      return out;
    }
    case Kind::kPlain: {
      // "Human: q\n\nAssistant: a" (Anthropic HH style), messages separated by a blank line.
      for (const auto& m : conv) {
        if (!out.empty()) out += "\n\n";
        if (m.role == "user") out += "Human: " + m.content;
        else if (m.role == "assistant") out += "Assistant: " + m.content;
        else out += m.content;
      }
      if (gen) out += std::string(out.empty() ? "" : "\n\n") + "Assistant:";
      return out;
    }
    case Kind::kCustom: {
      for (const auto& m : conv) out += substitute(fmt_, m.role, m.content);
      if (gen) out += substitute(fmt_.substr(0, fmt_.find("{content}")), "assistant", "");
      return out;
    }
  }
  return out;
}

std::vector<int32_t> ChatTemplate::encode_prompt(const Tokenizer& tok, const Conversation& conv) const {
  auto ids = tok.encode(render(conv, /*add_generation_prompt=*/true), /*add_special=*/false, /*parse_special=*/true);
  const int32_t bos = tok.bos_id();
  if (bos >= 0 && (ids.empty() || ids.front() != bos)) ids.insert(ids.begin(), bos);
  return ids;
}

}  // namespace rmkit::text
