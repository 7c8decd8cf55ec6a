// Options and exit codes (issue 18): every option is checked at parse time against the range in its
// option table (finite numbers, probabilities, counts, integer overflow, choices, a bounded
// --threads), "no usable pairs" is one runtime error (exit 1) in train, score and eval, and error
// lines quote at most ~200 characters of the input.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <filesystem>

#include "cli/cli_hardening_util.h"

namespace rmkit::hardening {
namespace {

namespace fs = std::filesystem;
using testing::asset;
using testing::run_rmkit;
using testing::shell_quote;

struct StrictFixture : ::testing::Test {
  std::string dir, data;
  void SetUp() override {
    ASSERT_TRUE(path_exists(asset(kModel))) << "missing asset (set RMKIT_ASSETS)";
    dir = testing::temp_dir("strict");
    data = slice(dir, "prefs/ultrafeedback_sample.jsonl.gz", 12, "train.jsonl");
  }
  void TearDown() override { fs::remove_all(dir); }
  // Expects exit 2 with a one-line error naming `option`, before any work (no data summary).
  void expect_usage(const std::string& args, const std::string& option) {
    auto r = run_rmkit(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_NE(last_line(r.err).find(option), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(r.err.find("data summary"), std::string::npos) << args << "\n" << r.err;
  }
};

TEST_F(StrictFixture, OptionsAreValidatedAtParseTime) {
  const std::string train = train_args(data, join_path(dir, "out"));
  expect_usage(train + " --val-fraction nan", "--val-fraction");
  expect_usage(train + " --lr inf", "--lr");
  expect_usage(train + " --lr -1", "--lr");
  expect_usage(train + " --warmup-ratio 1.5", "--warmup-ratio");
  expect_usage(train + " --batch-size 99999999999999999999", "--batch-size");
  expect_usage(train + " --save-dtype float64", "--save-dtype");
  expect_usage(train + " --adam-beta1 1.5", "--adam-beta1");
  expect_usage(train + " --adam-eps -1", "--adam-eps");
  expect_usage(train + " --threads 100000", "--threads");
  expect_usage(train + " --format bogus", "--format");
  expect_usage(train + " --keep-checkpoints -1", "--keep-checkpoints");
  const std::string gen = "generate --model " + shell_quote(asset(kModel)) + " --tokenizer " + shell_quote(asset(kTok));
  expect_usage(gen + " --temperature nan", "--temperature");
  expect_usage(gen + " --top-k -3", "--top-k");
  expect_usage(gen + " --top-p 0", "--top-p");
  const std::string score = "score --model " + shell_quote(join_path(dir, "nope")) + " --data " + shell_quote(data) +
                            " --output " + shell_quote(join_path(dir, "s.jsonl"));
  expect_usage(score + " --batch-size 0", "--batch-size");
  // a config file is checked the same way
  std::string cfg = join_path(dir, "c.json");
  write_file_atomic(cfg, "{\"val_fraction\": 2}");
  expect_usage(train + " --config " + shell_quote(cfg), "--val-fraction");
  // --threads far beyond the cores is refused at once (it used to make `info` hang)
  const auto t0 = std::chrono::steady_clock::now();
  int st = std::system(("timeout 60 " + shell_quote(testing::rmkit_bin()) + " info --threads 100000 " +
                        shell_quote(asset(kModel)) + " >/dev/null 2>&1")
                           .c_str());
  EXPECT_EQ(WEXITSTATUS(st), 2);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
}

TEST_F(StrictFixture, NoUsablePairsIsOneRuntimeErrorEverywhere) {
  auto rows = read_jsonl(data);
  std::string text;
  for (int i = 0; i < 3; ++i) {
    auto r = rows[i];
    r["rejected"] = r["chosen"];
    text += r.dump() + "\n";
  }
  std::string same = join_path(dir, "same.jsonl");
  write_file_atomic(same, text);
  std::string rm = join_path(dir, "rm");  // a reward model to score with
  auto made = run_rmkit(train_args(data, rm) + " --max-steps 1 --save-every 0");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto t = run_rmkit(train_args(same, join_path(dir, "out")));
  auto s = run_rmkit("score --model " + shell_quote(rm) + " --data " + shell_quote(same) + " --output " +
                     shell_quote(join_path(dir, "s.jsonl")));
  auto e = run_rmkit("eval --model " + shell_quote(rm) + " --data " + shell_quote(same) + " --output " +
                     shell_quote(join_path(dir, "ev")));
  EXPECT_FALSE(path_exists(join_path(dir, "s.jsonl")));
  for (const auto* r : {&t, &s, &e}) {
    EXPECT_EQ(r->exit_code, 1) << r->err;
    const std::string line = last_line(r->err);
    EXPECT_NE(line.find("no usable pairs"), std::string::npos) << r->err;
    EXPECT_NE(line.find("3 rows"), std::string::npos) << r->err;
    EXPECT_NE(line.find("chosen == rejected"), std::string::npos) << r->err;
  }
  // every pair shares one prompt: the grouped split sends all of them to validation
  text.clear();
  for (int i = 0; i < 6; ++i) {
    auto r = rows[i];
    r["prompt"] = rows[0]["prompt"];
    text += r.dump() + "\n";
  }
  std::string one = join_path(dir, "one_prompt.jsonl");
  write_file_atomic(one, text);
  auto v = run_rmkit(train_args(one, join_path(dir, "out2")) + " --val-fraction 0.2");
  EXPECT_EQ(v.exit_code, 1) << v.err;
  EXPECT_NE(last_line(v.err).find("--val-fraction 0"), std::string::npos) << v.err;
  EXPECT_NE(last_line(v.err).find("one prompt"), std::string::npos) << v.err;
}

TEST_F(StrictFixture, ErrorLinesQuoteABoundedPartOfTheInput) {
  // a 5 MB malformed line: a string without its closing quote (the JSON parser quotes all it read)
  std::string big = "{\"prompt\": \"hi\", \"chosen\": \"" + std::string(5 << 20, 'x') + "\n";
  std::string bad = join_path(dir, "big.jsonl");
  write_file_atomic(bad, big);
  auto t = run_rmkit(train_args(bad, join_path(dir, "out")));
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_LT(t.err.size(), 4000u) << t.err.substr(0, 400);
  EXPECT_LT(last_line(t.err).size(), 600u) << t.err.substr(0, 400);
  EXPECT_NE(last_line(t.err).find("big.jsonl:1"), std::string::npos) << t.err.substr(0, 400);
  auto s = run_rmkit("tokenize --tokenizer " + shell_quote(asset(kTok)) + " --input " + shell_quote(bad));
  EXPECT_NE(s.exit_code, 0);
  EXPECT_LT(s.err.size(), 4000u) << s.err.substr(0, 400);
}

}  // namespace
}  // namespace rmkit::hardening
