#include "rmkit/select/bandit/normalizer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "rmkit/core/error.h"

namespace rmkit::select {

double percentile_linear(std::vector<double> values, double q) {
  if (values.empty()) throw ConfigError("percentile of an empty history");
  std::sort(values.begin(), values.end());
  const double pos = q / 100.0 * static_cast<double>(values.size() - 1);
  const double fl = std::floor(pos);
  size_t i = static_cast<size_t>(fl);
  if (i >= values.size() - 1) return values.back();
  const double t = pos - fl, a = values[i], b = values[i + 1], diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

namespace {
void check(const NormalizerParams& p) {
  auto in_range = [](double q) { return std::isfinite(q) && q >= 0 && q <= 100; };
  if (!in_range(p.low_percentile) || !in_range(p.high_percentile) || p.low_percentile > p.high_percentile)
    throw ConfigError("reward normaliser: expected 0 <= low percentile <= high percentile <= 100, got " +
                      std::to_string(p.low_percentile) + " and " + std::to_string(p.high_percentile));
  if (p.min_history < 1) throw ConfigError("reward normaliser: min history must be at least 1");
  if (!std::isfinite(p.fallback)) throw ConfigError("reward normaliser: fallback must be finite");
}
}  // namespace

RewardNormalizer::RewardNormalizer(const NormalizerParams& p) : params_(p) { check(p); }

double RewardNormalizer::normalize(double raw) {
  if (!std::isfinite(raw)) throw NumericError("reward normaliser: reward is not finite");
  history_.push_back(raw);
  if (history_.size() < params_.min_history) return params_.fallback;
  const double lo = percentile_linear(history_, params_.low_percentile);
  const double hi = percentile_linear(history_, params_.high_percentile);
  if (!(hi > lo)) return params_.fallback;  // equal quantiles
  if (raw <= lo) return 0.0;
  if (raw >= hi) return 1.0;
  return (raw - lo) / (hi - lo);
}

nlohmann::json RewardNormalizer::save() const {
  return {{"params",
           {{"low_percentile", params_.low_percentile},
            {"high_percentile", params_.high_percentile},
            {"min_history", params_.min_history},
            {"fallback", params_.fallback}}},
          {"history", history_}};
}

void RewardNormalizer::load(const nlohmann::json& j) {
  try {
    const auto& p = j.at("params");
    NormalizerParams np;
    np.low_percentile = p.at("low_percentile").get<double>();
    np.high_percentile = p.at("high_percentile").get<double>();
    np.min_history = p.at("min_history").get<size_t>();
    np.fallback = p.at("fallback").get<double>();
    check(np);
    params_ = np;
    history_ = j.at("history").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("reward normaliser state: ") + e.what());
  }
}

}  // namespace rmkit::select
