// A synthetic linear contextual bandit with a known best arm per context: LinUCB's cumulative
// regret is below epsilon-greedy's (context-free, so it cannot follow the best arm) and grows
// sublinearly; Thompson sampling learns too.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

#include "bandit_test_util.h"
#include "rmkit/select/bandit/bandit.h"

namespace {

using namespace rmkit;
using namespace rmkit::bandit_test;

// Cumulative expected regret after each round (max_k mean_k - mean_chosen), rewards given raw.
std::vector<double> regret_curve(select::Bandit& b, const Stream& s) {
  std::vector<double> curve;
  double total = 0;
  for (size_t t = 0; t < s.contexts.size(); ++t) {
    const size_t arm = b.select(s.contexts[t]);
    b.update(arm, s.contexts[t], s.rewards[t][arm]);
    total += *std::max_element(s.means[t].begin(), s.means[t].end()) - s.means[t][arm];
    curve.push_back(total);
  }
  return curve;
}

TEST(BanditRegret, LinUcbBeatsEpsilonGreedyAndIsSublinear) {
  const Stream s = linear_stream(2000, 5, 6, 2024, 0.1);
  select::BanditParams p;
  p.arms = 5;
  p.dim = 6;
  p.alpha = 0.1;
  auto lin = select::make_bandit("linucb", p);
  auto eps = select::make_bandit("epsilon-greedy", p);
  p.v = 0.1;
  auto ts = select::make_bandit("thompson", p);
  const auto r_lin = regret_curve(*lin, s), r_eps = regret_curve(*eps, s), r_ts = regret_curve(*ts, s);
  const double lin1000 = r_lin[999], lin2000 = r_lin[1999];
  std::cout << "regret at 1000 / 2000 rounds: linucb " << lin1000 << " / " << lin2000 << ", thompson " << r_ts[999]
            << " / " << r_ts[1999] << ", epsilon-greedy " << r_eps[999] << " / " << r_eps[1999] << "\n";
  EXPECT_LT(lin2000, 0.5 * r_eps[1999]) << "linucb " << lin2000 << " vs epsilon-greedy " << r_eps[1999];
  EXPECT_LT(lin2000 / lin1000, 1.5) << "regret(1000) " << lin1000 << ", regret(2000) " << lin2000;
  // epsilon-greedy's regret grows about linearly
  EXPECT_GT(r_eps[1999] / r_eps[999], 1.7);
  EXPECT_LT(r_ts[1999], 0.5 * r_eps[1999]) << "thompson " << r_ts[1999];
  EXPECT_LT(r_ts[1999] / r_ts[999], 1.5);
}

}  // namespace
