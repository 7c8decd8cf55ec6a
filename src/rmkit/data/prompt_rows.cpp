#include "rmkit/data/prompt_rows.h"

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::data {

text::Conversation parse_prompt_field(const nlohmann::json& row, const std::string& where) {
  auto it = row.find("prompt");
  if (it == row.end()) throw FormatError(where + ": field 'prompt': missing (expected a string or a message list)");
  text::Conversation conv;
  if (it->is_string()) {
    conv.push_back({"user", it->get<std::string>()});
    return conv;
  }
  if (!it->is_array() || it->empty())
    throw FormatError(where + ": field 'prompt': expected a string or a non-empty message list");
  for (const auto& m : *it) {
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() || !m["content"].is_string())
      throw FormatError(where + ": field 'prompt': expected a string or [{role, content}...]");
    conv.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return conv;
}

void for_each_prompt_row(const std::string& path,
                         const std::function<bool(nlohmann::json& row, text::Conversation& prompt,
                                                  const std::string& where, size_t line)>& fn) {
  for_each_line(path, [&](const std::string& line, size_t no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return true;
    const std::string where = path + ":" + std::to_string(no);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw FormatError(where + ": expected a JSON object");
    text::Conversation conv = parse_prompt_field(j, where);
    return fn(j, conv, where, no);
  });
}

}  // namespace rmkit::data
