#include "rmkit/eval/metrics/score_reader.h"

#include <cmath>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::eval {

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + len > s.size()) len = 1;
    for (size_t k = 1; k < len; ++k) {  // a malformed continuation byte: count the lead byte alone
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) { len = 1; break; }
    }
    i += len;
    ++n;
  }
  return n;
}

namespace {

std::string str_field(const nlohmann::json& row, const char* key, const std::string& where,
                      bool required) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) {
    if (required) throw FormatError(where + ": missing field '" + key + "'");
    return {};
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  throw FormatError(where + ": field '" + key + "': expected a string");
}

double reward_field(const nlohmann::json& row, const char* key, const std::string& where) {
  auto it = row.find(key);
  if (it == row.end()) throw FormatError(where + ": missing field '" + key + "'");
  if (!it->is_number()) throw FormatError(where + ": field '" + key + "': expected a number");
  double v = it->get<double>();
  if (!std::isfinite(v)) throw FormatError(where + ": field '" + key + "': not finite");
  return v;
}

// Length of a response given as a string or as a message list [{role, content}...].
size_t response_length(const nlohmann::json& row, const char* key, const std::string& where) {
  auto it = row.find(key);
  if (it == row.end()) throw FormatError(where + ": missing field '" + key + "'");
  if (it->is_string()) return utf8_length(it->get_ref<const std::string&>());
  if (it->is_array()) {
    size_t n = 0;
    for (const auto& m : *it) {
      auto c = m.is_object() ? m.find("content") : m.end();
      if (!m.is_object() || c == m.end() || !c->is_string())
        throw FormatError(where + ": field '" + key + "': message without string 'content'");
      n += utf8_length(c->get_ref<const std::string&>());
    }
    return n;
  }
  throw FormatError(where + ": field '" + key + "': expected a string or a message list");
}

// The length of a reply: `length_key` when the row carries it (rmkit score writes the final reply's
// length for transcript rows such as HH-RLHF), else the length of `key`'s text.
size_t reply_length(const nlohmann::json& row, const char* key, const char* length_key, const std::string& where) {
  auto it = row.find(length_key);
  if (it == row.end() || it->is_null()) return response_length(row, key, where);
  if (!it->is_number_integer() || it->get<long long>() < 0)
    throw FormatError(where + ": field '" + length_key + "': expected a non-negative integer");
  return static_cast<size_t>(it->get<long long>());
}

int style_field(const nlohmann::json& meta, const char* key, const std::string& where) {
  const auto& v = meta.at(key);
  if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() > 2)
    throw FormatError(where + ": field 'meta." + key + "': expected an integer 0..2");
  return static_cast<int>(v.get<long long>());
}

}  // namespace

ScoredPair scored_pair_from_json(const nlohmann::json& row, const std::string& file,
                                 const std::string& where) {
  if (!row.is_object()) throw FormatError(where + ": expected a JSON object");
  ScoredPair p;
  p.file = file;
  p.id = str_field(row, "id", where, false);
  p.category = str_field(row, "category", where, false);
  p.subset = str_field(row, "subset", where, false);
  const std::string source = str_field(row, "source", where, false);
  p.reward_chosen = reward_field(row, "reward_chosen", where);
  p.reward_rejected = reward_field(row, "reward_rejected", where);
  p.len_chosen = reply_length(row, "chosen", "reply_length_chosen", where);
  p.len_rejected = reply_length(row, "rejected", "reply_length_rejected", where);

  bool has_styles = false;
  auto meta = row.find("meta");
  if (meta != row.end() && !meta->is_null()) {
    if (!meta->is_object()) throw FormatError(where + ": field 'meta': expected an object");
    bool c = meta->contains("chosen_style"), r = meta->contains("rejected_style");
    if (c != r)
      throw FormatError(where + ": field 'meta': chosen_style and rejected_style must come together");
    if (c) {
      p.chosen_style = style_field(*meta, "chosen_style", where);
      p.rejected_style = style_field(*meta, "rejected_style", where);
      has_styles = true;
    }
  }
  if (has_styles || source == "RM-Bench") p.domain = p.category;
  return p;
}

std::vector<ScoredPair> read_score_file(const std::string& path) {
  std::vector<ScoredPair> out;
  const std::string base = file_name(path);
  for_each_line(path, [&](const std::string& line, size_t line_no) {
    if (line.find_first_not_of(" \t") == std::string::npos) return true;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw FormatError(where + ": invalid JSON: " + clip_text(e.what()));
    }
    // `rmkit score` writes rows it could not score with null rewards and a "skipped" reason
    if (row.is_object() && row.contains("skipped") && row["reward_chosen"].is_null()) return true;
    out.push_back(scored_pair_from_json(row, base, where));
    return true;
  });
  return out;
}

}  // namespace rmkit::eval
