#include "rmkit/serve/request.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>

#include "rmkit/serve/http_error.h"

namespace rmkit::serve {
namespace {
std::string at(const std::string& where, const char* key) { return where.empty() ? key : where + "." + key; }
}  // namespace

std::string type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

std::string request_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%08llx%08llx", prefix, static_cast<unsigned long long>(++counter),
                static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count() & 0xffffffffULL));
  return buf;
}

json parse_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    std::string m = e.what();
    if (auto p = m.find("] "); p != std::string::npos) m = m.substr(p + 2);  // drop "[json.exception.parse_error.101] "
    throw HttpError::bad_request("invalid JSON body: " + quote_input(m, 300));
  }
  if (!j.is_object()) throw HttpError::bad_request("request body must be a JSON object, got " + type_name(j));
  return j;
}

void check_keys(const json& obj, std::initializer_list<const char*> allowed, const std::string& where) {
  std::set<std::string> ok(allowed.begin(), allowed.end());
  for (const auto& [k, v] : obj.items())
    if (!ok.count(k)) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      throw HttpError::bad_request("unknown parameter '" + quote_input(at(where, k.c_str()), 100) +
                                       "' (supported: " + list + ")",
                                   at(where, k.c_str()));
    }
}

std::optional<std::string> opt_string(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string())
    throw HttpError::bad_request(at(where, key) + ": expected a string, got " + type_name(*it), at(where, key));
  return it->get<std::string>();
}

std::optional<bool> opt_bool(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean())
    throw HttpError::bad_request(at(where, key) + ": expected true or false, got " + type_name(*it), at(where, key));
  return it->get<bool>();
}

std::string req_string(const json& obj, const char* key, const std::string& where) {
  auto v = opt_string(obj, key, where);
  if (!v) throw HttpError::bad_request(at(where, key) + ": required string is missing", at(where, key));
  return *v;
}

text::Conversation parse_messages(const json& j, const std::string& field) {
  if (!j.is_array()) throw HttpError::bad_request(field + ": expected an array of messages, got " + type_name(j), field);
  text::Conversation conv;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    const json& m = j[i];
    if (!m.is_object()) throw HttpError::bad_request(f + ": expected a message object, got " + type_name(m), f);
    std::string role = req_string(m, "role", f);
    if (role != "system" && role != "user" && role != "assistant" && role != "developer")
      throw HttpError::unprocessable(f + ".role: expected system, user or assistant, got '" + quote_input(role, 40) + "'",
                                     f + ".role");
    if (role == "developer") role = "system";
    auto it = m.find("content");
    std::string content;
    if (it == m.end() || it->is_null()) {
      content = "";
    } else if (it->is_string()) {
      content = it->get<std::string>();
    } else if (it->is_array()) {  // OpenAI content parts
      for (size_t k = 0; k < it->size(); ++k) {
        const json& part = (*it)[k];
        const std::string pf = f + ".content[" + std::to_string(k) + "]";
        if (!part.is_object() || req_string(part, "type", pf) != "text")
          throw HttpError::unprocessable(pf + ": only {\"type\": \"text\", \"text\": ...} parts are supported", pf);
        content += req_string(part, "text", pf);
      }
    } else {
      throw HttpError::bad_request(f + ".content: expected a string or an array of text parts, got " + type_name(*it),
                                   f + ".content");
    }
    conv.push_back({role, content});
  }
  return conv;
}

text::Conversation parse_prompt(const json& j, const std::string& field) {
  if (j.is_string()) return {{"user", j.get<std::string>()}};
  if (j.is_array()) return parse_messages(j, field);
  throw HttpError::bad_request(field + ": expected a string or a message list, got " + type_name(j), field);
}

bool is_token_ids(const json& j) {
  if (!j.is_array() || j.empty()) return false;
  for (const auto& v : j)
    if (!v.is_number_integer() && !v.is_number_unsigned()) return false;
  return true;
}

std::vector<int64_t> parse_ids(const json& j, const std::string& field) {
  if (!is_token_ids(j)) throw HttpError::bad_request(field + ": expected a non-empty array of token ids", field);
  std::vector<int64_t> ids;
  for (const auto& v : j) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw HttpError::unprocessable(field + ": token id out of range", field);
    ids.push_back(v.get<int64_t>());
  }
  return ids;
}

}  // namespace rmkit::serve
