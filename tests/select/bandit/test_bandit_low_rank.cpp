// The low-rank (Woodbury) form of the ridge arms against the dense Sherman–Morrison form: the same
// A^{-1} c to 1e-9 over many updates, a saved low-rank state reloads to bit-identical solves, and
// the reuse of the select's products by the update and the threaded select change no bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/linear.h"

namespace rmkit::select {
namespace {

TEST(BanditLowRank, WoodburyEqualsShermanMorrison) {
  const size_t K = 3, d = 48;
  RidgeArms dense(K, d, 1.0, 0), low(K, d, 1.0, 1, /*dense_rows=*/1000);  // stays low rank
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

TEST(BanditLowRank, DenseRowsIsTheCostCrossover) {
  // smallest t with t (t + d) >= d^2: low-rank solve t d + t^2 against the dense d^2
  for (size_t d : {1, 2, 48, 512, 4096}) {
    const size_t t = RidgeArms::default_dense_rows(d);
    EXPECT_GE(t * (t + d), d * d) << d;
    if (t > 1) EXPECT_LT((t - 1) * (t - 1 + d), d * d) << d;
  }
  EXPECT_EQ(RidgeArms::default_dense_rows(48), 30u);      // 30 * 78 = 2340 >= 2304 > 29 * 77
  EXPECT_EQ(RidgeArms::default_dense_rows(4096), 2532u);  // 0.618 d
}

// A low-rank arm that reaches dense_rows rows turns dense (A^{-1} formed from X and M) and goes on
// by Sherman–Morrison: solves and UCB terms stay within 1e-9 of the all-dense arms before, at and
// after the switch, arms switch one by one, and a state saved with some arms dense and some low
// rank reloads to bit-identical terms.
TEST(BanditLowRank, ArmsTurnDenseAtTheThresholdAndStayExact) {
  const size_t K = 3, d = 40, rows = 12;
  RidgeArms dense(K, d, 0.7, 0), mixed(K, d, 0.7, 1, rows);
  ASSERT_EQ(mixed.dense_rows(), rows);
  std::mt19937_64 rng(21);
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<double> c(d), u1(d), u2(d);
  std::vector<size_t> pulls(K, 0);
  double worst = 0;
  bool saw_mixed = false;
  for (int round = 0; round < 120; ++round) {
    for (auto& v : c) v = n(rng) / std::sqrt(static_cast<double>(d));
    // arm 0 twice as often as arm 1, arm 2 rarely: they cross the threshold at different rounds
    const size_t k = round % 4 < 2 ? 0 : round % 8 == 3 ? 2 : 1;
    std::vector<double> th(K), q(K);
    mixed.ucb_terms_all(c.data(), th.data(), q.data());
    for (size_t a = 0; a < K; ++a) {
      dense.solve(a, c.data(), u1.data());
      mixed.solve(a, c.data(), u2.data());
      for (size_t i = 0; i < d; ++i) worst = std::max(worst, std::abs(u1[i] - u2[i]) / (1.0 + std::abs(u1[i])));
      double t1, q1;
      dense.ucb_terms(a, c.data(), &t1, &q1);
      worst = std::max({worst, std::abs(t1 - th[a]) / (1.0 + std::abs(t1)), std::abs(q1 - q[a]) / (1.0 + std::abs(q1))});
      EXPECT_EQ(mixed.arm_dense(a), pulls[a] >= rows) << "round " << round << " arm " << a;
    }
    saw_mixed = saw_mixed || (mixed.arm_dense(0) && !mixed.arm_dense(2));
    const double r = n(rng);
    dense.solve(k, c.data(), u1.data());
    dense.add(k, c.data(), u1.data(), r);
    mixed.add(k, c.data(), nullptr, r);  // reuses the ucb_terms_all products
    ++pulls[k];
    if (round == 40) {  // arm 0 dense, arms 1 and 2 low rank: save, reload, compare bits
      ASSERT_TRUE(mixed.arm_dense(0));
      ASSERT_FALSE(mixed.arm_dense(2));
      const nlohmann::json st = mixed.save();
      ASSERT_TRUE(st.contains("a_inv") && st.contains("x"));
      RidgeArms back(K, d, 0.7, 1, rows);
      back.load(st);
      for (size_t a = 0; a < K; ++a) {
        EXPECT_EQ(back.arm_dense(a), mixed.arm_dense(a));
        double t1, q1, t2, q2;
        mixed.ucb_terms(a, c.data(), &t1, &q1);
        back.ucb_terms(a, c.data(), &t2, &q2);
        EXPECT_EQ(t1, t2);
        EXPECT_EQ(q1, q2);
      }
      EXPECT_EQ(back.save(), st);
    }
  }
  EXPECT_TRUE(saw_mixed);
  EXPECT_TRUE(mixed.arm_dense(0) && mixed.arm_dense(1) && mixed.arm_dense(2));
  EXPECT_LT(worst, 1e-9);
  // a dense arm keeps an exactly symmetric A^{-1}, as Sherman–Morrison does
  const double* a0 = mixed.a_inv(0);
  ASSERT_NE(a0, nullptr);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j < i; ++j) ASSERT_EQ(a0[i * d + j], a0[j * d + i]);
}

// The same through LinUcb at d = 512 (low rank by default; arms turn dense at 317 rows): choices
// and scores equal a dense reference built from the same updates, and a restore mid-run after
// the switch gives bit-identical scores.
TEST(BanditLowRank, LinUcbPastTheSwitchEqualsDenseAndReloadsExactly) {
  BanditParams p;
  p.arms = 2;
  p.dim = RidgeArms::kLowRankMinDim;
  p.alpha = 0.2;
  auto a = make_bandit("linucb", p);
  RidgeArms ref(p.arms, p.dim, p.lambda, 0);
  std::mt19937_64 rng(8);
  std::normal_distribution<double> n(0.0, 1.0);
  const size_t switch_rows = RidgeArms::default_dense_rows(p.dim);
  ASSERT_EQ(switch_rows, 317u);
  std::vector<double> u(p.dim);
  double worst = 0;
  std::unique_ptr<Bandit> b;
  for (size_t t = 0; t < 2 * switch_rows + 40; ++t) {
    Context c(p.dim);
    for (auto& v : c) v = n(rng) / std::sqrt(static_cast<double>(p.dim));
    const size_t x = a->select(c);
    for (size_t k = 0; k < p.arms; ++k) {
      double th, q;
      ref.ucb_terms(k, c.data(), &th, &q);
      const double want = th + p.alpha * std::sqrt(std::max(0.0, q));
      worst = std::max(worst, std::abs(want - a->scores()[k]) / (1.0 + std::abs(want)));
    }
    if (b) {
      ASSERT_EQ(b->select(c), x);
      ASSERT_EQ(b->scores(), a->scores());
    }
    const double r = n(rng);
    a->update(x, c, r);
    if (b) b->update(x, c, r);
    ref.solve(x, c.data(), u.data());
    ref.add(x, c.data(), u.data(), r);
    const auto& model = dynamic_cast<const LinUcb&>(*a).model();
    if (!b && model.arm_dense(0) != model.arm_dense(1)) b = restore_bandit(a->save());  // one dense, one not
  }
  ASSERT_TRUE(b);
  const auto& model = dynamic_cast<const LinUcb&>(*a).model();
  EXPECT_TRUE(model.arm_dense(0) || model.arm_dense(1));
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

// A select + update reads X once: the update reuses the select's X c and X b is recomputed in the
// next select's pass. Bandit b is made to recompute everything (a select on another context before
// each update, so nothing cached matches): the scores stay bit-identical to a's, including after
// the history is long enough (K t d >= kParallelValues) for the arms to run on several threads.
TEST(BanditLowRank, ReusedProductsAndThreadedSelectsGiveTheSameBits) {
  BanditParams p;
  p.arms = 4;
  p.dim = 4096;
  p.alpha = 0.3;
  auto a = make_bandit("linucb", p);
  auto b = make_bandit("linucb", p);
  std::mt19937_64 rng(9);
  std::normal_distribution<double> n(0.0, 1.0);
  auto ctx = [&] {
    Context c(p.dim);
    for (auto& v : c) v = n(rng);
    return c;
  };
  const size_t rounds = RidgeArms::kParallelValues / p.dim + 20;
  size_t compared = 0;
  for (size_t t = 0; t < rounds; ++t) {
    const Context c = ctx();
    const double r = n(rng);
    const size_t x = a->select(c), y = b->select(c);
    ASSERT_EQ(x, y) << "round " << t;
    if (t % 25 == 0 || t + 5 >= rounds) {  // a full comparison costs a copy of the scores only
      ASSERT_EQ(a->scores(), b->scores()) << "round " << t;
      ++compared;
    }
    a->update(x, c, r);
    b->select(ctx());  // another context: b's update recomputes X c
    b->update(y, c, r);
  }
  EXPECT_GT(compared, 10u);
  // the threaded all-arms pass equals arm-by-arm calls, bit for bit
  const auto& ridge = dynamic_cast<const LinUcb&>(*a).model();
  const Context c = ctx();
  std::vector<double> th(p.arms), q(p.arms);
  ridge.ucb_terms_all(c.data(), th.data(), q.data());
  for (size_t k = 0; k < p.arms; ++k) {
    double th1, q1;
    ridge.ucb_terms(k, c.data(), &th1, &q1);
    EXPECT_EQ(th1, th[k]);
    EXPECT_EQ(q1, q[k]);
  }
}

// Linear Thompson's low-rank path reuses the select's products too: a restored copy (nothing
// cached, everything recomputed) scores the next context bit-identically.
TEST(BanditLowRank, ThompsonReusedProductsEqualAFreshRestore) {
  BanditParams p;
  p.arms = 3;
  p.dim = 1024;
  p.v = 0.5;
  p.seed = 4;
  auto a = make_bandit("thompson", p);
  std::mt19937_64 rng(2);
  std::normal_distribution<double> n(0.0, 1.0);
  auto ctx = [&] {
    Context c(p.dim);
    for (auto& v : c) v = n(rng);
    return c;
  };
  for (int t = 0; t < 60; ++t) {
    const Context c = ctx();
    if (t % 10 == 9) {
      auto fresh = restore_bandit(a->save());
      const size_t y = fresh->select(c);
      const size_t x = a->select(c);
      ASSERT_EQ(x, y) << "round " << t;
      ASSERT_EQ(a->scores(), fresh->scores()) << "round " << t;
      a->update(x, c, n(rng));
      continue;
    }
    a->update(a->select(c), c, n(rng));
  }
}

}  // namespace
}  // namespace rmkit::select
