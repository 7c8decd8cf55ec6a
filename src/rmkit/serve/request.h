// Reading request bodies: every failure is an HttpError naming the field ("inputs[2].messages[0].role:
// expected a string") with 400 for malformed JSON / wrong types and 422 for well-typed but unusable
// values. Strings are UTF-8-checked by the JSON parser.
#pragma once
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/text/message.h"

namespace rmkit::serve {

using nlohmann::json;

json parse_body(const std::string& body);  // object expected
// "PREFIX-<16 hex digits>" unique within the process (a counter and the clock): response ids.
std::string request_id(const char* prefix);
std::string type_name(const json& j);       // "a string", "an array", …

// Rejects keys not in `allowed` (400 naming the first unknown one).
void check_keys(const json& obj, std::initializer_list<const char*> allowed, const std::string& where = "");
std::optional<std::string> opt_string(const json& obj, const char* key, const std::string& where = "");
std::optional<bool> opt_bool(const json& obj, const char* key, const std::string& where = "");
std::string req_string(const json& obj, const char* key, const std::string& where = "");
// [{role, content}], content a string or OpenAI content parts [{type: "text", text}].
text::Conversation parse_messages(const json& j, const std::string& field);
// A prompt given as a string (one user turn) or as a message list.
text::Conversation parse_prompt(const json& j, const std::string& field);
// Token ids: an array of integers.
bool is_token_ids(const json& j);
std::vector<int64_t> parse_ids(const json& j, const std::string& field);

}  // namespace rmkit::serve
