// Errors that HTTP handlers answer instead of throwing: every failure becomes
//   {"error": {"code": <HTTP status>, "type": "...", "message": "...", "param": "..."|null}}
// with the matching status (the OpenAI / vLLM error shape; `code` is the status number).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rmkit::serve {

struct HttpError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;  // the offending request field, "" when none

  static HttpError bad_request(std::string msg, std::string param = "") {
    return {400, "invalid_request_error", std::move(msg), std::move(param)};
  }
  static HttpError unprocessable(std::string msg, std::string param = "") {
    return {422, "invalid_request_error", std::move(msg), std::move(param)};
  }
  static HttpError not_found(std::string msg, std::string param = "") {
    return {404, "not_found_error", std::move(msg), std::move(param)};
  }
  static HttpError too_large(std::string msg, std::string param = "") {
    return {413, "invalid_request_error", std::move(msg), std::move(param)};
  }
  static HttpError overloaded(std::string msg) { return {503, "server_overloaded", std::move(msg), ""}; }
  static HttpError timeout(std::string msg) { return {504, "timeout_error", std::move(msg), ""}; }
  static HttpError internal(std::string msg) { return {500, "internal_error", std::move(msg), ""}; }
};

nlohmann::json error_body(const HttpError& e);

// At most `max_chars` bytes of `s` (cut on a UTF-8 boundary, "…" appended when cut), with invalid
// UTF-8 replaced, so that a quoted input never makes an error line long or unprintable.
std::string quote_input(const std::string& s, size_t max_chars = 200);

}  // namespace rmkit::serve
