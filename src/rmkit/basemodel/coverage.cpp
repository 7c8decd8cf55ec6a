#include "rmkit/basemodel/coverage.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace rmkit::basemodel {

std::vector<size_t> rank_order(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] > v[b]; });
  return idx;
}

std::vector<double> coverage_curve(const std::vector<double>& score, const std::vector<double>& target) {
  const size_t n = std::min(score.size(), target.size());
  const auto s = rank_order(std::vector<double>(score.begin(), score.begin() + n));
  const auto t = rank_order(std::vector<double>(target.begin(), target.begin() + n));
  std::vector<char> in_s(n, 0), in_t(n, 0);
  std::vector<double> curve(n);
  size_t common = 0;
  for (size_t k = 0; k < n; ++k) {
    // adding the k-th item of each list: count new members of the intersection
    in_s[s[k]] = 1;
    if (in_t[s[k]]) ++common;
    in_t[t[k]] = 1;
    if (in_s[t[k]]) ++common;
    curve[k] = static_cast<double>(common) / static_cast<double>(k + 1);
  }
  return curve;
}

double mean_coverage(const std::vector<double>& curve, size_t k_min, size_t k_max) {
  k_min = std::max<size_t>(1, k_min);
  k_max = std::min(k_max, curve.size());
  if (k_min > k_max) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (size_t k = k_min; k <= k_max; ++k) s += curve[k - 1];
  return s / static_cast<double>(k_max - k_min + 1);
}

bool passes_paper_filter(const std::vector<double>& curve) {
  return curve.size() >= 10 && curve[4] >= 0.4 - 1e-12 && curve[9] >= 0.7 - 1e-12;
}

}  // namespace rmkit::basemodel
