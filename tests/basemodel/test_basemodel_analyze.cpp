// analyze_table() directly: the two missing-value policies (features dropped vs rows dropped, both
// reported), pairwise-complete correlations, candidates that lack a selector feature, and
// leave-one-out folds.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "rmkit/basemodel/analyze.h"
#include "rmkit/basemodel/stats.h"
#include "rmkit/core/error.h"

namespace rmkit::basemodel {
namespace {

Table table_with_gaps() {
  std::string csv = "model,a,b,y\n";
  for (int i = 0; i < 12; ++i) {
    const double a = i, b = (i * 5) % 7, y = 2 * a + 0.5 * b + ((i * 3) % 4);
    csv += "m" + std::to_string(i) + "," + std::to_string(a) + "," + (i == 4 || i == 9 ? "" : std::to_string(b)) + "," +
           std::to_string(y) + "\n";
  }
  csv += "cand1,20,,\ncand2,3,1,\n";
  return parse_csv(csv, "gaps.csv");
}

AnalyzeOptions small_options() {
  AnalyzeOptions o;
  o.targets = {"y"};
  o.grid = make_grid({1}, {0.1, 0.01}, {0.5, 1});
  o.bootstrap = 50;
  o.folds = 4;
  o.threads = 1;
  return o;
}

TEST(BasemodelAnalyze, MissingCellPolicies) {
  Table t = table_with_gaps();
  AnalyzeOptions o = small_options();
  auto j = analyze_table(t, o);
  // default: b has 2 missing cells among the labelled rows -> dropped from the selector
  EXPECT_EQ(j["missing"]["dropped_features"]["b"], 2);
  EXPECT_EQ(j["selector_features"], nlohmann::json({"a"}));
  EXPECT_EQ(j["n"], 12);
  // correlations of b use the 10 rows where it exists
  EXPECT_EQ(j["correlations"]["b"]["y"]["n"], 10);
  std::vector<double> a, y;
  for (size_t r = 0; r < 12; ++r) a.push_back(*t.number(r, 1)), y.push_back(*t.number(r, 3));
  EXPECT_NEAR(j["correlations"]["a"]["y"]["pearson"].get<double>(), pearson(a, y), 1e-15);
  ASSERT_EQ(j["candidates"]["y"].size(), 2u);
  EXPECT_EQ(j["candidates"]["y"][0]["model"], "cand1");  // a = 20 ranks first
  // rows policy: the two rows without b are dropped, b is kept; cand1 lacks b -> not predicted
  o.missing = "rows";
  auto k = analyze_table(t, o);
  EXPECT_EQ(k["n"], 10);
  EXPECT_EQ(k["missing"]["dropped_rows"], nlohmann::json({"m4", "m9"}));
  EXPECT_EQ(k["selector_features"], nlohmann::json({"a", "b"}));
  ASSERT_EQ(k["candidates"]["y"].size(), 2u);
  EXPECT_EQ(k["candidates"]["y"][0]["model"], "cand2");
  EXPECT_TRUE(k["candidates"]["y"][1]["predicted"].is_null());
  EXPECT_EQ(k["folds"].size(), 10u);
  o.missing = "both";
  EXPECT_THROW(analyze_table(t, o), UsageError);
}

TEST(BasemodelAnalyze, LeaveOneOutFolds) {
  Table t = table_with_gaps();
  AnalyzeOptions o = small_options();
  o.loo = true;
  o.bootstrap = 0;
  auto j = analyze_table(t, o);
  std::set<int> folds;
  for (const auto& [m, f] : j["folds"].items()) folds.insert(f.get<int>());
  EXPECT_EQ(folds.size(), 12u);  // one row per fold
  EXPECT_EQ(j["nested_cv"]["y"]["folds"].size(), 12u);
  EXPECT_FALSE(j["correlations"]["a"]["y"].contains("pearson_ci"));  // --bootstrap 0
}

}  // namespace
}  // namespace rmkit::basemodel
