// LASeR's pair rules and the ensemble baselines against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "rmkit/core/error.h"
#include "rmkit/select/preference_pairs.h"

namespace rmkit::select {
namespace {

TEST(LaserPairs, TopVersusRestAndBestWorst) {
  const std::vector<double> s = {0.1, 0.9, 0.5, 0.9, -1.0, 0.3};
  const std::vector<std::string> t = {"a", "b", "c", "d", "e", "b"};
  // order by score (stable): 1 (0.9), 3 (0.9), 2, 5, 0, 4; best = 1
  auto p = build_pairs(s, t, "top-vs-rest", 3);
  // rank 2 (index 3) ties the best: skipped; ranks 3, 4 -> 2 and 5, but 5's text equals the best's
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].chosen, 1u);
  EXPECT_EQ(p[0].rejected, 2u);
  p = build_pairs(s, t, "top-vs-rest", 10);
  ASSERT_EQ(p.size(), 3u);  // 2, 0, 4
  EXPECT_EQ(p[2].rejected, 4u);
  p = build_pairs(s, t, "best-worst", 10);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].rejected, 4u);
  EXPECT_TRUE(build_pairs({1.0}, {"x"}, "best-worst", 1).empty());
  EXPECT_THROW(build_pairs(s, t, "worst", 1), ConfigError);
}

TEST(LaserPairs, EnsembleMeanIsTheAverageZScore) {
  // arm 0: 1, 2, 3 -> mean 2, population sd sqrt(2/3): z = -1.2247, 0, 1.2247
  // arm 1: 10, 10, 40 -> mean 20, sd sqrt(200): z = -0.7071, -0.7071, 1.4142
  auto m = ensemble_mean({{1, 2, 3}, {10, 10, 40}});
  ASSERT_EQ(m.size(), 3u);
  EXPECT_NEAR(m[0], (-1.224744871 - 0.707106781) / 2, 1e-8);
  EXPECT_NEAR(m[1], (0 - 0.707106781) / 2, 1e-8);
  EXPECT_NEAR(m[2], (1.224744871 + 1.414213562) / 2, 1e-8);
  // an arm without spread contributes 0
  auto c = ensemble_mean({{5, 5}, {0, 2}});
  EXPECT_NEAR(c[0], -0.5, 1e-12);
  EXPECT_NEAR(c[1], 0.5, 1e-12);
}

TEST(LaserPairs, AgreementKeepsMajorityOrderedPairs) {
  // three arms over samples 0..2 of a prompt placed at offset 1
  std::vector<std::vector<double>> s = {{9, 3, 1, 0}, {9, 2, 1, 5}, {9, 0, 1, 4}};
  std::vector<SamplePair> pairs = {{0, 1}, {0, 2}, {1, 2}};  // (sample0 > sample1) etc.
  auto kept = filter_agreement(pairs, s, 1);
  // (0,1): s0 > s1 in arms 0,1 (3>1, 2>1), not arm 2 (0<1): 2 of 3 -> kept
  // (0,2): 3>0 yes, 2>5 no, 0>4 no -> dropped; (1,2): 1>0 yes, 1>5 no, 1>4 no -> dropped
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].rejected, 1u);
}

}  // namespace
}  // namespace rmkit::select
