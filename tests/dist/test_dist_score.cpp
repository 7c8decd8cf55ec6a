// `rmkit score` and `rmkit eval` under `rmkit launch`: the rows are sharded over 2 ranks and the
// rewards gathered back in input order; rank 0 writes exactly what one process writes.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "dist/dist_test_util.h"
#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit::testing::dist {
namespace {

std::vector<nlohmann::json> read_rows(const std::string& path) {
  std::vector<nlohmann::json> rows;
  for_each_line(path, [&](const std::string& line, size_t) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
    return true;
  });
  return rows;
}

TEST(DistScore, ShardedScoreAndEvalEqualOneProcess) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = temp_dir("dist_score");
  const std::string data = write_train_slice(dir, 60);
  const std::string model = join_path(dir, "rm");
  const std::string bin = shell_quote(rmkit_bin());
  std::string out;
  ASSERT_EQ(run_bounded(bin + " " + train_args(data, model, "bt", 8, 1, 3), {}, 60, &out), 0) << out;
  // 61 rows: an odd count, so the shards differ in size; one row unscorable (chosen == rejected)
  std::string text = read_file(data);
  auto first = nlohmann::json::parse(text.substr(0, text.find('\n')));
  first["rejected"] = first["chosen"];
  write_file_atomic(join_path(dir, "score_in.jsonl"), text + first.dump() + "\n");
  const std::string in = join_path(dir, "score_in.jsonl");
  const std::string one = join_path(dir, "one.jsonl"), two = join_path(dir, "two.jsonl");
  const std::string score = " score --model " + shell_quote(model) + " --data " + shell_quote(in) + " --threads 1 --output ";
  ASSERT_EQ(run_bounded(bin + score + shell_quote(one), {}, 60, &out), 0) << out;
  ASSERT_EQ(run_bounded(bin + " launch --nproc-per-node 2 -- " + bin + score + shell_quote(two), {}, 60, &out), 0) << out;
  auto a = read_rows(one), b = read_rows(two);
  ASSERT_EQ(a.size(), 61u);
  ASSERT_EQ(a.size(), b.size());
  size_t scored = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["id"], b[i]["id"]) << "row " << i << " out of order";
    if (a[i]["reward_chosen"].is_null()) {
      EXPECT_TRUE(b[i]["reward_chosen"].is_null()) << i;
      continue;
    }
    ++scored;
    EXPECT_NEAR(a[i]["reward_chosen"].get<double>(), b[i]["reward_chosen"].get<double>(), 1e-5) << i;
    EXPECT_NEAR(a[i]["reward_rejected"].get<double>(), b[i]["reward_rejected"].get<double>(), 1e-5) << i;
  }
  EXPECT_EQ(scored, 60u);
  // eval: the same accuracy and pair count, one eval.json written (by rank 0)
  const std::string e1 = join_path(dir, "eval1"), e2 = join_path(dir, "eval2");
  const std::string ev = " eval --model " + shell_quote(model) + " --data " + shell_quote(data) + " --threads 1 --output ";
  ASSERT_EQ(run_bounded(bin + ev + shell_quote(e1), {}, 60, &out), 0) << out;
  ASSERT_EQ(run_bounded(bin + " launch --nproc-per-node 2 -- " + bin + ev + shell_quote(e2), {}, 60, &out), 0) << out;
  auto j1 = nlohmann::json::parse(read_file(join_path(e1, "eval.json")));
  auto j2 = nlohmann::json::parse(read_file(join_path(e2, "eval.json")));
  EXPECT_EQ(j1["n_pairs"], j2["n_pairs"]);
  EXPECT_NEAR(j1["accuracy"]["overall"]["acc"].get<double>(), j2["accuracy"]["overall"]["acc"].get<double>(), 1e-12);
}

}  // namespace
}  // namespace rmkit::testing::dist
