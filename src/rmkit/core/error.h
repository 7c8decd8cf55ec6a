// Typed errors thrown by library code. The CLI catches rmkit::Error, prints what() on one line and
// exits 2 for UsageError, 1 for everything else. Messages name the file/line/field at fault and
// what was expected, e.g. "data.jsonl:17: field 'chosen': expected a string or a message list".
#pragma once
#include <stdexcept>
#include <string>

namespace rmkit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Bad command line / option / config key: exit code 2.
class UsageError : public Error { using Error::Error; };
// A file could not be opened, read or written.
class IoError : public Error { using Error::Error; };
// A file was readable but its content is malformed (JSON, safetensors, protobuf, jsonl row...).
class FormatError : public Error { using Error::Error; };
// A config.json / option combination that is well-formed but unsupported or inconsistent.
class ConfigError : public Error { using Error::Error; };
// Tensors that do not match what a model expects (missing / unexpected / mis-shaped).
class ShapeError : public Error { using Error::Error; };
// Numerical failure during training (NaN/inf loss).
class NumericError : public Error { using Error::Error; };

// At most `max` bytes of an input for quoting in a message (cut on a UTF-8 character boundary, the
// rest said as "... (N more bytes)"), so an error about a 5 MB line stays one short line.
inline std::string clip_text(const std::string& s, size_t max = 200) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "... (" + std::to_string(s.size() - n) + " more bytes)";
}

}  // namespace rmkit
