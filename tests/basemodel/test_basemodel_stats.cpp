// Statistics of rmkit basemodel on hand-computed small cases: Pearson, Spearman (average ranks),
// Kendall tau-b, t-distribution p-values (against closed forms for df = 1, 2, 3), the seeded
// bootstrap, top-k coverage with ties by row order, and PCA.
#include <gtest/gtest.h>

#include <cmath>

#include "rmkit/basemodel/coverage.h"
#include "rmkit/basemodel/linalg.h"
#include "rmkit/basemodel/stats.h"

namespace rmkit::basemodel {
namespace {

TEST(BasemodelStats, PearsonHandComputed) {
  // dx = -2..2, dy = -2,0,1,0,1: sxy = 6, sxx = 10, syy = 6 -> r = 6 / sqrt(60)
  EXPECT_NEAR(pearson({1, 2, 3, 4, 5}, {2, 4, 5, 4, 5}), 6 / std::sqrt(60.0), 1e-14);
  EXPECT_NEAR(pearson({1, 2, 3}, {3, 2, 1}), -1.0, 1e-15);
  EXPECT_TRUE(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));  // constant input
  EXPECT_TRUE(std::isnan(pearson({1}, {2})));
}

TEST(BasemodelStats, AverageRanksAndSpearmanWithTies) {
  const auto r = average_ranks({10, 20, 20, 5, 20});
  const std::vector<double> expect = {2, 4, 4, 1, 4};  // the three 20s share ranks 3, 4, 5
  for (size_t i = 0; i < r.size(); ++i) EXPECT_DOUBLE_EQ(r[i], expect[i]);
  // ranks x = 1, 2.5, 2.5, 4 and y = 1, 3, 2, 4: sxy = 4.5, sxx = 4.5, syy = 5
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 3, 2, 4}), 4.5 / std::sqrt(4.5 * 5), 1e-14);
  // a monotone but non-linear relation has rho = 1 and r < 1
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {1, 8, 27, 64}), 1.0, 1e-15);
  EXPECT_LT(pearson({1, 2, 3, 4}, {1, 8, 27, 64}), 0.99);
}

TEST(BasemodelStats, KendallTauB) {
  // 6 pairs: 5 concordant, 0 discordant, 1 tied in x -> 5 / sqrt((6 - 1) * 6)
  EXPECT_NEAR(kendall_tau_b({1, 2, 2, 3}, {1, 3, 2, 4}), 5 / std::sqrt(30.0), 1e-14);
  // (1,2) discordant, (1,3) discordant, (2,3) concordant -> -1/3
  EXPECT_NEAR(kendall_tau_b({1, 2, 3}, {3, 1, 2}), -1.0 / 3, 1e-15);
  EXPECT_TRUE(std::isnan(kendall_tau_b({1, 1}, {1, 2})));
}

TEST(BasemodelStats, StudentTPValuesMatchClosedForms) {
  const double pi = std::acos(-1.0);
  for (double t : {0.0, 0.3, 1.0, 2.5, 7.0, 40.0}) {
    const double p1 = 1 - 2 / pi * std::atan(t);                  // df = 1 (Cauchy)
    const double p2 = 1 - t / std::sqrt(2 + t * t);               // df = 2
    const double u = t / std::sqrt(3.0);                          // df = 3
    const double p3 = 1 - 2 / pi * (std::atan(u) + u / (1 + u * u));
    EXPECT_NEAR(student_t_two_sided_p(t, 1), p1, 1e-12) << t;
    EXPECT_NEAR(student_t_two_sided_p(-t, 2), p2, 1e-12) << t;
    EXPECT_NEAR(student_t_two_sided_p(t, 3), p3, 1e-12) << t;
  }
  // the correlation test: r = 6/sqrt(60) over n = 5 gives t = 3/sqrt(2) with 3 degrees of freedom
  const double u = 3 / std::sqrt(2.0) / std::sqrt(3.0);
  EXPECT_NEAR(correlation_p_value(6 / std::sqrt(60.0), 5), 1 - 2 / pi * (std::atan(u) + u / (1 + u * u)), 1e-12);
  EXPECT_EQ(correlation_p_value(1.0, 5), 0.0);
  EXPECT_TRUE(std::isnan(correlation_p_value(0.5, 2)));
  // I_x(a, b) symmetry and a value with a closed form: I_x(a, 1) = x^a
  EXPECT_NEAR(incomplete_beta(2.5, 1, 0.3), std::pow(0.3, 2.5), 1e-13);
  EXPECT_NEAR(incomplete_beta(3, 7, 0.2) + incomplete_beta(7, 3, 0.8), 1.0, 1e-13);
}

TEST(BasemodelStats, PercentileAndBootstrap) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 25), 1.75);  // numpy: 1 + 0.75 * (2 - 1)
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 100), 4);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8}, y = {2, 1, 4, 3, 6, 5, 8, 9};
  auto a = bootstrap_interval(x, y, pearson, 500, 7);
  auto b = bootstrap_interval(x, y, pearson, 500, 7);
  auto c = bootstrap_interval(x, y, pearson, 500, 8);
  EXPECT_EQ(a.low, b.low);  // seeded: identical
  EXPECT_EQ(a.high, b.high);
  EXPECT_NE(a.low, c.low);
  const double r = pearson(x, y);
  EXPECT_LT(a.low, r);
  EXPECT_GT(a.high, r);
  EXPECT_LE(a.high, 1.0);
  // an exact linear relation: every (non-degenerate) resample has r = 1
  auto d = bootstrap_interval(x, {3, 5, 7, 9, 11, 13, 15, 17}, pearson, 200, 1);
  EXPECT_NEAR(d.low, 1.0, 1e-12);
  EXPECT_NEAR(d.high, 1.0, 1e-12);
}

TEST(BasemodelCoverage, HandComputedCurves) {
  // reversed ranking: C@1 = 0, C@2 = 0, C@3 = 2/3, C@4 = 1
  auto c = coverage_curve({4, 3, 2, 1}, {1, 2, 3, 4});
  ASSERT_EQ(c.size(), 4u);
  EXPECT_DOUBLE_EQ(c[0], 0);
  EXPECT_DOUBLE_EQ(c[1], 0);
  EXPECT_DOUBLE_EQ(c[2], 2.0 / 3);
  EXPECT_DOUBLE_EQ(c[3], 1);
  // ties broken by row order: score order 0,1,2,3; target order 1,2,0,3
  c = coverage_curve({1, 1, 0, 0}, {0, 5, 5, 0});
  EXPECT_DOUBLE_EQ(c[0], 0);
  EXPECT_DOUBLE_EQ(c[1], 0.5);
  EXPECT_DOUBLE_EQ(c[2], 1);
  EXPECT_DOUBLE_EQ(c[3], 1);
  const auto order = rank_order({3, 5, 5, 1});
  EXPECT_EQ(order, (std::vector<size_t>{1, 2, 0, 3}));
  EXPECT_DOUBLE_EQ(mean_coverage({0, 0.5, 1, 1}, 2, 3), 0.75);
  EXPECT_DOUBLE_EQ(mean_coverage({0, 0.5, 1, 1}, 3, 10), 1.0);  // clipped to k <= 4
  std::vector<double> curve(12, 0.7);
  curve[4] = 0.4;
  EXPECT_TRUE(passes_paper_filter(curve));
  curve[9] = 0.6;
  EXPECT_FALSE(passes_paper_filter(curve));
}

TEST(BasemodelPca, HandComputedEigenvalues) {
  // columns 0 and 1 are identical after z-scoring; column 2 correlates c = 1/sqrt(5) with them.
  // Correlation eigenvalues: (3 +- sqrt(1 + 8c^2)) / 2 and 0.
  Matrix X(4, 3);
  const double v[4][3] = {{1, 2, 0}, {2, 4, 1}, {3, 6, 0}, {4, 8, 1}};
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 3; ++j) X(i, j) = v[i][j];
  auto r = pca_standardized(X);
  const double s = std::sqrt(1 + 8.0 / 5);
  ASSERT_EQ(r.explained_variance_ratio.size(), 3u);
  EXPECT_NEAR(r.explained_variance_ratio[0], (3 + s) / 6, 1e-12);
  EXPECT_NEAR(r.explained_variance_ratio[1], (3 - s) / 6, 1e-12);
  EXPECT_NEAR(r.explained_variance_ratio[2], 0, 1e-12);
  // ddof = 1 covariance of z-scored columns = n/(n-1) x correlation
  EXPECT_NEAR(r.explained_variance[0], 4.0 / 3 * (3 + s) / 2, 1e-12);
  // first component loads equally on the two identical columns
  EXPECT_NEAR(r.components(0, 0), r.components(0, 1), 1e-12);
  EXPECT_NEAR(r.components(2, 0), -r.components(2, 1), 1e-12);  // the null direction (1, -1, 0)
}

}  // namespace
}  // namespace rmkit::basemodel
