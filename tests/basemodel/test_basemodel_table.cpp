// Model tables: CSV with '#' comments and quoted cells, JSONL, missing cells, file:line:column
// errors for bad cells, the outer join with its report; the Jensen-Shannon distance with its
// stated binning on hand-computed histograms.
#include <gtest/gtest.h>

#include <cmath>

#include "rmkit/basemodel/divergence.h"
#include "rmkit/basemodel/table.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace rmkit::basemodel {
namespace {

TEST(BasemodelTable, CsvWithCommentsQuotesAndMissingCells) {
  Table t = parse_csv("# a comment\nmodel,x,note,y\n# another\nm1,1.5,\"a, b\",2\nm2,,\"say \"\"hi\"\"\",NA\n", "t.csv");
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"model", "x", "note", "y"}));
  EXPECT_EQ(t.comments.size(), 2u);
  EXPECT_EQ(t.cells[0][2], "a, b");
  EXPECT_EQ(t.cells[1][2], "say \"hi\"");
  EXPECT_EQ(*t.number(0, 1), 1.5);
  EXPECT_FALSE(t.number(1, 1).has_value());  // empty cell
  EXPECT_FALSE(t.number(1, 3).has_value());  // NA
  EXPECT_TRUE(t.is_numeric(1));
  EXPECT_FALSE(t.is_numeric(2));
  EXPECT_EQ(t.line[1], 5u);
}

TEST(BasemodelTable, BadCellsGiveFileLineColumn) {
  Table t = parse_csv("model,x,y\nm1,1,2\nm2,3,abc\n", "scores.csv");
  try {
    t.number(1, 2);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("scores.csv:3:6: column 'y': expected a number, got 'abc'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(parse_csv("model,x\nm1,1,2\n", "short.csv"), FormatError);  // wrong cell count
  try {
    parse_csv("model,x\nm1,\"open\n", "q.csv");
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("q.csv:2:4"), std::string::npos) << e.what();
  }
}

TEST(BasemodelTable, JsonlRowsAndErrors) {
  const std::string dir = testing::temp_dir("bm_table");
  const std::string p = join_path(dir, "t.jsonl");
  write_file_atomic(p, "{\"model\": \"a\", \"x\": 1, \"y\": null}\n\n{\"model\": \"b\", \"x\": \"oops\", \"z\": 2.5}\n");
  Table t = read_table(p);
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.columns, (std::vector<std::string>{"model", "x", "y", "z"}));
  EXPECT_FALSE(t.number(0, 2).has_value());
  EXPECT_FALSE(t.number(0, 3).has_value());  // key absent = missing
  EXPECT_EQ(*t.number(1, 3), 2.5);
  try {
    t.number(1, 1);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl:3:21: column 'x'"), std::string::npos) << e.what();
  }
}

TEST(BasemodelTable, MergeJoinsOnNameAndReports) {
  Table a = parse_csv("model,x,avg\nm1,1,5\nm2,2,6\nm3,3,7\n", "/d/a.csv");
  Table b = parse_csv("model,y,avg\nm2,20,60\nm4,40,80\n", "/d/b.csv");
  MergeReport rep;
  Table m = merge_tables({a, b}, "model", &rep);
  EXPECT_EQ(m.columns, (std::vector<std::string>{"model", "x", "avg", "y", "avg.b"}));
  ASSERT_EQ(m.rows(), 4u);
  EXPECT_EQ(m.cells[1], (std::vector<std::string>{"m2", "2", "6", "20", "60"}));
  EXPECT_EQ(m.cells[3], (std::vector<std::string>{"m4", "", "", "40", "80"}));
  EXPECT_EQ(rep.in_one_table_only, (std::vector<std::string>{"m1", "m3", "m4"}));
  EXPECT_EQ(rep.missing_from[0], (std::vector<std::string>{"m4"}));
  EXPECT_EQ(rep.missing_from[1], (std::vector<std::string>{"m1", "m3"}));
  ASSERT_EQ(rep.renamed.size(), 1u);
  // CSV round trip
  Table back = parse_csv(to_csv(m), "m.csv");
  EXPECT_EQ(back.cells, m.cells);
  EXPECT_THROW(merge_tables({parse_csv("model,x\nm1,1\nm1,2\n", "dup.csv")}, "model", nullptr), FormatError);
  // a bad cell of a merged table is reported where it came from
  Table c = parse_csv("model,z\nm2,oops\n", "/d/c.csv");
  Table m2 = merge_tables({a, c}, "model", nullptr);
  try {
    m2.number(1, m2.index("z"));
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("/d/c.csv:2:4: column 'z'"), std::string::npos) << e.what();
  }
}

TEST(BasemodelJsd, HandComputedHistograms) {
  // identical samples: 0
  auto r = jensen_shannon({1, 2, 3}, {1, 2, 3}, 4);
  EXPECT_NEAR(r.distance, 0, 1e-12);
  // disjoint supports: divergence 1 bit, distance 1
  r = jensen_shannon({0, 0.1}, {0.95, 1}, 10);
  EXPECT_NEAR(r.divergence, 1, 1e-12);
  EXPECT_NEAR(r.distance, 1, 1e-12);
  // P = (1/2, 1/2), Q = (1, 0) on 2 bins over [0, 1]: M = (3/4, 1/4)
  r = jensen_shannon({0, 1}, {0, 0.2}, 2);
  const double kl_pm = 0.5 * std::log2(0.5 / 0.75) + 0.5 * std::log2(0.5 / 0.25), kl_qm = std::log2(1 / 0.75);
  EXPECT_NEAR(r.divergence, 0.5 * (kl_pm + kl_qm), 1e-12);
  EXPECT_NEAR(r.distance, std::sqrt(0.5 * (kl_pm + kl_qm)), 1e-12);
  EXPECT_EQ(r.p, (std::vector<double>{0.5, 0.5}));  // the maximum lands in the last bin
  EXPECT_THROW(jensen_shannon({}, {1}, 3), UsageError);
}

}  // namespace
}  // namespace rmkit::basemodel
