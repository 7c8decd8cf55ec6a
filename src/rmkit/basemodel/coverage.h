// Top-k coverage of a ranking (arXiv 2505.10775, section 4): C(beta, k) = |top-k by score beta ∩
// top-k by the target| / k. Higher is better for both score and target; in every top-k ties are
// broken by row order (the earlier row ranks higher). Torch-free.
#pragma once
#include <cstddef>
#include <vector>

namespace rmkit::basemodel {

// Row indices ordered best first: by value descending, ties by row index ascending.
std::vector<size_t> rank_order(const std::vector<double>& v);

// [C@1, ..., C@n] for n = score.size() (== target.size()).
std::vector<double> coverage_curve(const std::vector<double>& score, const std::vector<double>& target);

// Mean of C@k over k = k_min..k_max, clipped to 1..curve.size(); NaN when the range is empty.
double mean_coverage(const std::vector<double>& curve, size_t k_min, size_t k_max);

// The paper's filter: C@5 >= 0.4 and C@10 >= 0.7 (false when the curve is shorter than 10).
bool passes_paper_filter(const std::vector<double>& curve);

}  // namespace rmkit::basemodel
