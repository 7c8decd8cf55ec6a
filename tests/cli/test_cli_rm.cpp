// The reward-model CLI end to end on real data: `rmkit train --config run.toml` (effective config,
// HF-loadable output, rmkit.json), `rmkit score` identical across batch sizes, `rmkit eval
// --scores` keys and report, DPO implicit reward of a model against itself, and one-line errors.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_hardening_util.h"
#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit {
namespace {

using testing::asset;
using testing::run_rmkit;
using testing::shell_quote;
using hardening::kModel;
using hardening::kTok;
using hardening::last_line;
using hardening::read_jsonl;
using hardening::slice;

TEST(CliRewardModel, TrainFromTomlScoreAndEval) {
  RMKIT_REQUIRE_ASSET(asset(kModel));
  std::string dir = testing::temp_dir("cli_rm");
  std::string train = slice(dir, "prefs/ultrafeedback_sample.jsonl.gz", 40, "train.jsonl");
  std::string evalf = slice(dir, "prefs/llmbar.jsonl.gz", 30, "llmbar_head.jsonl");
  std::string out = join_path(dir, "rm");
  std::string cfg = join_path(dir, "run.toml");
  write_file_atomic(cfg, "# rmkit train config\nmodel = " + nlohmann::json(asset(kModel)).dump() +
                             "\ntokenizer = " + nlohmann::json(asset(kTok)).dump() + "\ndata = [" +
                             nlohmann::json(train).dump() + "]\noutput = " + nlohmann::json(out).dump() +
                             "\nmax_steps = 4\nbatch-size = 4\nmax-length = 64\nchat-template = \"plain\"\n"
                             "lr = 1e-3\nval-fraction = 0.2\nprogress = \"off\"\nloss = \"bt:1,center:0.01\"\n");
  auto r = run_rmkit("train --config " + shell_quote(cfg) + " --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // the effective config, with the file's values and the command line's override
  EXPECT_NE(r.err.find("rmkit train config:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"max-steps\":4,"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"seed\":7,"), std::string::npos) << r.err;
  auto summary = nlohmann::json::parse(last_line(r.out));
  EXPECT_EQ(summary["steps"], 4);
  // HF-loadable layout
  auto hf = nlohmann::json::parse(read_file(join_path(out, "config.json")));
  EXPECT_EQ(hf["architectures"], nlohmann::json::array({"LlamaForSequenceClassification"}));
  EXPECT_EQ(hf["num_labels"], 1);
  EXPECT_TRUE(path_exists(join_path(out, "model.safetensors")));
  auto meta = nlohmann::json::parse(read_file(join_path(out, "rmkit.json")));
  EXPECT_EQ(meta["chat_template"], "plain");
  EXPECT_FALSE(meta["data_hash"].get<std::string>().empty());
  EXPECT_EQ(meta["training_config"]["seed"], 7);
  EXPECT_GT(meta["calibration"]["reward_std"].get<double>(), 0.0);
  EXPECT_EQ(read_jsonl(join_path(out, "metrics.jsonl")).size(), 4u);

  // score: same rewards whatever the batch size
  std::string s1 = join_path(dir, "s1.jsonl"), s16 = join_path(dir, "s16.jsonl");
  r = run_rmkit("score --model " + shell_quote(out) + " --data " + shell_quote(evalf) + " --output " +
                shell_quote(s1) + " --batch-size 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_rmkit("score --model " + shell_quote(out) + " --data " + shell_quote(evalf) + " --output " +
                shell_quote(s16) + " --batch-size 16 --max-tokens 700");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = read_jsonl(s1), b = read_jsonl(s16);
  ASSERT_EQ(a.size(), 30u);
  ASSERT_EQ(b.size(), 30u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["id"], b[i]["id"]);  // input order kept, input fields kept
    EXPECT_EQ(a[i]["subset"], b[i]["subset"]);
    EXPECT_NEAR(a[i]["reward_chosen"].get<double>(), b[i]["reward_chosen"].get<double>(), 1e-5) << i;
    EXPECT_NEAR(a[i]["reward_rejected"].get<double>(), b[i]["reward_rejected"].get<double>(), 1e-5) << i;
  }

  // eval from the scores: keys, counts, report
  std::string ev = join_path(dir, "ev");
  r = run_rmkit("eval --scores " + shell_quote(s1) + " --output " + shell_quote(ev) + " --metrics " +
                shell_quote(join_path(out, "metrics.jsonl")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(read_file(join_path(ev, "eval.json")));
  EXPECT_EQ(j["accuracy"]["overall"]["n"], 30);
  size_t correct = 0;
  for (const auto& row : a) correct += row["reward_chosen"].get<double>() > row["reward_rejected"].get<double>();
  EXPECT_NEAR(j["accuracy"]["overall"]["acc"].get<double>(), correct / 30.0, 1e-12);
  for (const char* k : {"rewardbench", "rm_bench", "length_bias", "calibration"}) EXPECT_TRUE(j.contains(k)) << k;
  std::string html = read_file(join_path(ev, "report.html"));
  EXPECT_NE(html.find("<svg"), std::string::npos);

  // DPO implicit reward of a model against itself is exactly 0: every pair is a tie, which counts wrong
  std::string ev2 = join_path(dir, "ev_dpo");
  r = run_rmkit("eval --policy " + shell_quote(asset(kModel)) + " --reference " + shell_quote(asset(kModel)) +
                " --tokenizer " + shell_quote(asset(kTok)) + " --chat-template plain --data " + shell_quote(evalf) +
                " --output " + shell_quote(ev2));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j2 = nlohmann::json::parse(read_file(join_path(ev2, "eval.json")));
  EXPECT_EQ(j2["accuracy"]["overall"]["acc"].get<double>(), 0.0);
  std::filesystem::remove_all(dir);
}

TEST(CliRewardModel, BadInputGivesOneLineErrors) {
  RMKIT_REQUIRE_ASSET(asset(kModel));
  std::string dir = testing::temp_dir("cli_rm_err");
  std::string train = slice(dir, "prefs/ultrafeedback_sample.jsonl.gz", 5, "train.jsonl");
  const std::string base = "train --model " + shell_quote(asset(kModel)) + " --tokenizer " + shell_quote(asset(kTok)) +
                           " --output " + shell_quote(join_path(dir, "o")) + " --progress off";
  auto r = run_rmkit(base + " --data " + shell_quote(train) + " --loss bt:1,nope:2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  r = run_rmkit(base + " --data " + shell_quote(join_path(dir, "missing.jsonl")));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("missing.jsonl"), std::string::npos) << r.err;
  // a malformed row names file:line
  std::string bad = join_path(dir, "bad.jsonl");
  write_file_atomic(bad, read_file(train) + "{\"prompt\": \"x\", \"chosen\": 3}\n");
  r = run_rmkit(base + " --data " + shell_quote(bad));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("bad.jsonl:6"), std::string::npos) << r.err;
  EXPECT_FALSE(path_exists(join_path(join_path(dir, "o"), "model.safetensors")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmkit
