#include "rmkit/core/toml_lite.h"

#include <cctype>
#include <cmath>
#include <limits>

#include "rmkit/core/error.h"

namespace rmkit {
namespace {

class TomlParser {
 public:
  TomlParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  nlohmann::json parse() {
    nlohmann::json out = nlohmann::json::object();
    while (true) {
      skip_ws_comments_newlines();
      if (at_end()) break;
      if (peek() == '[') fail("tables ([section]) are not supported: option keys are flat, e.g. lr = 1e-5");
      const size_t key_line = line_;
      std::string key = parse_key();
      skip_inline_ws();
      if (at_end() || peek() != '=') fail("expected '=' after key '" + key + "'");
      ++i_;
      skip_inline_ws();
      nlohmann::json v = parse_value();
      if (out.contains(key)) fail_at(key_line, "key '" + key + "' is defined twice");
      out[key] = std::move(v);
      skip_inline_ws();
      if (!at_end() && peek() == '#') skip_comment();
      if (!at_end() && peek() != '\n' && peek() != '\r') fail("expected the end of the line after the value of '" + key + "'");
    }
    return out;
  }

 private:
  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0, line_ = 1;

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  [[noreturn]] void fail(const std::string& what) const { fail_at(line_, what); }
  [[noreturn]] void fail_at(size_t line, const std::string& what) const {
    throw FormatError(path_ + ":" + std::to_string(line) + ": " + what);
  }
  void skip_inline_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++i_;
  }
  void skip_comment() {
    while (!at_end() && peek() != '\n') ++i_;
  }
  void skip_ws_comments_newlines() {
    while (!at_end()) {
      char c = peek();
      if (c == ' ' || c == '\t' || c == '\r') ++i_;
      else if (c == '\n') ++i_, ++line_;
      else if (c == '#') skip_comment();
      else break;
    }
  }

  std::string parse_key() {
    if (peek() == '"' || peek() == '\'') return parse_string();
    size_t start = i_;
    while (!at_end() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_' || peek() == '-')) ++i_;
    if (i_ == start) fail(std::string("expected a key (letters, digits, '_' or '-'), got '") + peek() + "'");
    if (!at_end() && peek() == '.') fail("dotted keys are not supported: option keys are flat");
    return s_.substr(start, i_ - start);
  }

  static void append_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t parse_hex(int n) {
    if (i_ + static_cast<size_t>(n) > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else fail(std::string("invalid hex digit '") + c + "' in a unicode escape");
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) fail("unicode escape is not a scalar value");
    return v;
  }

  std::string parse_string() {
    const char q = peek();
    const bool multi = s_.compare(i_, 3, std::string(3, q)) == 0;
    i_ += multi ? 3 : 1;
    if (multi && !at_end() && peek() == '\n') ++i_, ++line_;  // newline right after """ is trimmed
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      char c = peek();
      if (multi ? s_.compare(i_, 3, std::string(3, q)) == 0 : c == q) {
        i_ += multi ? 3 : 1;
        return out;
      }
      if (c == '\n') {
        if (!multi) fail("newline inside a single-line string");
        ++line_;
      }
      ++i_;
      if (c == '\\' && q == '"') {
        if (at_end()) fail("unterminated escape");
        char e = s_[i_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case 'b': out += '\b'; break;
          case 't': out += '\t'; break;
          case 'n': out += '\n'; break;
          case 'f': out += '\f'; break;
          case 'r': out += '\r'; break;
          case 'u': append_utf8(&out, parse_hex(4)); break;
          case 'U': append_utf8(&out, parse_hex(8)); break;
          default: fail(std::string("invalid escape '\\") + e + "' in a string");
        }
        continue;
      }
      out += c;
    }
  }

  nlohmann::json parse_array() {
    ++i_;  // [
    nlohmann::json arr = nlohmann::json::array();
    while (true) {
      skip_ws_comments_newlines();
      if (at_end()) fail("unterminated array");
      if (peek() == ']') {
        ++i_;
        return arr;
      }
      arr.push_back(parse_value());
      skip_ws_comments_newlines();
      if (at_end()) fail("unterminated array");
      if (peek() == ',') ++i_;
      else if (peek() != ']') fail("expected ',' or ']' in an array");
    }
  }

  nlohmann::json parse_scalar_word() {
    size_t start = i_;
    while (!at_end() && !std::isspace(static_cast<unsigned char>(peek())) && peek() != ',' && peek() != ']' &&
           peek() != '#')
      ++i_;
    std::string w = s_.substr(start, i_ - start);
    if (w.empty()) fail("expected a value");
    if (w == "true") return true;
    if (w == "false") return false;
    std::string sign;
    std::string body = w;
    if (body[0] == '+' || body[0] == '-') sign = body.substr(0, 1), body = body.substr(1);
    if (body == "inf") return sign == "-" ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    if (body == "nan") return std::numeric_limits<double>::quiet_NaN();
    std::string digits;
    for (size_t k = 0; k < body.size(); ++k) {
      if (body[k] == '_') {
        if (k == 0 || k + 1 == body.size() || !std::isalnum(static_cast<unsigned char>(body[k - 1])) ||
            !std::isalnum(static_cast<unsigned char>(body[k + 1])))
          fail("misplaced '_' in number '" + w + "'");
        continue;
      }
      digits += body[k];
    }
    try {
      size_t used = 0;
      if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'o' || digits[1] == 'b')) {
        if (!sign.empty()) fail("sign on a hex/octal/binary integer '" + w + "'");
        int base = digits[1] == 'x' ? 16 : digits[1] == 'o' ? 8 : 2;
        long long v = std::stoll(digits.substr(2), &used, base);
        if (used != digits.size() - 2) throw std::invalid_argument(w);
        return v;
      }
      bool is_float = digits.find_first_of(".eE") != std::string::npos;
      if (!is_float) {
        if (digits.size() > 1 && digits[0] == '0') fail("leading zero in integer '" + w + "'");
        long long v = std::stoll(sign + digits, &used);
        if (used != sign.size() + digits.size()) throw std::invalid_argument(w);
        return v;
      }
      if (digits.front() == '.' || digits.back() == '.') fail("a float needs digits on both sides of '.': '" + w + "'");
      double v = std::stod(sign + digits, &used);
      if (used != sign.size() + digits.size()) throw std::invalid_argument(w);
      return v;
    } catch (const FormatError&) {
      throw;
    } catch (const std::exception&) {
      fail("expected a string (in quotes), number, true/false or [array], got '" + w + "'");
    }
  }

  nlohmann::json parse_value() {
    if (at_end()) fail("expected a value");
    char c = peek();
    if (c == '"' || c == '\'') return parse_string();
    if (c == '[') return parse_array();
    if (c == '{') fail("inline tables are not supported: option keys are flat");
    return parse_scalar_word();
  }
};

}  // namespace

nlohmann::json parse_toml_flat(const std::string& text, const std::string& path) {
  return TomlParser(text, path).parse();
}

}  // namespace rmkit
