// The one random generator of the bandit layer, small enough to re-implement bit for bit in another
// language (tests/select/bandit/bandit_reference.py does, in Python):
//   next():    SplitMix64 (Steele, Lea & Flood 2014): state += 0x9E3779B97F4A7C15; z = state;
//              z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//              return z ^ (z >> 31)   (all arithmetic modulo 2^64)
//   uniform(): (next() >> 11) * 2^-53, a double in [0, 1)
//   normal():  Box–Muller, cosine branch only: u1 = 1 - uniform() (in (0, 1]), u2 = uniform(),
//              sqrt(-2 ln u1) * cos(2 pi u2); each normal consumes exactly two next() calls
// The whole state is one uint64 (saved and loaded with the bandits that sample).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace rmkit::select {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed = 0) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
  }
  // An index in [0, n): floor(uniform() * n) (one next() call).
  size_t index(size_t n) {
    const auto i = static_cast<size_t>(uniform() * static_cast<double>(n));
    return i < n ? i : n - 1;
  }

  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

  static constexpr double kPi = 3.14159265358979323846;

 private:
  uint64_t state_;
};

}  // namespace rmkit::select
