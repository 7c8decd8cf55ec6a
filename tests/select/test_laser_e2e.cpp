// `rmkit laser train` and `rmkit laser bon` end to end on stories260K with two reward models:
// an interrupted run (--stop-after, then --resume) gives the same arm sequence, losses and final
// weights as an uninterrupted one; the report and bandit state are written; best-of-n returns the
// top-scored sample of the chosen RM, greedily from the learned state or learning from feedback.
#include <gtest/gtest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "rmkit/core/file_io.h"
#include "serve/serve_fixture.h"
#include "test_util.h"

namespace rmkit::select {
namespace {

using json = nlohmann::json;
using ::rmkit::testing::run_rmkit;
using ::rmkit::testing::shell_quote;

std::vector<json> lines(const std::string& path) {
  std::vector<json> v;
  for_each_line(path, [&](const std::string& l, size_t) {
    v.push_back(json::parse(l));
    return true;
  });
  return v;
}

TEST(E2ELaser, TrainResumesExactlyAndBestOfNUsesTheState) {
  const std::string model = ::rmkit::testing::asset("models/stories260K/stories260K.bin");
  const std::string tok = ::rmkit::testing::asset("models/stories260K/tok512.model");
  RMKIT_REQUIRE_ASSET(model);
  const std::string dir = ::rmkit::testing::temp_dir("laser_e2e");
  const std::string prompts = join_path(dir, "prompts.jsonl");
  std::string rows;
  const char* openings[] = {"Once upon a time, Lily", "Tom had a big ball", "The dog ran to the park", "Lily smiled at",
                            "Tom and his mom", "The little bird"};
  for (int i = 0; i < 6; ++i) rows += json{{"prompt", openings[i]}, {"category", i % 2 ? "ball" : "happy"}}.dump() + "\n";
  write_file_atomic(prompts, rows);
  const std::string common = "laser train --policy " + shell_quote(model) + " --tokenizer " + shell_quote(tok) +
                             " --chat-template plain --rm A=" + shell_quote(serve::testing::rm_dir()) +
                             " --rm B=policy=" + shell_quote(model) + " --prompts " + shell_quote(prompts) +
                             " --iterations 3 --batch-size 3 --n 4 --max-new-tokens 20 --lr 1e-3 --norm-min-history 2"
                             " --threads 2 --progress off --seed 7 --output ";
  const std::string full = join_path(dir, "full"), part = join_path(dir, "part");
  auto r = run_rmkit(common + shell_quote(full));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_rmkit(common + shell_quote(part) + " --stop-after 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("continue with --resume"), std::string::npos) << r.err;
  r = run_rmkit(common + shell_quote(part));  // without --resume: refused, nothing overwritten
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_rmkit(common + shell_quote(part) + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const auto a = lines(join_path(full, "metrics.jsonl")), b = lines(join_path(part, "metrics.jsonl"));
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["arms"], b[i]["arms"]) << i;
    EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << i;
    EXPECT_EQ(a[i]["normalized_reward"], b[i]["normalized_reward"]) << i;
    EXPECT_EQ(a[i]["rm_tokens"], b[i]["rm_tokens"]) << i;
    EXPECT_GT(a[i]["pairs"].get<int>(), 0);
  }
  EXPECT_EQ(read_file(join_path(full, "policy/model.safetensors")), read_file(join_path(part, "policy/model.safetensors")));
  EXPECT_EQ(read_file(join_path(full, "bandit.json")), read_file(join_path(part, "bandit.json")));
  // only the chosen RM runs: at step 1 (same policy, same samples in every run) LASeR's RM tokens are
  // those of the arm it chose, and the score ensemble's are both arms' together
  std::map<std::string, int64_t> step1;
  for (const char* b : {"fixed:A", "fixed:B", "ensemble-mean"}) {
    const std::string out = join_path(dir, std::string("b_") + (b[0] == 'f' ? b + 6 : "ens"));
    r = run_rmkit(common + shell_quote(out) + " --iterations 1 --bandit " + b);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    step1[b] = lines(join_path(out, "metrics.jsonl"))[0]["rm_tokens"].get<int64_t>();
  }
  EXPECT_EQ(step1["ensemble-mean"], step1["fixed:A"] + step1["fixed:B"]);
  EXPECT_EQ(a[0]["rm_tokens"].get<int64_t>(), step1[a[0]["arms"][0] == "A" ? "fixed:A" : "fixed:B"]);
  const std::string report = read_file(join_path(full, "report.html"));
  EXPECT_NE(report.find("Which RM was chosen for which category"), std::string::npos);

  // best-of-n from the learned state (greedy), then with feedback
  const std::string bon = "laser bon --policy " + shell_quote(join_path(full, "policy")) +
                          " --chat-template plain --rm A=" + shell_quote(serve::testing::rm_dir()) + " --rm B=policy=" +
                          shell_quote(model) + " --tokenizer " + shell_quote(tok) + " --prompts " + shell_quote(prompts) +
                          " --n 4 --max-new-tokens 16 --threads 2 --bandit-state " + shell_quote(join_path(full, "bandit.json"));
  r = run_rmkit(bon + " --output " + shell_quote(join_path(dir, "bon.jsonl")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = lines(join_path(dir, "bon.jsonl"));
  ASSERT_EQ(out.size(), 6u);
  for (const auto& row : out) {
    double best = -1e300;
    std::string best_text;
    for (const auto& resp : row["responses"])
      if (resp["score"].get<double>() > best) {
        best = resp["score"];
        best_text = resp["text"];
      }
    EXPECT_EQ(row["best"], best_text);
    EXPECT_TRUE(row["rm"] == "A" || row["rm"] == "B");
  }
  std::string fb;
  for (int i = 0; i < 6; ++i) fb += json{{"reward", i % 2 ? 1.0 : 0.0}}.dump() + "\n";
  write_file_atomic(join_path(dir, "fb.jsonl"), fb);
  r = run_rmkit(bon + " --feedback " + shell_quote(join_path(dir, "fb.jsonl")) + " --save-state " +
                shell_quote(join_path(dir, "state2.json")) + " --output " + shell_quote(join_path(dir, "bon2.jsonl")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json st = json::parse(read_file(join_path(dir, "state2.json")));
  const json st0 = json::parse(read_file(join_path(full, "bandit.json")));
  EXPECT_EQ(st["normalizer"]["history"].size(), st0["normalizer"]["history"].size() + 6);  // learned online
  // a bad feedback file is one line naming it
  write_file_atomic(join_path(dir, "bad.jsonl"), "{\"reward\": 1}\n");
  r = run_rmkit(bon + " --feedback " + shell_quote(join_path(dir, "bad.jsonl")) + " --output " +
                shell_quote(join_path(dir, "bon3.jsonl")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("1 feedback rows for 6 prompts"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rmkit::select
