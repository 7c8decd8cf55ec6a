// No silent data loss or silently wrong results (issue 18): non-finite weights are never saved, a
// model without its reward head is not scored, `rmkit score` writes every input row (null rewards
// and a `skipped` reason where a row cannot be scored) and refuses to overwrite its input, a
// tokenizer larger than the embedding is refused at load, and --max-length / --max-new-tokens
// default to and are checked against the model's context.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/cli_hardening_util.h"

namespace rmkit::hardening {
namespace {

namespace fs = std::filesystem;
using testing::asset;
using testing::run_rmkit;
using testing::shell_quote;

struct DataLossFixture : ::testing::Test {
  std::string dir, data;
  void SetUp() override {
    ASSERT_TRUE(path_exists(asset(kModel))) << "missing asset (set RMKIT_ASSETS)";
    dir = testing::temp_dir("data_loss");
    data = slice(dir, "prefs/ultrafeedback_sample.jsonl.gz", 24, "train.jsonl");
  }
  void TearDown() override { fs::remove_all(dir); }
  // A 1-step reward model (with its head).
  std::string reward_model() {
    std::string rm = join_path(dir, "rm");
    auto r = run_rmkit(train_args(data, rm) + " --max-steps 1 --save-every 0");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return rm;
  }
};

TEST_F(DataLossFixture, NonFiniteWeightsAreNeverSaved) {
  // --adam-eps 0 (valid, as in PyTorch) divides 0 by 0 for every weight whose gradient is exactly
  // zero (embedding rows of tokens not in the batch): the first AdamW step makes them NaN
  std::string out = join_path(dir, "out");
  auto r = run_rmkit(train_args(data, out) + " --adam-eps 0 --max-steps 1 --val-fraction 0.2");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(last_line(r.err).find("non-finite"), std::string::npos) << r.err;
  EXPECT_FALSE(path_exists(join_path(out, "model.safetensors")));
  EXPECT_FALSE(path_exists(join_path(out, "best")));
  EXPECT_FALSE(path_exists(join_path(out, "checkpoints/step-1")));
}

TEST_F(DataLossFixture, ModelWithoutRewardHeadIsNotScored) {
  auto r = run_rmkit("score --model " + shell_quote(asset(kModel)) + " --tokenizer " + shell_quote(asset(kTok)) +
                     " --data " + shell_quote(data) + " --output " + shell_quote(join_path(dir, "s.jsonl")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(last_line(r.err).find("reward head"), std::string::npos) << r.err;
  EXPECT_FALSE(path_exists(join_path(dir, "s.jsonl")));
}

TEST_F(DataLossFixture, ScoreWritesEveryRowAlignedWithTheInput) {
  std::string rm = reward_model();
  // 4 usable rows, then chosen == rejected, then an empty rejected reply, then one more usable row
  auto rows = read_jsonl(data);
  std::string text;
  for (int i = 0; i < 4; ++i) text += rows[i].dump() + "\n";
  auto same = rows[4];
  same["rejected"] = same["chosen"];
  auto empty = rows[5];
  empty["rejected"] = "  ";
  text += same.dump() + "\n" + empty.dump() + "\n" + rows[6].dump() + "\n";
  std::string in = join_path(dir, "mixed.jsonl"), outp = join_path(dir, "scores.jsonl");
  write_file_atomic(in, text);
  write_file_atomic(outp + ".tmp.999999", "");  // a 0-byte temp of an interrupted score run
  auto r = run_rmkit("score --model " + shell_quote(rm) + " --data " + shell_quote(in) + " --output " +
                     shell_quote(outp));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto got = read_jsonl(outp);
  ASSERT_EQ(got.size(), 7u);
  for (size_t i : {0, 1, 2, 3, 6}) {
    EXPECT_EQ(got[i]["id"], rows[i == 6 ? 6 : i]["id"]) << i;
    EXPECT_TRUE(got[i]["reward_chosen"].is_number()) << got[i].dump();
    EXPECT_FALSE(got[i].contains("skipped")) << got[i].dump();
  }
  EXPECT_EQ(got[4]["id"], rows[4]["id"]);
  EXPECT_TRUE(got[4]["reward_chosen"].is_null());
  EXPECT_TRUE(got[4]["reward_rejected"].is_null());
  EXPECT_NE(got[4]["skipped"].get<std::string>().find("chosen == rejected"), std::string::npos);
  EXPECT_EQ(got[5]["id"], rows[5]["id"]);
  EXPECT_TRUE(got[5]["reward_rejected"].is_null());
  EXPECT_NE(got[5]["skipped"].get<std::string>().find("empty"), std::string::npos);
  EXPECT_FALSE(path_exists(outp + ".tmp.999999"));

  // the score file evaluates (skipped rows are not pairs)
  auto ev = run_rmkit("eval --scores " + shell_quote(outp) + " --output " + shell_quote(join_path(dir, "ev")));
  ASSERT_EQ(ev.exit_code, 0) << ev.err;
  EXPECT_NE(ev.out.find("pairs 5"), std::string::npos) << ev.out;

  // --output equal to an input file is refused before anything is written
  const std::string before = read_file(in);
  auto same_file = run_rmkit("score --model " + shell_quote(rm) + " --data " + shell_quote(in) + " --output " +
                             shell_quote(in));
  EXPECT_EQ(same_file.exit_code, 2) << same_file.err;
  EXPECT_NE(last_line(same_file.err).find("--output"), std::string::npos) << same_file.err;
  EXPECT_EQ(read_file(in), before);
}

TEST_F(DataLossFixture, TokenizerLargerThanTheEmbeddingIsRefusedAtLoad) {
  auto r = run_rmkit("generate --model " + shell_quote(asset(kModel)) + " --tokenizer " +
                     shell_quote(asset("tokenizers/llama2/tokenizer.model")) + " --prompt 'Once upon a time'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(last_line(r.err).find("32000"), std::string::npos) << r.err;
  EXPECT_NE(last_line(r.err).find("512"), std::string::npos) << r.err;
  std::string rm = reward_model();
  auto s = run_rmkit("score --model " + shell_quote(rm) + " --tokenizer " +
                     shell_quote(asset("tokenizers/gpt2/hf/tokenizer.json")) + " --data " + shell_quote(data) +
                     " --output " + shell_quote(join_path(dir, "s.jsonl")));
  EXPECT_EQ(s.exit_code, 1) << s.err;
  EXPECT_NE(last_line(s.err).find("50257"), std::string::npos) << s.err;
  EXPECT_NE(last_line(s.err).find("512"), std::string::npos) << s.err;
}

TEST_F(DataLossFixture, MaxLengthDefaultsToTheModelContext) {
  std::string rm = reward_model();
  // one pair of ~700 tokens with the 512-token stories260K context
  std::string story;
  for (int i = 0; i < 60; ++i) story += "Once upon a time, there was a little girl named Lily. ";
  nlohmann::json row = {{"prompt", story}, {"chosen", "She was happy."}, {"rejected", "She was sad."}};
  std::string in = join_path(dir, "long.jsonl"), outp = join_path(dir, "s.jsonl");
  write_file_atomic(in, row.dump() + "\n");
  const std::string base = "score --model " + shell_quote(rm) + " --data " + shell_quote(in) + " --output " +
                           shell_quote(outp);
  auto r = run_rmkit(base);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1 truncated"), std::string::npos) << r.err;
  auto more = run_rmkit(base + " --max-length 2048");
  EXPECT_EQ(more.exit_code, 0) << more.err;
  EXPECT_NE(more.err.find("warning"), std::string::npos) << more.err;
  EXPECT_NE(more.err.find("512"), std::string::npos) << more.err;
  auto strict = run_rmkit(base + " --max-length 2048 --strict");
  EXPECT_EQ(strict.exit_code, 2) << strict.err;

  // generate: past the context only when asked, with a warning (refused under --strict)
  const std::string gen = "generate --model " + shell_quote(asset(kModel)) + " --tokenizer " + shell_quote(asset(kTok));
  auto g = run_rmkit(gen + " --max-new-tokens 600");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.err.find("warning"), std::string::npos) << g.err;
  EXPECT_NE(g.err.find("512"), std::string::npos) << g.err;
  auto gs = run_rmkit(gen + " --max-new-tokens 600 --strict");
  EXPECT_EQ(gs.exit_code, 2) << gs.err;
}

}  // namespace
}  // namespace rmkit::hardening
