// `rmkit basemodel` end to end through the binary: table --merge and analyze on the shared tables
// (correlations equal scipy's, tests/data/basemodel/shared_correlations_golden.json), the
// basemodel.json keys, folds from a file, candidates, leave-one-family-out, a self-contained
// report.html, the missing-value report, one-line file:line:column errors, and jsd.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "rmkit/basemodel/table.h"
#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit {
namespace {

using nlohmann::json;
using testing::asset;
using testing::run_rmkit;
using testing::shell_quote;

TEST(BasemodelCli, MergeAndAnalyzeSharedTablesMatchScipy) {
  const std::string a = asset("basemodel/rm_scores_regression.csv"), b = asset("basemodel/open_llm_leaderboard_v2.csv"),
                    c = asset("basemodel/open_llm_leaderboard_v1.csv");
  RMKIT_REQUIRE_ASSET(a);
  const std::string dir = testing::temp_dir("bm_cli_shared");
  const std::string merged = join_path(dir, "merged.csv");
  auto m = run_rmkit("basemodel table --merge " + shell_quote(a) + " " + shell_quote(b) + " " + shell_quote(c) +
                     " --output " + shell_quote(merged));
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_NE(m.err.find("open_llm_leaderboard_v1.csv lacks 26"), std::string::npos) << m.err;
  const std::string out = join_path(dir, "out");
  auto r = run_rmkit("basemodel analyze --table " + shell_quote(merged) +
                     " --target score --features ifeval,bbh,mmlu_pro,mmlu,params_b --degrees 1,2 --folds 5 "
                     "--bootstrap 200 --seed 3 --output " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(read_file(join_path(out, "basemodel.json")));
  for (const char* key : {"n", "features", "targets", "correlations", "coverage", "best_single", "elastic_net",
                          "nested_cv", "pca", "folds", "candidates"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["n"], 40);
  // mmlu covers 14 of the 40 models: dropped from the selector (reported), kept for correlations
  EXPECT_EQ(j["missing"]["dropped_features"]["mmlu"], 26);
  EXPECT_EQ(j["selector_features"], json({"ifeval", "bbh", "mmlu_pro", "params_b"}));
  json g = json::parse(read_file(join_path(RMKIT_SOURCE_DIR, "tests/data/basemodel/shared_correlations_golden.json")));
  for (const auto& [f, ref] : g["features"].items()) {
    const json& c2 = j["correlations"][f]["score"];
    SCOPED_TRACE(f);
    EXPECT_EQ(c2["n"], ref["n"]);
    EXPECT_NEAR(c2["pearson"].get<double>(), ref["pearson"].get<double>(), 1e-12);
    EXPECT_NEAR(c2["spearman"].get<double>(), ref["spearman"].get<double>(), 1e-12);
    EXPECT_NEAR(c2["kendall"].get<double>(), ref["kendall"].get<double>(), 1e-12);
    EXPECT_NEAR(c2["pearson_p"].get<double>() / ref["pearson_p"].get<double>(), 1.0, 1e-6);
    EXPECT_NEAR(c2["spearman_p"].get<double>() / ref["spearman_p"].get<double>(), 1.0, 1e-6);
    EXPECT_LT(c2["pearson_ci"][0].get<double>(), c2["pearson"].get<double>());
    EXPECT_GT(c2["pearson_ci"][1].get<double>(), c2["pearson"].get<double>());
  }
  EXPECT_EQ(j["coverage"]["ifeval"]["score"].size(), 40u);
  EXPECT_EQ(j["coverage"]["mmlu"]["score"].size(), 14u);
  EXPECT_EQ(j["coverage"]["ifeval"]["score"][39], 1.0);  // C@n = 1
  const json& en = j["elastic_net"]["score"];
  EXPECT_LE(en["degree"].get<int>(), 2);
  EXPECT_EQ(en["predictions"].size(), 40u);
  EXPECT_EQ(en["fits_not_converged"], 0);
  EXPECT_EQ(j["folds"].size(), 40u);
  std::set<int> folds;
  for (const auto& [k, v] : j["folds"].items()) folds.insert(v.get<int>());
  EXPECT_EQ(folds.size(), 5u);
  const json& n = j["nested_cv"]["score"];
  EXPECT_EQ(n["folds"].size(), 5u);
  EXPECT_GT(n["selector"]["mae"].get<double>(), 0);
  // out-of-fold error is not smaller than the in-sample error of the same pipeline
  EXPECT_GE(n["selector"]["mae"].get<double>(), n["in_sample"]["selector"]["mae"].get<double>());
  double ratio_sum = 0;
  for (const auto& v : j["pca"]["explained_variance_ratio"]) ratio_sum += v.get<double>();
  EXPECT_NEAR(ratio_sum, 1.0, 1e-9);
  const std::string html = read_file(join_path(out, "report.html"));
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src=\""), std::string::npos);  // no external resources (the svg xmlns is not one)
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
}

TEST(BasemodelCli, FoldsFileFamiliesCandidatesAndErrors) {
  const std::string dir = testing::temp_dir("bm_cli_small");
  // y = 3a + noise; b is noise; 3 candidates without a target; 4 families
  std::string csv = "# synthetic\nmodel,family,a,b,y\n";
  std::string folds = "model,fold\n";
  for (int i = 0; i < 16; ++i) {
    const double a = i, b = (i * 7) % 5, y = 3 * a + ((i * 13) % 3) - 1;
    csv += "m" + std::to_string(i) + ",f" + std::to_string(i % 4) + "," + std::to_string(a) + "," + std::to_string(b) +
           "," + std::to_string(y) + "\n";
    folds += "m" + std::to_string(i) + "," + std::to_string(i % 3) + "\n";
  }
  csv += "c1,f0,20,1,\nc2,f1,-5,2,\nc3,f2,8,3,\n";
  write_file_atomic(join_path(dir, "t.csv"), csv);
  write_file_atomic(join_path(dir, "folds.csv"), folds);
  const std::string out = join_path(dir, "out");
  auto r = run_rmkit("basemodel analyze --table " + shell_quote(join_path(dir, "t.csv")) + " --target y --folds " +
                     shell_quote(join_path(dir, "folds.csv")) + " --degrees 1 --bootstrap 0 --output " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(read_file(join_path(out, "basemodel.json")));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(j["folds"]["m" + std::to_string(i)], i % 3);
  EXPECT_EQ(j["best_single"]["y"]["feature"], "a");
  EXPECT_GT(j["correlations"]["a"]["y"]["pearson"].get<double>(), 0.99);
  EXPECT_TRUE(j["elastic_net"]["y"]["coefficients"].contains("a"));
  // candidates ranked by prediction, each inside its outer-fold spread
  const json& c = j["candidates"]["y"];
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0]["model"], "c1");
  EXPECT_EQ(c[1]["model"], "c3");
  EXPECT_EQ(c[2]["model"], "c2");
  for (const auto& x : c) {
    EXPECT_LE(x["low"].get<double>(), x["predicted"].get<double>());
    EXPECT_GE(x["high"].get<double>(), x["predicted"].get<double>());
  }
  EXPECT_NEAR(c[0]["predicted"].get<double>(), 60, 3);
  // leave one family out: one outer fold per family
  ASSERT_TRUE(j["leave_one_family_out"].contains("y"));
  EXPECT_EQ(j["leave_one_family_out"]["y"]["folds"].size(), 4u);
  // a bad cell: one line naming file:line:column
  write_file_atomic(join_path(dir, "bad.csv"), "model,a,y\nm1,1,2\nm2,2,x3\nm3,3,4\nm4,4,5\nm5,5,6\n");
  auto bad = run_rmkit("basemodel analyze --table " + shell_quote(join_path(dir, "bad.csv")) +
                       " --target y --output " + shell_quote(join_path(dir, "bad_out")));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bad.csv:3:6: column 'y': expected a number, got 'x3'"), std::string::npos) << bad.err;
  auto unknown = run_rmkit("basemodel analyze --table " + shell_quote(join_path(dir, "t.csv")) + " --target nope --output " +
                           shell_quote(join_path(dir, "x")));
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no column 'nope'"), std::string::npos) << unknown.err;
  auto verb = run_rmkit("basemodel frobnicate");
  EXPECT_EQ(verb.exit_code, 2);
}

TEST(BasemodelCli, PresenceWritesDocumentsAndAFeatureRow) {
  const std::string model = asset("models/stories260K/stories260K.bin"), tok = asset("models/stories260K/tok512.model");
  RMKIT_REQUIRE_ASSET(model);
  const std::string dir = testing::temp_dir("bm_cli_presence");
  const std::string corpus = join_path(dir, "corpus.jsonl");
  write_file_atomic(corpus,
                    "{\"text\": \"Once upon a time, there was a little girl named Lily.\", \"source\": \"stories\"}\n"
                    "{\"text\": \"The dog ran to the park.\", \"source\": \"stories\"}\n"
                    "{\"text\": \"qx zv wkk jjj\", \"source\": \"noise\"}\n");
  const std::string out = join_path(dir, "out");
  auto r = run_rmkit("basemodel presence --model " + shell_quote(model) + " --tokenizer " + shell_quote(tok) + " --corpus " +
                     shell_quote(corpus) + " --group source --max-tokens 64 --name stories260K --threads 1 --output " +
                     shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<json> docs;
  for_each_line(join_path(out, "presence.jsonl"), [&](const std::string& l, size_t) {
    docs.push_back(json::parse(l));
    return true;
  });
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_GT(docs[0]["presence"].get<double>(), docs[2]["presence"].get<double>());
  auto t = basemodel::read_table(join_path(out, "features.csv"));
  ASSERT_EQ(t.rows(), 1u);
  EXPECT_EQ(t.cells[0][0], "stories260K");
  const double stories = (docs[0]["presence"].get<double>() + docs[1]["presence"].get<double>()) / 2;
  EXPECT_NEAR(*t.number(0, t.index("presence_stories")), stories, 1e-6);
  EXPECT_NEAR(*t.number(0, t.index("presence_noise")), docs[2]["presence"].get<double>(), 1e-6);
  auto bad = run_rmkit("basemodel presence --model " + shell_quote(model) + " --tokenizer " + shell_quote(tok) +
                       " --corpus " + shell_quote(corpus) + " --field body --output " + shell_quote(join_path(dir, "x")));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("corpus.jsonl:1: missing field 'body'"), std::string::npos) << bad.err;
}

TEST(BasemodelCli, JsdOfTwoScoreFiles) {
  const std::string dir = testing::temp_dir("bm_cli_jsd");
  write_file_atomic(join_path(dir, "a.jsonl"), "{\"presence\": 0}\n{\"presence\": 1}\n{\"presence\": null}\n");
  write_file_atomic(join_path(dir, "b.jsonl"), "{\"presence\": 0}\n{\"presence\": 0.2}\n");
  auto r = run_rmkit("basemodel jsd " + shell_quote(join_path(dir, "a.jsonl")) + " " + shell_quote(join_path(dir, "b.jsonl")) +
                     " --bins 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  // P = (1/2, 1/2), Q = (1, 0): see BasemodelJsd.HandComputedHistograms
  const double kl_pm = 0.5 * std::log2(0.5 / 0.75) + 0.5 * std::log2(0.5 / 0.25), kl_qm = std::log2(1 / 0.75);
  EXPECT_NEAR(j["js_distance"].get<double>(), std::sqrt(0.5 * (kl_pm + kl_qm)), 1e-12);
  EXPECT_EQ(j["null_skipped"][0], 1);
  EXPECT_EQ(j["bins"], 2);
}

}  // namespace
}  // namespace rmkit
