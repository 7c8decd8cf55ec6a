// LinUCB, linear Thompson sampling and Exp3 against an independent NumPy reference
// (bandit_reference.py: np.linalg.inv of A every round, its own SplitMix64, np.percentile): the same
// arms every round and the same scores to 1e-9.
#include <gtest/gtest.h>

#include <cmath>

#include "bandit_test_util.h"
#include "rmkit/select/bandit/bandit.h"

namespace {

using namespace rmkit;
using namespace rmkit::bandit_test;

const std::string kScript = std::string(RMKIT_SOURCE_DIR) + "/tests/select/bandit/bandit_reference.py";

// A python3 with numpy: Debian's python3-numpy lives in /usr/bin/python3's dist-packages (a pyenv
// python3 on PATH may lack it). "" when there is none.
std::string numpy_python() {
  static const std::string found = [] {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
      int st = 0;
      run_capture(std::string("timeout 60 ") + py + " -c 'import numpy' >/dev/null 2>&1", &st);
      if (st == 0) return std::string(py);
    }
    return std::string();
  }();
  return found;
}

// Replays `files` through `algo` in the library and through the Python reference with the same
// options (`py_args`, `p`), and compares every round.
void compare(const std::string& algo, const select::BanditParams& params, const StreamFiles& files,
             bool raw_rewards, const std::string& py_args, const select::NormalizerParams& np = {}) {
  const std::string python = numpy_python();
  if (python.empty()) GTEST_SKIP() << "python3 with numpy not found (scripts/setup.sh installs them): reference test skipped";
  auto bandit = select::make_bandit(algo, params);
  select::RewardNormalizer norm(np);
  select::ReplayConfig cfg;
  cfg.contexts_path = files.contexts;
  cfg.rewards_path = files.rewards;
  cfg.raw_rewards = raw_rewards;
  const auto ours = replay_lib(*bandit, norm, cfg);

  int st = 0;
  const std::string cmd = "timeout 300 " + python + " " + kScript + " --algo " + algo + " --contexts " + files.contexts +
                          " --rewards " + files.rewards + (raw_rewards ? " --raw-rewards " : " ") + py_args;
  const std::string out = run_capture(cmd, &st);
  ASSERT_EQ(st, 0) << cmd;
  std::vector<nlohmann::json> ref;
  size_t at = 0, nl;
  while ((nl = out.find('\n', at)) != std::string::npos) {
    ref.push_back(nlohmann::json::parse(out.substr(at, nl - at)));
    at = nl + 1;
  }
  ASSERT_EQ(ref.size(), ours.size());
  size_t distinct_arms = 0;
  std::vector<bool> seen(params.arms, false);
  for (size_t t = 0; t < ours.size(); ++t) {
    const auto& r = ref[t];
    ASSERT_EQ(r["round"].get<uint64_t>(), ours[t].round);
    ASSERT_EQ(r["arm"].get<size_t>(), ours[t].arm) << algo << " round " << t + 1;
    ASSERT_EQ(r["scores"].size(), ours[t].scores.size());
    for (size_t k = 0; k < ours[t].scores.size(); ++k)
      ASSERT_NEAR(r["scores"][k].get<double>(), ours[t].scores[k], 1e-9) << algo << " round " << t + 1 << " arm " << k;
    ASSERT_NEAR(r["normalized_reward"].get<double>(), ours[t].normalized_reward, 1e-9) << "round " << t + 1;
    if (!seen[ours[t].arm]) ++distinct_arms, seen[ours[t].arm] = true;
  }
  EXPECT_GE(distinct_arms, 2u) << "a stream where one arm wins everything compares too little";
}

select::BanditParams params_for(size_t arms, size_t dim) {
  select::BanditParams p;
  p.arms = arms;
  p.dim = dim;
  return p;
}

TEST(BanditReference, LinUcbMatchesNumpy) {
  const Stream s = linear_stream(300, 4, 6, 11, 0.3);
  const auto files = write_stream(s, temp_dir("ref_linucb"));
  auto p = params_for(4, 6);
  p.alpha = 0.5;
  compare("linucb", p, files, false, "--alpha 0.5");
}

TEST(BanditReference, LinUcbRawRewardsAndGuardMatchNumpy) {
  const Stream s = linear_stream(200, 5, 4, 12, 0.1);
  const auto files = write_stream(s, temp_dir("ref_linucb_guard"));
  auto p = params_for(5, 4);
  p.lambda = 2.0;
  p.min_pulls_every = 7;
  compare("linucb", p, files, true, "--lambda 2 --min-pulls-every 7");
}

TEST(BanditReference, ThompsonMatchesNumpy) {
  const Stream s = linear_stream(300, 4, 6, 13, 0.3);
  const auto files = write_stream(s, temp_dir("ref_thompson"));
  auto p = params_for(4, 6);
  p.v = 0.3;
  p.seed = 42;
  compare("thompson", p, files, false, "--v 0.3 --seed 42");
}

TEST(BanditReference, Exp3MatchesNumpy) {
  const Stream s = linear_stream(400, 3, 3, 14, 0.3);
  const auto files = write_stream(s, temp_dir("ref_exp3"));
  auto p = params_for(3, 0);
  p.gamma = 0.2;
  p.seed = 7;
  select::NormalizerParams np;
  np.low_percentile = 10;
  np.high_percentile = 90;
  np.min_history = 5;
  compare("exp3", p, files, false, "--gamma 0.2 --seed 7 --norm-low 10 --norm-high 90 --norm-min-history 5", np);
}

}  // namespace
