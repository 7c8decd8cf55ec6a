// The reward normaliser (percentiles against hand-computed values, minimum history, equal-quantile
// guard, save/load), the SplitMix64 generator and the context utilities.
#include <gtest/gtest.h>

#include <cmath>

#include "rmkit/core/error.h"
#include "rmkit/select/bandit/context.h"
#include "rmkit/select/bandit/normalizer.h"
#include "rmkit/select/bandit/rng.h"

namespace {

using namespace rmkit;
using namespace rmkit::select;

TEST(BanditNormalizer, PercentilesMatchHandComputedValues) {
  // sorted 1..5: q=20 -> index 0.8 -> 1 + 0.8 = 1.8; q=80 -> index 3.2 -> 4.2; q=50 -> 3
  EXPECT_DOUBLE_EQ(percentile_linear({5, 1, 4, 2, 3}, 20), 1.8);
  EXPECT_DOUBLE_EQ(percentile_linear({5, 1, 4, 2, 3}, 80), 4.2);
  EXPECT_DOUBLE_EQ(percentile_linear({5, 1, 4, 2, 3}, 50), 3.0);
  EXPECT_DOUBLE_EQ(percentile_linear({5, 1, 4, 2, 3}, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile_linear({5, 1, 4, 2, 3}, 100), 5.0);
  // {0, 10}: q=20 -> 2, q=80 -> 8
  EXPECT_DOUBLE_EQ(percentile_linear({10, 0}, 20), 2.0);
  EXPECT_DOUBLE_EQ(percentile_linear({10, 0}, 80), 8.0);
  EXPECT_DOUBLE_EQ(percentile_linear({7}, 80), 7.0);
  EXPECT_THROW(percentile_linear({}, 50), ConfigError);
}

TEST(BanditNormalizer, MapsThroughThePercentilesOfTheHistory) {
  NormalizerParams p;
  p.min_history = 5;
  RewardNormalizer n(p);
  for (double r : {1.0, 2.0, 3.0, 4.0}) EXPECT_EQ(n.normalize(r), 0.5);  // history 1..4 < 5
  // history {1,2,3,4,5}: low 1.8, high 4.2; 5 >= 4.2 -> 1
  EXPECT_EQ(n.normalize(5.0), 1.0);
  // history {1..5, 3}: sorted 1,2,3,3,4,5; q20 -> index 1 -> 2; q80 -> index 4 -> 4; (3-2)/2
  EXPECT_DOUBLE_EQ(n.normalize(3.0), 0.5);
  // history + {2.5}: sorted 1,2,2.5,3,3,4,5; q20 -> index 1.2 -> 2.1; q80 -> index 4.8 -> 3.8
  EXPECT_NEAR(n.normalize(2.5), (2.5 - 2.1) / (3.8 - 2.1), 1e-12);
  EXPECT_EQ(n.normalize(-10.0), 0.0);  // below the low percentile
  EXPECT_EQ(n.history().size(), 8u);
}

TEST(BanditNormalizer, DefaultMinimumHistoryCountsTheNewReward) {
  RewardNormalizer n;  // 20, 80, 20, 0.5
  for (int i = 0; i < 19; ++i) EXPECT_EQ(n.normalize(i), 0.5) << i;
  EXPECT_NE(n.normalize(100.0), 0.5);  // the 20th reward is mapped
}

TEST(BanditNormalizer, EqualQuantilesGiveTheFallback) {
  NormalizerParams p;
  p.min_history = 3;
  p.fallback = 0.25;
  RewardNormalizer n(p);
  n.normalize(1.0);
  n.normalize(1.0);
  EXPECT_EQ(n.normalize(1.0), 0.25);
  EXPECT_EQ(n.normalize(1.0), 0.25);
  // one outlier among eight: both percentiles still 1 -> fallback even for the outlier
  for (int i = 0; i < 4; ++i) n.normalize(1.0);
  EXPECT_EQ(n.normalize(9.0), 0.25);
}

TEST(BanditNormalizer, SaveLoadKeepsTheHistoryAndRejectsBadParams) {
  NormalizerParams p;
  p.low_percentile = 10;
  p.high_percentile = 90;
  p.min_history = 2;
  RewardNormalizer a(p);
  for (double r : {0.3, 1.7, -2.0, 0.9}) a.normalize(r);
  RewardNormalizer b;
  b.load(nlohmann::json::parse(a.save().dump()));
  EXPECT_EQ(b.history(), a.history());
  EXPECT_EQ(b.params().low_percentile, 10);
  EXPECT_EQ(a.normalize(0.5), b.normalize(0.5));
  EXPECT_THROW(b.load(nlohmann::json{{"history", {1}}}), FormatError);
  p.low_percentile = 95;
  EXPECT_THROW(RewardNormalizer{p}, ConfigError);
  EXPECT_THROW(RewardNormalizer().normalize(NAN), NumericError);
}

TEST(BanditRng, SplitMix64KnownValuesAndRanges) {
  SplitMix64 g(0);
  EXPECT_EQ(g.next(), 0xE220A8397B1DCDAFULL);  // the reference implementation's first output for seed 0
  EXPECT_EQ(g.next(), 0x6E789E6AA1B965F4ULL);
  SplitMix64 a(5), b(5);
  double sum = 0, sq = 0;
  for (int i = 0; i < 20000; ++i) {
    const double u = a.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    const double z = b.normal();
    sum += z;
    sq += z * z;
  }
  EXPECT_NEAR(sum / 20000, 0.0, 0.03);
  EXPECT_NEAR(sq / 20000, 1.0, 0.05);
  SplitMix64 c(9);
  c.next();
  SplitMix64 d(0);
  d.set_state(c.state());
  EXPECT_EQ(c.next(), d.next());
}

TEST(BanditContext, L2NormaliseProjectAndMean) {
  const Context x = l2_normalize({3, 4});
  EXPECT_DOUBLE_EQ(x[0], 0.6);
  EXPECT_DOUBLE_EQ(x[1], 0.8);
  EXPECT_EQ(l2_normalize({0, 0}), (Context{0, 0}));

  const Context m = batch_mean({{1, 2}, {3, 6}});
  EXPECT_EQ(m, (Context{2, 4}));
  EXPECT_THROW(batch_mean({}), ShapeError);
  EXPECT_THROW(batch_mean({{1, 2}, {3}}), ShapeError);

  // the matrix is the seed's normals in row-major order, scaled by 1/sqrt(out_dim)
  RandomProjection p(3, 5, 4);
  SplitMix64 g(3);
  for (double v : p.matrix()) ASSERT_EQ(v, g.normal() / 2.0);
  RandomProjection same(3, 5, 4), other(4, 5, 4);
  const Context c = {1, -2, 0.5, 3, 0};
  EXPECT_EQ(p.apply(c), same.apply(c));
  EXPECT_NE(p.apply(c), other.apply(c));
  EXPECT_EQ(p.apply(c).size(), 4u);
  EXPECT_THROW(p.apply({1, 2}), ShapeError);
  // norms are preserved on average (Johnson–Lindenstrauss scaling): E||Px||^2 = ||x||^2
  RandomProjection big(1, 64, 256);
  Context u(64, 0.0);
  u[0] = 1;
  double ss = 0;
  for (double v : big.apply(u)) ss += v * v;
  EXPECT_NEAR(ss, 1.0, 0.3);
}

}  // namespace
