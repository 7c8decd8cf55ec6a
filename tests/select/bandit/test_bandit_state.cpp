// Bandit state: a save/load round trip mid-run gives the same subsequent choices and scores for
// every algorithm (RNG state included); the collapse guard; LinUCB's score components; bad inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "bandit_test_util.h"
#include "rmkit/core/error.h"
#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/linear.h"

namespace {

using namespace rmkit;
using namespace rmkit::bandit_test;

double squash(double r) { return 1.0 / (1.0 + std::exp(-3.0 * r)); }  // rewards in [0, 1] for exp3

struct Trace {
  std::vector<size_t> arms;
  std::vector<std::vector<double>> scores;
};

Trace run(select::Bandit& b, const Stream& s, size_t from, size_t to) {
  Trace tr;
  for (size_t t = from; t < to; ++t) {
    const size_t arm = b.select(s.contexts[t]);
    tr.arms.push_back(arm);
    tr.scores.push_back(b.scores());
    b.update(arm, s.contexts[t], squash(s.rewards[t][arm]));
  }
  return tr;
}

TEST(BanditState, SaveLoadMidRunGivesTheSameChoicesForEveryAlgorithm) {
  const Stream s = linear_stream(240, 4, 5, 77, 0.5);
  for (const auto& name : select::bandit_names()) {
    for (uint64_t guard : {0, 6}) {
      select::BanditParams p;
      p.arms = 4;
      p.dim = 5;
      p.seed = 123;
      p.min_pulls_every = guard;
      p.alpha = 0.3;
      auto a = select::make_bandit(name, p);
      run(*a, s, 0, 120);
      const std::string saved = a->save().dump();
      auto b = select::restore_bandit(nlohmann::json::parse(saved));
      EXPECT_EQ(b->name(), name);
      EXPECT_EQ(b->counts(), a->counts());
      EXPECT_EQ(b->rounds(), 120u);
      // loading into a freshly made bandit works the same way
      auto c = select::make_bandit(name, select::BanditParams{4, 5});
      c->load(nlohmann::json::parse(saved));
      const Trace ta = run(*a, s, 120, 240), tb = run(*b, s, 120, 240), tc = run(*c, s, 120, 240);
      EXPECT_EQ(ta.arms, tb.arms) << name << " guard " << guard;
      EXPECT_EQ(ta.scores, tb.scores) << name << " guard " << guard;
      EXPECT_EQ(ta.arms, tc.arms) << name << " guard " << guard;
      EXPECT_EQ(b->save().dump(), a->save().dump()) << name;
    }
  }
}

TEST(BanditState, LoadRejectsAnotherAlgorithmOrShape) {
  select::BanditParams p{3, 2};
  auto lin = select::make_bandit("linucb", p);
  auto ts = select::make_bandit("thompson", p);
  EXPECT_THROW(ts->load(lin->save()), FormatError);
  auto other = select::make_bandit("linucb", select::BanditParams{4, 2});
  EXPECT_THROW(other->load(lin->save()), FormatError);
  nlohmann::json broken = lin->save();
  broken["model"]["b"][0] = {1.0};
  EXPECT_THROW(lin->load(broken), FormatError);
  EXPECT_THROW(select::restore_bandit(nlohmann::json{{"algo", "nope"}}), FormatError);
  EXPECT_THROW(select::make_bandit("nope", p), ConfigError);
}

TEST(BanditGuard, ForcesTheLeastRecentlyPulledArm) {
  select::BanditParams p;
  p.arms = 3;
  p.epsilon = 0;  // greedy: arm 0 (the first to get reward) forever without the guard
  p.min_pulls_every = 4;
  auto b = select::make_bandit("epsilon-greedy", p);
  std::vector<size_t> arms;
  std::vector<bool> forced;
  for (int t = 0; t < 11; ++t) {
    const size_t arm = b->select({});
    arms.push_back(arm);
    forced.push_back(b->last_forced());
    b->update(arm, {}, arm == 0 ? 1.0 : 0.0);
  }
  EXPECT_EQ(arms, (std::vector<size_t>{0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 2}));
  EXPECT_EQ(forced, (std::vector<bool>{false, false, false, false, true, true, false, false, false, true, true}));
  EXPECT_EQ(b->counts(), (std::vector<uint64_t>{7, 2, 2}));
}

TEST(BanditLinUcb, ScoresAreExploitationPlusBonus) {
  select::BanditParams p{2, 2};
  p.alpha = 0.5;
  p.lambda = 4.0;
  select::LinUcb b(p);
  const select::Context c = {3, 4};
  EXPECT_EQ(b.select(c), 0u);  // all equal: lowest index
  EXPECT_DOUBLE_EQ(b.exploration()[0], 0.5 * 5.0 / 2.0);  // alpha sqrt(c^T c / lambda)
  EXPECT_EQ(b.exploitation()[0], 0.0);
  b.update(0, c, 1.0);
  b.select(c);
  for (size_t k = 0; k < 2; ++k) EXPECT_DOUBLE_EQ(b.scores()[k], b.exploitation()[k] + b.exploration()[k]);
  // arm 0: A = 4I + cc^T, theta = A^{-1} c, c.theta = |c|^2 / (4 + |c|^2) = 25/29
  EXPECT_NEAR(b.exploitation()[0], 25.0 / 29.0, 1e-12);
  EXPECT_NEAR(b.exploration()[0], 0.5 * std::sqrt(25.0 / 29.0), 1e-12);  // c^T A^{-1} c = 25/29 too
  EXPECT_THROW(b.select({1, 2, 3}), ShapeError);
  EXPECT_THROW(b.update(2, c, 1.0), ShapeError);
  EXPECT_THROW(b.update(0, c, NAN), NumericError);
  // a non-finite context is refused before it reaches the model, which stays usable
  const auto before = b.save();
  EXPECT_THROW(b.update(0, {3, INFINITY}, 1.0), NumericError);
  EXPECT_THROW(b.select({NAN, 4}), NumericError);
  EXPECT_EQ(b.save(), before);
}

TEST(BanditExp3, RejectsRewardsOutsideTheUnitInterval) {
  auto b = select::make_bandit("exp3", select::BanditParams{3});
  const size_t arm = b->select({});
  EXPECT_THROW(b->update(arm, {}, 1.5), NumericError);
  b->update(arm, {}, 1.0);
  double sum = 0;
  for (double x : b->scores()) sum += x;
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

TEST(BanditReplay, StopAndResumeMatchesOneRun) {
  const Stream s = linear_stream(90, 3, 4, 5, 0.2);
  const auto files = write_stream(s, temp_dir("replay_resume"));
  for (const std::string name : {"linucb", "thompson", "exp3"}) {
    select::ReplayConfig cfg;
    cfg.contexts_path = files.contexts;
    cfg.rewards_path = files.rewards;
    select::BanditParams p{3, 4};
    p.seed = 3;
    select::RewardNormalizer n1;
    auto full_b = select::make_bandit(name, p);
    const auto full = replay_lib(*full_b, n1, cfg);
    ASSERT_EQ(full.size(), 90u);

    select::RewardNormalizer n2;
    auto part_b = select::make_bandit(name, p);
    cfg.max_rounds = 40;
    auto part = replay_lib(*part_b, n2, cfg);
    ASSERT_EQ(part.size(), 40u);
    const auto st = nlohmann::json::parse(select::replay_state(*part_b, n2, cfg, 40).dump());
    auto resumed_b = select::restore_bandit(st["bandit"]);
    select::RewardNormalizer n3;
    n3.load(st["normalizer"]);
    cfg.start_round = st["round"].get<uint64_t>();
    cfg.max_rounds = 0;
    const auto rest = replay_lib(*resumed_b, n3, cfg);
    part.insert(part.end(), rest.begin(), rest.end());
    ASSERT_EQ(part.size(), full.size());
    for (size_t t = 0; t < full.size(); ++t) {
      EXPECT_EQ(part[t].round, t + 1);
      EXPECT_EQ(part[t].arm, full[t].arm) << name << " round " << t + 1;
      EXPECT_EQ(part[t].scores, full[t].scores) << name << " round " << t + 1;
      EXPECT_EQ(part[t].normalized_reward, full[t].normalized_reward);
    }
  }
}

// The message of the FormatError that replaying (contexts, rewards) throws.
std::string replay_error(const std::string& contexts, const std::string& rewards, size_t arms = 2, size_t dim = 2) {
  const std::string dir = temp_dir("replay_err");
  select::ReplayConfig cfg;
  cfg.contexts_path = join_path(dir, "c.jsonl");
  cfg.rewards_path = join_path(dir, "r.jsonl");
  write_file_atomic(cfg.contexts_path, contexts);
  write_file_atomic(cfg.rewards_path, rewards);
  auto b = select::make_bandit("linucb", select::BanditParams{arms, dim});
  select::RewardNormalizer n;
  try {
    replay_lib(*b, n, cfg);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BanditReplay, BadInputNamesFileAndLine) {
  const std::string ok_c = "[1, 0]\n[0, 1]\n[1, 1]\n", ok_r = "[0.1, 0.2]\n[0.3, 0.4]\n[0.5, 0.6]\n";
  EXPECT_NE(replay_error(ok_c, "[0.1, 0.2]\n[0.3]\n[0.5, 0.6]\n").find("r.jsonl:2: expected 2 rewards"), std::string::npos);
  EXPECT_NE(replay_error(ok_c, "[0.1, 0.2]\n[0.3, \"x\"]\n[1, 2]\n").find("r.jsonl:2: value 1: expected a number"),
            std::string::npos);
  EXPECT_NE(replay_error("[1, 0]\n[0, 1, 2]\n[1, 1]\n", ok_r).find("c.jsonl:2: expected 2 context values (as on line 1)"),
            std::string::npos);
  EXPECT_NE(replay_error("[1, 0]\n{\"a\": 1}\n", ok_r).find("c.jsonl:2: expected a JSON array"), std::string::npos);
  EXPECT_NE(replay_error("[1, 0]\n[0, 1\n", ok_r).find("c.jsonl:2: invalid JSON"), std::string::npos);
  EXPECT_NE(replay_error(ok_c + "[2, 2]\n", ok_r).find("c.jsonl:4: no reward row"), std::string::npos);
  EXPECT_NE(replay_error("[1, 0]\n", ok_r).find("c.jsonl: 1 lines, but"), std::string::npos);
  EXPECT_NE(replay_error("[1, 0, 0]\n", ok_r).find("c.jsonl:1: context of 3 values"), std::string::npos);
  EXPECT_NE(replay_error(ok_c, "[0.1, 0.2]\n\n[0.5, 0.6]\n").find("r.jsonl:2: expected a JSON array of rewards"),
            std::string::npos);
}

}  // namespace
