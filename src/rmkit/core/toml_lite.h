// A TOML reader for flat option files (`rmkit train --config run.toml`): the subset an option
// table needs, parsed into a JSON object so JSON and TOML configs share one code path.
//
// Supported: `key = value` lines with bare (A-Za-z0-9_-) or quoted keys; basic strings with the
// TOML escapes (\" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX), literal 'strings', multi-line """ / '''
// strings; integers (decimal with _ separators, 0x/0o/0b); floats (incl. exponents, inf, nan);
// true/false; arrays of these, which may span lines and end with a trailing comma; # comments.
// Tables ([section]), inline tables and dates are rejected: option keys are flat.
// Every error is a FormatError "PATH:LINE: what was expected".
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rmkit {

nlohmann::json parse_toml_flat(const std::string& text, const std::string& path);

}  // namespace rmkit
