#include "rmkit/select/bandit/packed_array.h"

#include <openssl/evp.h>

#include <cstring>

#include "rmkit/core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "packed bandit arrays are written as little-endian bytes");

namespace rmkit::select {

namespace {
constexpr const char* kKey = "f64le_base64";
}

nlohmann::json pack_f64(const std::vector<double>& v) {
  const size_t bytes = v.size() * sizeof(double);
  std::string out(4 * ((bytes + 2) / 3), '\0');
  const int n = out.empty() ? 0
                            : EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                              reinterpret_cast<const unsigned char*>(v.data()), static_cast<int>(bytes));
  out.resize(static_cast<size_t>(n));
  return {{kKey, std::move(out)}, {"n", v.size()}};
}

std::vector<double> unpack_f64(const nlohmann::json& j, const std::string& what) {
  if (j.is_array()) {
    std::vector<double> v;
    v.reserve(j.size());
    for (const auto& x : j) {
      if (!x.is_number()) throw FormatError("bandit state: " + what + ": expected numbers");
      v.push_back(x.get<double>());
    }
    return v;
  }
  if (!j.is_object() || !j.contains(kKey) || !j[kKey].is_string() || !j.contains("n") || !j["n"].is_number_integer() ||
      j["n"].get<int64_t>() < 0)
    throw FormatError("bandit state: " + what + ": expected an array of numbers or {\"" + kKey + "\": str, \"n\": count}");
  const std::string& s = j[kKey].get_ref<const std::string&>();
  const size_t n = j["n"].get<size_t>();
  if (n > s.size() || s.size() % 4 != 0 || s.size() / 4 * 3 < n * sizeof(double) || s.size() / 4 * 3 > n * sizeof(double) + 2)
    throw FormatError("bandit state: " + what + ": " + std::to_string(s.size()) + " base64 characters do not hold " +
                      std::to_string(n) + " float64 values");
  std::string raw(s.size() / 4 * 3, '\0');
  if (!s.empty() && EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                                    reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size())) < 0)
    throw FormatError("bandit state: " + what + ": invalid base64");
  std::vector<double> v(n);
  if (n) std::memcpy(v.data(), raw.data(), n * sizeof(double));
  return v;
}

}  // namespace rmkit::select
