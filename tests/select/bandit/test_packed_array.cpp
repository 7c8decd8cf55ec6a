// Packed float64 arrays of bandit states: bit-exact round trips (every base64 padding case, signed
// zero, subnormals, extremes), plain number arrays from older states still load, and malformed
// packings are refused with a FormatError naming the field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "rmkit/core/error.h"
#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/linear.h"
#include "rmkit/select/bandit/packed_array.h"

namespace rmkit::select {
namespace {

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

TEST(PackedArray, RoundTripsEveryBitPattern) {
  std::vector<double> special = {0.0, -0.0, 1.0 / 3.0, std::numeric_limits<double>::denorm_min(),
                                 std::numeric_limits<double>::max(), -std::numeric_limits<double>::min(), 1e-300};
  for (size_t n = 0; n <= special.size(); ++n) {  // 0..7 values: 0, 8, 16, ... bytes, every padding case
    std::vector<double> v(special.begin(), special.begin() + static_cast<std::ptrdiff_t>(n));
    const nlohmann::json j = pack_f64(v);
    EXPECT_EQ(j["n"].get<size_t>(), n);
    EXPECT_EQ(j["f64le_base64"].get<std::string>().size(), 4 * ((8 * n + 2) / 3));
    EXPECT_TRUE(same_bits(unpack_f64(nlohmann::json::parse(j.dump()), "x"), v)) << n;
  }
  std::mt19937_64 rng(7);
  std::vector<double> big(10007);
  for (auto& x : big) {
    const uint64_t bits = rng();
    std::memcpy(&x, &bits, sizeof x);
    if (!std::isfinite(x)) x = 0.5;
  }
  EXPECT_TRUE(same_bits(unpack_f64(nlohmann::json::parse(pack_f64(big).dump()), "x"), big));
}

TEST(PackedArray, PlainArraysLoadAndBadPackingsAreRefused) {
  EXPECT_TRUE(same_bits(unpack_f64(nlohmann::json::array({1.5, -2.0}), "x"), {1.5, -2.0}));
  auto refused = [](const nlohmann::json& j) {
    try {
      unpack_f64(j, "x[3]");
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refused(nlohmann::json::array({1, "a"})).find("x[3]: expected numbers"), std::string::npos);
  EXPECT_NE(refused({{"f64le_base64", "AAAA"}, {"n", 5}}).find("x[3]: 4 base64 characters do not hold 5"), std::string::npos);
  EXPECT_NE(refused({{"f64le_base64", ""}, {"n", uint64_t{1} << 61}}).find("do not hold"), std::string::npos);  // n * 8 wraps
  EXPECT_NE(refused({{"f64le_base64", "!!!!!!!!!!!!"}, {"n", 1}}).find("x[3]: invalid base64"), std::string::npos);
  EXPECT_NE(refused({{"f64le_base64", 3}, {"n", 1}}).find("x[3]: expected an array"), std::string::npos);
  EXPECT_NE(refused("text").find("x[3]: expected an array"), std::string::npos);
}

// A LinUCB state written before packing (plain arrays) reloads to the same scores as the packed one.
TEST(PackedArray, UnpackedStatesFromBeforeStillLoad) {
  for (size_t dim : {size_t{6}, RidgeArms::kLowRankMinDim}) {  // dense a_inv and low-rank x
    BanditParams p;
    p.arms = 3;
    p.dim = dim;
    auto a = make_bandit("linucb", p);
    std::mt19937_64 rng(3);
    std::normal_distribution<double> n(0.0, 1.0);
    Context c(dim);
    for (int t = 0; t < 12; ++t) {
      for (auto& v : c) v = n(rng);
      a->update(a->select(c), c, n(rng));
    }
    nlohmann::json st = a->save(), plain = st;
    const char* key = dim < RidgeArms::kLowRankMinDim ? "a_inv" : "x";
    ASSERT_TRUE(st["model"][key][0].contains("f64le_base64"));
    for (auto& arr : plain["model"][key]) arr = unpack_f64(arr, key);
    auto b = restore_bandit(plain), packed = restore_bandit(st);
    EXPECT_EQ(b->save(), st) << dim;  // saved again: packed, the same state
    for (auto& v : c) v = n(rng);
    b->select(c);
    packed->select(c);
    EXPECT_EQ(b->scores(), packed->scores()) << dim;
  }
}

}  // namespace
}  // namespace rmkit::select
