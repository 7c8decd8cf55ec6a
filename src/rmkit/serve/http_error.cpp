#include "rmkit/serve/http_error.h"

namespace rmkit::serve {

nlohmann::json error_body(const HttpError& e) {
  nlohmann::json err = {{"code", e.status}, {"type", e.type}, {"message", e.message}};
  err["param"] = e.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param);
  return {{"error", err}};
}

std::string quote_input(const std::string& s, size_t max_chars) {
  size_t cut = s.size();
  if (cut > max_chars) {
    cut = max_chars;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
  }
  // dump() with the replace handler turns invalid UTF-8 into U+FFFD; strip the JSON quotes.
  std::string q = nlohmann::json(s.substr(0, cut)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  q = q.substr(1, q.size() - 2);
  if (cut < s.size()) q += "…";
  return q;
}

}  // namespace rmkit::serve
