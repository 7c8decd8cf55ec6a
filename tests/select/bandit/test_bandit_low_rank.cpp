// The low-rank (Woodbury) form of the ridge arms against the dense Sherman–Morrison form: the same
// A^{-1} c to 1e-9 over many updates, and a saved low-rank state reloads to bit-identical solves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/linear.h"

namespace rmkit::select {
namespace {

TEST(BanditLowRank, WoodburyEqualsShermanMorrison) {
  const size_t K = 3, d = 48;
  RidgeArms dense(K, d, 1.0, 0), low(K, d, 1.0, 1);
  ASSERT_FALSE(dense.low_rank());
  ASSERT_TRUE(low.low_rank());
  std::mt19937_64 rng(11);
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<double> c(d), u1(d), u2(d);
  double worst = 0;
  for (int round = 0; round < 90; ++round) {
    for (auto& v : c) v = n(rng) / std::sqrt(static_cast<double>(d));
    const size_t k = static_cast<size_t>(round) % K;
    for (size_t a = 0; a < K; ++a) {
      dense.solve(a, c.data(), u1.data());
      low.solve(a, c.data(), u2.data());
      for (size_t i = 0; i < d; ++i) worst = std::max(worst, std::abs(u1[i] - u2[i]) / (1.0 + std::abs(u1[i])));
    }
    for (size_t a = 0; a < K; ++a) {  // the UCB terms, b included
      double t1, q1, t2, q2;
      dense.ucb_terms(a, c.data(), &t1, &q1);
      low.ucb_terms(a, c.data(), &t2, &q2);
      worst = std::max({worst, std::abs(t1 - t2) / (1.0 + std::abs(t1)), std::abs(q1 - q2) / (1.0 + std::abs(q1))});
    }
    const double r = n(rng);
    dense.solve(k, c.data(), u1.data());
    dense.add(k, c.data(), u1.data(), r);
    low.add(k, c.data(), nullptr, r);
  }
  EXPECT_LT(worst, 1e-9);
}

TEST(BanditLowRank, LinUcbAtLargeDimUsesItAndReloadsExactly) {
  BanditParams p;
  p.arms = 4;
  p.dim = RidgeArms::kLowRankMinDim;
  p.alpha = 0.3;
  auto a = make_bandit("linucb", p);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n(0.0, 1.0);
  auto ctx = [&] {
    Context c(p.dim);
    for (auto& v : c) v = n(rng);
    return c;
  };
  for (int t = 0; t < 30; ++t) {
    const Context c = ctx();
    a->update(a->select(c), c, n(rng));
  }
  const nlohmann::json st = a->save();
  ASSERT_TRUE(st["model"].contains("x"));
  auto b = restore_bandit(st);
  for (int t = 0; t < 10; ++t) {
    const Context c = ctx();
    const size_t x = a->select(c), y = b->select(c);
    EXPECT_EQ(x, y);
    EXPECT_EQ(a->scores(), b->scores());  // bit-identical
    const double r = n(rng);
    a->update(x, c, r);
    b->update(y, c, r);
  }
}

}  // namespace
}  // namespace rmkit::select
