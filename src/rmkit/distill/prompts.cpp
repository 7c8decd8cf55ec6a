#include "rmkit/distill/prompts.h"

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/distill/chat_types.h"

namespace rmkit::distill {

// Generated at configure time from src/rmkit/distill/prompts/*.txt (see CMakeLists.txt).
extern const std::map<std::string, std::string>& builtin_prompts();

namespace {

bool ident_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (!first && std::isdigit(static_cast<unsigned char>(c)));
}

const std::map<std::string, std::vector<std::string>>& stage_names() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"judge", {"question", "answer_a", "answer_b"}},
      {"tie_note", {}},
      {"refine", {"question", "preferred", "rejected"}},
      {"rescore", {"score"}},
  };
  return m;
}

std::string list_names(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "{" : ", {") + n + "}";
  return s;
}

}  // namespace

PromptTemplate::PromptTemplate(std::string text, std::string origin, const std::vector<std::string>& names)
    : text_(std::move(text)), origin_(std::move(origin)) {
  std::set<std::string> seen;
  std::string lit;
  size_t line = 1;
  const std::string& t = text_;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '\n') ++line;
    if ((c == '{' || c == '}') && i + 1 < t.size() && t[i + 1] == c) {  // {{ or }}
      lit += c;
      ++i;
      continue;
    }
    if (c == '{' && i + 1 < t.size() && ident_char(t[i + 1], true)) {
      size_t j = i + 1;
      while (j < t.size() && ident_char(t[j], false)) ++j;
      if (j < t.size() && t[j] == '}') {
        const std::string name = t.substr(i + 1, j - i - 1);
        if (std::find(names.begin(), names.end(), name) == names.end())
          throw FormatError(origin_ + ":" + std::to_string(line) + ": unknown placeholder {" + name +
                            "}; this prompt knows " + list_names(names) + " (write {{ and }} for literal braces)");
        pieces_.push_back({lit, name});
        lit.clear();
        seen.insert(name);
        i = j;
        continue;
      }
    }
    lit += c;
  }
  pieces_.push_back({lit, ""});
  for (const auto& n : names)
    if (!seen.count(n))
      throw FormatError(origin_ + ": placeholder {" + n + "} is missing; this prompt needs " + list_names(names));
}

std::string PromptTemplate::render(const std::map<std::string, std::string>& values) const {
  std::string out;
  for (const auto& p : pieces_) {
    out += p.literal;
    if (p.placeholder.empty()) continue;
    auto it = values.find(p.placeholder);
    if (it == values.end()) throw Error(origin_ + ": no value for {" + p.placeholder + "}");
    out += it->second;
  }
  return out;
}

const std::vector<std::string>& prompt_stages() {
  static const std::vector<std::string> s = {"judge", "tie_note", "refine", "rescore"};
  return s;
}

const std::string& default_prompt(const std::string& stage) {
  const auto& m = builtin_prompts();
  auto it = m.find(stage);
  if (it == m.end()) throw Error("no built-in prompt named '" + stage + "'");
  return it->second;
}

PromptSet PromptSet::load(const std::string& dir) {
  std::map<std::string, PromptTemplate> t;
  if (!dir.empty()) {
    if (!is_directory(dir)) throw IoError("--prompts " + dir + ": not a directory");
    DIR* d = opendir(dir.c_str());
    if (!d) throw IoError("--prompts " + dir + ": cannot list the directory");
    std::vector<std::string> files;
    while (dirent* e = readdir(d)) files.push_back(e->d_name);
    closedir(d);
    for (const auto& f : files) {
      if (f.size() < 4 || f.substr(f.size() - 4) != ".txt") continue;
      const std::string stage = f.substr(0, f.size() - 4);
      if (!stage_names().count(stage))
        throw UsageError("--prompts " + dir + ": " + f + " is not a stage prompt (expected judge.txt, tie_note.txt, "
                         "refine.txt or rescore.txt)");
    }
  }
  for (const auto& [stage, names] : stage_names()) {
    const std::string file = dir.empty() ? "" : join_path(dir, stage + ".txt");
    if (!file.empty() && path_exists(file)) t.emplace(stage, PromptTemplate(read_file(file), file, names));
    else t.emplace(stage, PromptTemplate(default_prompt(stage), "built-in " + stage + ".txt", names));
  }
  return PromptSet{t.at("judge"), t.at("tie_note"), t.at("refine"), t.at("rescore")};
}

void PromptSet::write_defaults(const std::string& dir) {
  make_dirs(dir);
  for (const auto& s : prompt_stages()) write_file_atomic(join_path(dir, s + ".txt"), default_prompt(s));
}

std::string PromptSet::digest() const {
  return sha256_hex(judge.text() + '\x1e' + tie_note.text() + '\x1e' + refine.text() + '\x1e' + rescore.text())
      .substr(0, 16);
}

}  // namespace rmkit::distill
