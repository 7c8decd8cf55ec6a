// Correlation statistics for base-model selection (torch-free, plain std::vector<double>).
//   Pearson r; Spearman rho = Pearson r of average ranks (ties get the mean of their ranks);
//   Kendall tau-b; two-sided p-values from Student's t with n-2 degrees of freedom
//   (t = r sqrt((n-2)/(1-r^2)), as scipy.stats.pearsonr/spearmanr); percentile bootstrap intervals
//   from a seeded generator, so every number is reproducible.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace rmkit::basemodel {

// SplitMix64: a small deterministic generator whose sequence is the same on every platform
// (std::uniform_int_distribution is not), used for bootstrap resamples and fold shuffles.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform integer in [0, n) without modulo bias.
  uint64_t below(uint64_t n);
  double uniform();  // [0, 1)
  template <class T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};

// 1-based ranks, ties sharing the average of the ranks they span (scipy rankdata 'average').
std::vector<double> average_ranks(const std::vector<double>& x);

// NaN when undefined (fewer than 2 points, or a constant input).
double pearson(const std::vector<double>& x, const std::vector<double>& y);
double spearman(const std::vector<double>& x, const std::vector<double>& y);
// Kendall tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), n0 = n(n-1)/2, n1/n2 = tied pairs in x/y.
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y);

// Regularised incomplete beta function I_x(a, b) (continued fraction, modified Lentz).
double incomplete_beta(double a, double b, double x);
// Two-sided p-value P(|T| >= |t|) for Student's t with df degrees of freedom.
double student_t_two_sided_p(double t, double df);
// Two-sided p-value of a correlation r over n points (t test, df = n - 2); NaN for n < 3 or NaN r.
double correlation_p_value(double r, size_t n);

// numpy.percentile(v, q) with linear interpolation, q in [0, 100]. NaN when v is empty.
double percentile(std::vector<double> v, double q);

struct Interval {
  double low, high;
};
// Percentile bootstrap interval of stat(x, y): `resamples` resamples of the rows with replacement;
// resamples where the statistic is undefined (NaN, e.g. a constant resample) are skipped.
Interval bootstrap_interval(const std::vector<double>& x, const std::vector<double>& y,
                            const std::function<double(const std::vector<double>&, const std::vector<double>&)>& stat,
                            int resamples, uint64_t seed, double level = 0.95);

double mean(const std::vector<double>& v);
// Population standard deviation (ddof = 0).
double pstdev(const std::vector<double>& v);

}  // namespace rmkit::basemodel
