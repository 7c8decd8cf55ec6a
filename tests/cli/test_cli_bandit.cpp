// rmkit bandit replay: one JSON line per round, --help with defaults, one-line errors naming
// file:line (exit 1) or the option (exit 2), and --save-state / --load-state resuming a replay.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace {

using rmkit::testing::run_rmkit;
using rmkit::testing::shell_quote;

struct Files {
  std::string dir, contexts, rewards;
};

// `rounds` rounds of 3-dimensional contexts and 3 arms whose rewards depend on the context.
Files write_stream(const std::string& tag, int rounds) {
  Files f;
  f.dir = rmkit::testing::temp_dir(tag);
  f.contexts = f.dir + "/c.jsonl";
  f.rewards = f.dir + "/r.jsonl";
  std::mt19937 gen(4);
  std::normal_distribution<double> g(0.0, 1.0);
  std::string c, r;
  for (int t = 0; t < rounds; ++t) {
    const double x0 = g(gen), x1 = g(gen), x2 = g(gen);
    c += nlohmann::json({x0, x1, x2}).dump() + "\n";
    r += nlohmann::json({x0 + 0.1 * g(gen), x1 + 0.1 * g(gen), 0.5 * x2 + 0.1 * g(gen)}).dump() + "\n";
  }
  rmkit::write_file_atomic(f.contexts, c);
  rmkit::write_file_atomic(f.rewards, r);
  return f;
}

std::string replay_args(const Files& f, const std::string& algo) {
  return "bandit replay --algo " + algo + " --contexts " + shell_quote(f.contexts) + " --rewards " +
         shell_quote(f.rewards);
}

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char ch : s) n += ch == '\n';
  return n;
}

TEST(CliBandit, HelpListsVerbsAndDefaults) {
  auto top = run_rmkit("bandit --help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("replay"), std::string::npos) << top.out;
  auto h = run_rmkit("bandit replay --help");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  for (const char* want : {"--algo", "--alpha", "[default: 0.1]", "--lambda", "--v ", "--gamma", "--epsilon", "--seed",
                           "--norm-low", "[default: 20]", "--norm-high", "[default: 80]", "--norm-min-history",
                           "--norm-fallback", "[default: 0.5]", "--min-pulls-every", "--save-state", "--load-state",
                           "--raw-rewards"})
    EXPECT_NE(h.out.find(want), std::string::npos) << want << "\n" << h.out;
}

TEST(CliBandit, ReplayPrintsOneLinePerRound) {
  const Files f = write_stream("cli_bandit_rounds", 40);
  auto r = run_rmkit(replay_args(f, "linucb") + " --alpha 0.2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(lines(r.out), 40u);
  const auto first = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(first["round"], 1);
  EXPECT_EQ(first["arm"], 0);  // all scores equal at the start: lowest index
  EXPECT_EQ(first["scores"].size(), 3u);
  EXPECT_EQ(first["normalized_reward"], 0.5);  // history shorter than 20
  // context-free algorithms need no contexts; ucb1's untried arms score +inf, printed as null
  auto u = run_rmkit("bandit replay --algo ucb1 --raw-rewards --rewards " + shell_quote(f.rewards));
  ASSERT_EQ(u.exit_code, 0) << u.err;
  const auto u1 = nlohmann::json::parse(u.out.substr(0, u.out.find('\n')));
  EXPECT_TRUE(u1["scores"][1].is_null());
}

TEST(CliBandit, SaveAndLoadStateResumeTheReplay) {
  const Files f = write_stream("cli_bandit_state", 60);
  for (const std::string algo : {"linucb", "thompson", "exp3", "epsilon-greedy"}) {
    const std::string args = replay_args(f, algo) + " --seed 5 --min-pulls-every 10";
    auto full = run_rmkit(args);
    ASSERT_EQ(full.exit_code, 0) << full.err;
    const std::string st = f.dir + "/" + algo + ".state.json";
    auto a = run_rmkit(args + " --rounds 25 --save-state " + shell_quote(st));
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(lines(a.out), 25u);
    auto b = run_rmkit(replay_args(f, algo) + " --load-state " + shell_quote(st));
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(a.out + b.out, full.out) << algo;
  }
  // a state of another algorithm is a usage error
  auto wrong = run_rmkit(replay_args(f, "exp3") + " --load-state " + shell_quote(f.dir + "/linucb.state.json"));
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("holds a linucb state"), std::string::npos) << wrong.err;
}

TEST(CliBandit, BadInputIsOneLineNamingFileAndLine) {
  const Files f = write_stream("cli_bandit_errors", 5);
  auto expect_error = [&](const std::string& args, int code, const std::string& want) {
    auto r = run_rmkit(args);
    EXPECT_EQ(r.exit_code, code) << args << "\n" << r.err;
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  };
  rmkit::write_file_atomic(f.dir + "/r2.jsonl", "[1, 2, 3]\n[1, 2]\n[1, 2, 3]\n[1, 2, 3]\n[1, 2, 3]\n");
  expect_error("bandit replay --algo linucb --contexts " + f.contexts + " --rewards " + f.dir + "/r2.jsonl", 1,
               "r2.jsonl:2: expected 3 rewards");
  rmkit::write_file_atomic(f.dir + "/c2.jsonl", "[1, 2, 3]\n[1, 2, \"a\"]\n");
  expect_error("bandit replay --algo linucb --contexts " + f.dir + "/c2.jsonl --rewards " + f.rewards, 1,
               "c2.jsonl:2: value 2: expected a number");
  rmkit::write_file_atomic(f.dir + "/c3.jsonl", "[1, 2, 3]\n[1, 2]\n");
  expect_error("bandit replay --algo thompson --contexts " + f.dir + "/c3.jsonl --rewards " + f.rewards, 1,
               "c3.jsonl:2: expected 3 context values (as on line 1), got 2");
  rmkit::write_file_atomic(f.dir + "/r3.jsonl", "[0.5, 0.5, 0.5]\n[5, 5, 5]\n");
  expect_error("bandit replay --algo exp3 --raw-rewards --rewards " + f.dir + "/r3.jsonl", 1,
               "r3.jsonl:2: exp3: reward 5.000000 outside [0, 1]");
  expect_error("bandit replay --algo linucb --rewards " + f.rewards, 2, "needs --contexts");
  expect_error("bandit replay --algo nope --rewards " + f.rewards, 2, "--algo");
  expect_error("bandit replay --algo exp3 --gamma 0 --rewards " + f.rewards, 2, "--gamma");
  expect_error("bandit replay --algo exp3 --rewards " + f.dir + "/missing.jsonl", 1, "missing.jsonl: no such file");
}

}  // namespace
