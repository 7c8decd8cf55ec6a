// Reward normalisation as LASeR's code does it: the raw reward joins a history, and is mapped
// through the history's low/high percentiles (NumPy's default linear interpolation) to [0, 1]:
// 0 at or below the low percentile, 1 at or above the high one, linear between. Until the history
// (counting the new reward) holds `min_history` values, and when the two percentiles are equal,
// the result is `fallback`.
#pragma once
#include <cstddef>
#include <vector>

#include <nlohmann/json.hpp>

namespace rmkit::select {

struct NormalizerParams {
  double low_percentile = 20;   // percent, in [0, 100]
  double high_percentile = 80;  // percent, >= low_percentile
  size_t min_history = 20;      // history length (counting the new reward) before mapping
  double fallback = 0.5;        // before min_history, and when the percentiles are equal
};

// np.percentile(values, q) with the default method ("linear"): sorted values, virtual index
// q/100 * (n - 1), interpolated as NumPy's _lerp does (a + (b-a)*t, or b - (b-a)*(1-t) when
// t >= 0.5). Throws ConfigError on an empty input.
double percentile_linear(std::vector<double> values, double q);

class RewardNormalizer {
 public:
  explicit RewardNormalizer(const NormalizerParams& p = {});  // ConfigError on bad params
  // Appends `raw` to the history and returns its normalised value (NumericError if not finite).
  double normalize(double raw);
  const std::vector<double>& history() const { return history_; }
  const NormalizerParams& params() const { return params_; }

  nlohmann::json save() const;           // {"params": {...}, "history": [...]}
  void load(const nlohmann::json& j);    // FormatError on a malformed state

 private:
  NormalizerParams params_;
  std::vector<double> history_;
};

}  // namespace rmkit::select
