// Per-format row parsing (see readers.h for the formats). Problems are thrown as FormatError
// without a location; read_prefs prefixes "FILE:LINE: ".
#include <algorithm>
#include <cmath>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/readers.h"

namespace rmkit::data {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& field, const std::string& what) {
  throw FormatError("field '" + field + "': " + what);
}

const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// Looks up `key` at the top level, then under meta / metadata. Sets *where to the field path.
const json* find_any(const json& row, const char* key, std::string* where) {
  if (const json* v = find(row, key)) {
    *where = key;
    return v;
  }
  for (const char* parent : {"meta", "metadata"}) {
    const json* m = find(row, parent);
    if (m && m->is_object()) {
      if (const json* v = find(*m, key)) {
        *where = std::string(parent) + "." + key;
        return v;
      }
    }
  }
  return nullptr;
}

std::string as_label(const json& row, const char* key) {
  const json* v = find(row, key);
  if (!v) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number()) return v->dump();
  fail(key, "expected a string");
}

std::string content_text(const json& c, const std::string& field) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_null()) return "";
  if (c.is_array()) {  // OpenAI-style content parts: concatenate the text parts
    std::string out;
    for (const auto& part : c) {
      if (part.is_string()) out += part.get<std::string>();
      else if (part.is_object() && part.contains("text") && part["text"].is_string())
        out += part["text"].get<std::string>();
      else fail(field, "expected text content parts");
    }
    return out;
  }
  fail(field, "expected a string");
}

text::Conversation parse_messages(const json& list, const std::string& field) {
  text::Conversation conv;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    std::string f = field + "[" + std::to_string(i) + "]";
    if (!m.is_object()) fail(f, "expected a {role, content} object");
    const json* role = find(m, "role");
    if (!role || !role->is_string() || role->get<std::string>().empty())
      fail(f + ".role", "expected a non-empty string");
    auto it = m.find("content");
    if (it == m.end()) fail(f + ".content", "missing");
    conv.push_back({role->get<std::string>(), content_text(*it, f + ".content")});
  }
  return conv;
}

bool is_message_list(const json& v) {
  return v.is_array() && !v.empty() && v[0].is_object() && v[0].contains("role");
}

const json& require(const json& row, const char* key) {
  const json* v = find(row, key);
  if (!v) fail(key, "missing");
  return *v;
}

std::string require_string(const json& row, const char* key) {
  const json& v = require(row, key);
  if (!v.is_string()) fail(key, "expected a string");
  return v.get<std::string>();
}

std::optional<double> opt_number(const json& row, const char* key) {
  std::string where;
  const json* v = find_any(row, key, &where);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(where, "expected a number");
  double d = v->get<double>();
  if (!std::isfinite(d)) fail(where, "expected a finite number");
  return d;
}

// Fields every format may carry.
void read_common(const json& row, const std::string& file, size_t line, PrefPair* p) {
  p->id = as_label(row, "id");
  if (p->id.empty()) p->id = file_name(file) + ":" + std::to_string(line);
  p->source = as_label(row, "source");
  p->category = as_label(row, "category");
  p->subset = as_label(row, "subset");
  p->score_chosen = opt_number(row, "score_chosen");
  p->score_rejected = opt_number(row, "score_rejected");
  p->margin = opt_number(row, "margin");
  std::string where;
  if (const json* t = find_any(row, "teacher_response", &where)) {
    if (!t->is_string()) fail(where, "expected a string");
    p->teacher_response = t->get<std::string>();
  }
  if (const json* a = find_any(row, "attributes", &where)) {
    if (!a->is_array()) fail(where, "expected an array of numbers");
    for (const auto& x : *a) {
      if (!x.is_number()) fail(where, "expected an array of numbers");
      p->attributes.push_back(x.get<double>());
    }
  }
  // RM-Bench style indices: 0 concise, 1 detailed plain, 2 detailed markdown, and both or neither
  // (the evaluation crosses the chosen style with the rejected one)
  std::string style_where;
  for (auto [key, dst] : {std::pair<const char*, int*>{"chosen_style", &p->chosen_style},
                          {"rejected_style", &p->rejected_style}}) {
    if (const json* s = find_any(row, key, &where)) {
      if (!s->is_number_integer() || s->get<long long>() < 0 || s->get<long long>() > 2)
        fail(where, "expected an integer 0..2");
      *dst = s->get<int>();
      style_where = where;
    }
  }
  if ((p->chosen_style >= 0) != (p->rejected_style >= 0))
    fail(style_where, "chosen_style and rejected_style must come together");
  p->file = file;
  p->line = line;
}

bool same_conv(const text::Conversation& a, const text::Conversation& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].role != b[i].role || a[i].content != b[i].content) return false;
  return true;
}

// TRL reply: a string, or a message list ending with the assistant's reply. Returns the prompt
// implied by this side (prompt + messages between the prompt and the reply).
text::Conversation trl_side(const json& v, const char* field, const text::Conversation& prompt,
                            std::string* reply) {
  if (v.is_string()) {
    *reply = v.get<std::string>();
    return prompt;
  }
  if (!v.is_array()) fail(field, "expected a string or a message list");
  if (v.empty()) fail(field, "expected a non-empty message list");
  text::Conversation msgs = parse_messages(v, field);
  size_t start = 0;
  if (msgs.size() > prompt.size() &&
      same_conv(text::Conversation(msgs.begin(), msgs.begin() + prompt.size()), prompt))
    start = prompt.size();
  if (msgs.back().role != "assistant")
    fail(field, "the last message must be from the assistant, got '" + msgs.back().role + "'");
  *reply = msgs.back().content;
  text::Conversation conv = prompt;
  conv.insert(conv.end(), msgs.begin() + start, msgs.end() - 1);
  return conv;
}

std::string rm_bench_domain(const std::string& file, const std::string& subset) {
  std::string name = file_name(file);
  for (const char* d : {"safety-refuse", "safety-response", "chat", "code"})
    if (name.rfind(d, 0) == 0) return d;
  if (subset == "alpacaeval" || subset.rfind("alpacaeval", 0) == 0) return "chat";
  if (subset.find("humanevalpack") != std::string::npos || subset.rfind("hep", 0) == 0) return "code";
  if (subset == "xstest-should-respond") return "safety-response";
  if (subset.rfind("refusals", 0) == 0 || subset.rfind("xstest-should-refuse", 0) == 0 ||
      subset == "donotanswer")
    return "safety-refuse";
  return "unknown";
}

std::vector<PrefPair> parse_rm_bench(const json& row, const std::string& file, size_t line) {
  PrefPair base;
  read_common(row, file, line, &base);
  std::string prompt = require_string(row, "prompt");
  std::string rid = as_label(row, "id");
  std::string domain = rm_bench_domain(file, base.subset);
  const json& ch = require(row, "chosen");
  const json& rj = require(row, "rejected");
  for (auto [v, f] : {std::pair<const json*, const char*>{&ch, "chosen"}, {&rj, "rejected"}}) {
    if (!v->is_array() || v->empty()) fail(f, "expected a list of style variants");
    for (const auto& s : *v)
      if (!s.is_string()) fail(f, "expected a list of strings");
  }
  base.category = domain;
  if (base.source.empty()) base.source = "RM-Bench";
  base.prompt = {{"user", prompt}};
  std::vector<PrefPair> out;
  for (size_t i = 0; i < ch.size(); ++i) {
    for (size_t j = 0; j < rj.size(); ++j) {
      PrefPair p = base;
      p.chosen = ch[i].get<std::string>();
      p.rejected = rj[j].get<std::string>();
      p.chosen_style = static_cast<int>(i);
      p.rejected_style = static_cast<int>(j);
      p.id = "rmbench-" + domain + "-" + (rid.empty() ? std::to_string(line) : rid) + "-c" +
             std::to_string(i) + "r" + std::to_string(j);
      p.raw = row;
      p.raw["chosen"] = p.chosen;
      p.raw["rejected"] = p.rejected;
      p.raw["chosen_style"] = i;
      p.raw["rejected_style"] = j;
      out.push_back(std::move(p));
    }
  }
  return out;
}

}  // namespace

void split_hh_transcript(const std::string& input, const std::string& field,
                         text::Conversation* prompt, std::string* reply) {
  // Some exports drop the leading blank line: "Human: ..." at the very start.
  const std::string text = input.rfind("Human:", 0) == 0 ? "\n\n" + input : input;
  static const std::string kHuman = "\n\nHuman:", kAssistant = "\n\nAssistant:";
  size_t last = text.rfind(kAssistant);
  if (last == std::string::npos) fail(field, "expected an HH transcript with a '\\n\\nAssistant:' turn");
  auto strip_sep = [](std::string s) {
    if (!s.empty() && s[0] == ' ') s.erase(0, 1);
    return s;
  };
  *reply = strip_sep(text.substr(last + kAssistant.size()));
  prompt->clear();
  size_t pos = 0;
  std::string role;
  size_t content_start = 0;
  while (pos < last) {
    size_t h = text.find(kHuman, pos), a = text.find(kAssistant, pos);
    size_t next = std::min(h, a);
    if (next > last) next = last;
    if (role.empty()) {
      if (next != 0 && text.find_first_not_of(" \n\t", 0) < next)
        fail(field, "expected the transcript to start with '\\n\\nHuman:'");
    } else {
      prompt->push_back({role, strip_sep(text.substr(content_start, next - content_start))});
    }
    if (next == last) break;
    bool human = next == h;
    role = human ? "user" : "assistant";
    content_start = next + (human ? kHuman.size() : kAssistant.size());
    pos = content_start;
  }
}

std::string detect_format(const json& row) {
  if (!row.is_object()) return "";
  const json* ch = find(row, "chosen");
  const json* rj = find(row, "rejected");
  if (!ch || !rj) return "";
  const json* prompt = find(row, "prompt");
  if (ch->is_array() && !ch->empty() && (*ch)[0].is_string()) return prompt ? "rm-bench" : "";
  if (!prompt) {
    if (ch->is_string() && ch->get<std::string>().find("\n\nAssistant:") != std::string::npos)
      return "hh";
    return is_message_list(*ch) ? "trl" : "";
  }
  if (prompt->is_array() && ch->is_string() &&
      (row.contains("meta") || row.contains("label_source") || row.contains("category")))
    return "normalized";
  if (prompt->is_string() && ch->is_string() && row.contains("subset")) return "rewardbench";
  if ((prompt->is_string() || prompt->is_array()) && (ch->is_string() || ch->is_array()))
    return "trl";
  return "";
}

std::vector<PrefPair> parse_row(const json& row, const std::string& format,
                                const std::string& file, size_t line, bool* mismatched) {
  *mismatched = false;
  if (!row.is_object()) throw FormatError("expected a JSON object");
  if (format == "rm-bench") return parse_rm_bench(row, file, line);
  PrefPair p;
  read_common(row, file, line, &p);
  if (format == "normalized") {
    const json& pr = require(row, "prompt");
    if (!pr.is_array()) fail("prompt", "expected a message list");
    p.prompt = parse_messages(pr, "prompt");
    p.chosen = require_string(row, "chosen");
    p.rejected = require_string(row, "rejected");
  } else if (format == "trl") {
    text::Conversation prompt;
    if (const json* pr = find(row, "prompt")) {
      if (pr->is_string()) prompt = {{"user", pr->get<std::string>()}};
      else if (pr->is_array()) prompt = parse_messages(*pr, "prompt");
      else fail("prompt", "expected a string or a message list");
    }
    text::Conversation pc = trl_side(require(row, "chosen"), "chosen", prompt, &p.chosen);
    text::Conversation pj = trl_side(require(row, "rejected"), "rejected", prompt, &p.rejected);
    if (!same_conv(pc, pj)) {
      *mismatched = true;
      return {};
    }
    p.prompt = std::move(pc);
  } else if (format == "hh") {
    text::Conversation pc, pj;
    split_hh_transcript(require_string(row, "chosen"), "chosen", &pc, &p.chosen);
    split_hh_transcript(require_string(row, "rejected"), "rejected", &pj, &p.rejected);
    if (!same_conv(pc, pj)) {
      *mismatched = true;
      return {};
    }
    p.prompt = std::move(pc);
  } else if (format == "rewardbench") {
    p.prompt = {{"user", require_string(row, "prompt")}};
    p.chosen = require_string(row, "chosen");
    p.rejected = require_string(row, "rejected");
  } else {
    throw UsageError("unknown preference format '" + format + "'");
  }
  p.raw = row;
  return {std::move(p)};
}

}  // namespace rmkit::data
