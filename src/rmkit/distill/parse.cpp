#include "rmkit/distill/parse.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace rmkit::distill {
namespace {

struct Number {
  double value;
  size_t start, end;  // [start, end) in the reply, sign included
};

// Numbers as a judge writes them: optional sign, digits, optional fraction ("7", "7.5", "-1").
// A fraction-only form ".5" is read too. Returns the numbers in order of appearance.
std::vector<Number> numbers_in(const std::string& s) {
  std::vector<Number> out;
  size_t i = 0;
  while (i < s.size()) {
    const bool digit = std::isdigit(static_cast<unsigned char>(s[i]));
    const bool dot_digit = s[i] == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]));
    if (!digit && !dot_digit) {
      ++i;
      continue;
    }
    size_t start = i;
    // a '-' directly before the number (not a hyphen inside a word like "1-10")
    if (start > 0 && s[start - 1] == '-' && (start == 1 || !std::isalnum(static_cast<unsigned char>(s[start - 2]))))
      --start;
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j < s.size() && s[j] == '.' && j + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
      ++j;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    }
    out.push_back({std::strtod(s.substr(start, j - start).c_str(), nullptr), start, j});
    i = j;
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The word (letters) that ends at or before `pos`, skipping spaces, '#' and ':' between, lowercased.
std::string word_before(const std::string& s, size_t pos) {
  size_t e = pos;
  while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '#' || s[e - 1] == '\t')) --e;
  size_t b = e;
  while (b > 0 && std::isalpha(static_cast<unsigned char>(s[b - 1]))) --b;
  return lower(s.substr(b, e - b));
}

// Whether a number in a judge's reply is not a score: the label of "Assistant 1" / "Answer 2" /
// "Response 1", the scale of "8/10", "out of 10", "1-10" or "1 to 10".
bool not_a_score(const std::string& s, const Number& n) {
  const std::string before = word_before(s, n.start);
  if (before == "assistant" || before == "answer" || before == "response") return true;
  size_t b = n.start;
  while (b > 0 && s[b - 1] == ' ') --b;
  if (b > 0 && s[b - 1] == '/') return true;                               // 8/[10]
  if (before == "of" && b >= 6 && lower(s.substr(b - 6, 6)) == "out of") return true;  // out of [10]
  if (before == "to" && b >= 2) {                                          // 1 to [10]
    size_t e = b - 2;
    while (e > 0 && s[e - 1] == ' ') --e;
    if (e > 0 && std::isdigit(static_cast<unsigned char>(s[e - 1]))) return true;
  }
  if (n.start > 0 && s[n.start - 1] == '-' && n.start >= 2 && std::isdigit(static_cast<unsigned char>(s[n.start - 2])))
    return true;                                                           // 1-[10]
  size_t e = n.end;
  if (e + 1 < s.size() && s[e] == '-' && std::isdigit(static_cast<unsigned char>(s[e + 1]))) return true;  // [1]-10
  while (e < s.size() && s[e] == ' ') ++e;
  if (lower(s.substr(e, 3)) == "to " || lower(s.substr(e, 3)) == "to\t") {  // [1] to 10
    size_t f = e + 3;
    while (f < s.size() && s[f] == ' ') ++f;
    if (f < s.size() && std::isdigit(static_cast<unsigned char>(s[f]))) return true;
  }
  return false;
}

// The first `limit` numbers of the reply that are scores (not_a_score above).
std::vector<double> scores_in(const std::string& s, size_t limit) {
  std::vector<double> out;
  for (const Number& n : numbers_in(s)) {
    if (out.size() == limit) break;
    if (!not_a_score(s, n)) out.push_back(n.value);
  }
  return out;
}

}  // namespace

std::string trim_space(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

namespace {

std::vector<uint32_t> code_points(const std::string& s) {
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (!ok) {
      cps.push_back(0x110000u + c);  // an invalid byte: its own unit, never equal to a code point
      ++i;
      continue;
    }
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    cps.push_back(cp);
    i += len;
  }
  return cps;
}

}  // namespace

std::optional<std::pair<double, double>> parse_two_scores(const std::string& reply, double lo, double hi) {
  auto n = scores_in(reply, 2);
  if (n.size() < 2) return std::nullopt;
  for (double v : n)
    if (!(v >= lo && v <= hi)) return std::nullopt;
  return std::make_pair(n[0], n[1]);
}

std::optional<double> parse_one_score(const std::string& reply, double lo, double hi) {
  auto n = scores_in(reply, 1);
  if (n.empty() || !(n[0] >= lo && n[0] <= hi)) return std::nullopt;
  return n[0];
}

std::optional<std::string> extract_modified_response(const std::string& reply) {
  static const std::string start_tag = "<Start of Modified Response>";
  static const std::string end_tags[] = {"<End of Modified Response>", "</End of Modified Response>"};
  for (size_t s = reply.find(start_tag); s != std::string::npos; s = reply.find(start_tag, s + 1)) {
    const size_t body = s + start_tag.size();
    size_t best = std::string::npos;
    for (const auto& t : end_tags) best = std::min(best, reply.find(t, body));
    if (best != std::string::npos) return trim_space(reply.substr(body, best - body));
  }
  return std::nullopt;
}

namespace {

size_t levenshtein(const std::vector<uint32_t>& x, const std::vector<uint32_t>& y) {
  if (x.empty()) return y.size();
  if (y.empty()) return x.size();
  std::vector<size_t> prev(y.size() + 1), cur(y.size() + 1);
  for (size_t j = 0; j <= y.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= x.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= y.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[y.size()];
}

}  // namespace

size_t edit_distance(const std::string& a, const std::string& b) { return levenshtein(code_points(a), code_points(b)); }

double normalized_edit_distance(const std::string& a, const std::string& b) {
  const auto x = code_points(a), y = code_points(b);  // decoded once for the distance and the lengths
  const size_t longest = std::max(x.size(), y.size());
  return longest == 0 ? 0.0 : static_cast<double>(levenshtein(x, y)) / static_cast<double>(longest);
}

std::string question_text(const text::Conversation& prompt) {
  if (prompt.size() == 1 && prompt[0].role == "user") return prompt[0].content;
  std::string out;
  for (const auto& m : prompt) {
    std::string role = m.role;
    if (!role.empty()) role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
    if (!out.empty()) out += "\n\n";
    out += role + ": " + m.content;
  }
  return out;
}

std::string format_score(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

}  // namespace rmkit::distill
