// Prompt-only input rows, {"prompt": str | [{role, content}...], ...}: what `rmkit distill` and
// `rmkit laser` read when there are no responses yet. A string prompt is one user turn.
#pragma once
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "rmkit/text/message.h"

namespace rmkit::data {

// The row's `prompt` as a conversation. Throws FormatError "WHERE: field 'prompt': ..." when it is
// missing, empty, or not a string or a list of {role, content} string objects.
text::Conversation parse_prompt_field(const nlohmann::json& row, const std::string& where);

// Calls fn(row, conversation, "FILE:LINE", line) for every non-blank line of a JSONL file (.gz ok);
// return false to stop. Throws FormatError naming FILE:LINE for a line that is not a JSON object or
// has a bad prompt.
void for_each_prompt_row(const std::string& path,
                         const std::function<bool(nlohmann::json& row, text::Conversation& prompt,
                                                  const std::string& where, size_t line)>& fn);

}  // namespace rmkit::data
