// Large float64 arrays of a bandit state (the low-rank arms' context rows, the dense arms' A^{-1})
// as JSON: {"f64le_base64": the little-endian IEEE-754 bytes in base64 (OpenSSL), "n": count}.
// Bit-exact like the decimal form nlohmann writes, but ~2x smaller and parsed without a JSON number
// per value: a dense arm at d = 4096 is 16.7 M values (~370 MB as decimal JSON, 179 MB packed).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rmkit::select {

nlohmann::json pack_f64(const std::vector<double>& v);
// Reads a packed array or a plain JSON array of numbers (states written before packing).
// FormatError naming `what` on anything else.
std::vector<double> unpack_f64(const nlohmann::json& j, const std::string& what);

}  // namespace rmkit::select
