#include "rmkit/select/preference_pairs.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "rmkit/core/error.h"

namespace rmkit::select {

std::vector<SamplePair> build_pairs(const std::vector<double>& scores, const std::vector<std::string>& texts,
                                    const std::string& rule, size_t top_pairs) {
  if (rule != "top-vs-rest" && rule != "best-worst")
    throw ConfigError("--pairs: expected top-vs-rest or best-worst, got '" + rule + "'");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<SamplePair> out;
  if (order.size() < 2) return out;
  const size_t best = order[0];
  auto add = [&](size_t r) {
    if (scores[r] < scores[best] && texts[r] != texts[best]) out.push_back({best, r});
  };
  if (rule == "best-worst") {
    add(order.back());
  } else {
    for (size_t k = 1; k < order.size() && k <= top_pairs; ++k) add(order[k]);
  }
  return out;
}

std::vector<double> ensemble_mean(const std::vector<std::vector<double>>& scores) {
  if (scores.empty()) return {};
  const size_t n = scores[0].size();
  std::vector<double> out(n, 0.0);
  for (const auto& s : scores) {
    double mean = 0, var = 0;
    for (double v : s) mean += v;
    mean /= static_cast<double>(std::max<size_t>(1, n));
    for (double v : s) var += (v - mean) * (v - mean);
    const double sd = std::sqrt(var / static_cast<double>(std::max<size_t>(1, n)));
    for (size_t i = 0; i < n; ++i) out[i] += sd > 0 ? (s[i] - mean) / sd : 0.0;
  }
  for (double& v : out) v /= static_cast<double>(scores.size());
  return out;
}

std::vector<SamplePair> filter_agreement(const std::vector<SamplePair>& pairs, const std::vector<std::vector<double>>& scores,
                                         size_t offset) {
  std::vector<SamplePair> out;
  for (const auto& p : pairs) {
    size_t agree = 0;
    for (const auto& s : scores) agree += s[offset + p.chosen] > s[offset + p.rejected];
    if (2 * agree > scores.size()) out.push_back(p);
  }
  return out;
}

}  // namespace rmkit::select
