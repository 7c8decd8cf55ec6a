#include <gtest/gtest.h>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/options.h"
#include "test_util.h"

using rmkit::OptKind;
using rmkit::Options;

static const std::vector<rmkit::OptionSpec> kSpecs = {
    {"model", OptKind::String, "", "model dir", true},
    {"steps", OptKind::Int, "10", "steps"},
    {"lr", OptKind::Float, "1e-5", "learning rate"},
    {"bf16", OptKind::Flag, "", "autocast"},
    {"data", OptKind::String, "", "files", false, true},
};

TEST(Options, ParsesDefaultsFlagsAndLists) {
  auto o = Options::parse({"--model", "m", "--bf16", "--data", "a", "b", "--steps=3"}, kSpecs);
  EXPECT_EQ(o.str("model"), "m");
  EXPECT_EQ(o.integer("steps"), 3);
  EXPECT_DOUBLE_EQ(o.number("lr"), 1e-5);
  EXPECT_TRUE(o.flag("bf16"));
  EXPECT_EQ(o.list("data"), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(o.given("lr"));
  auto eff = o.effective();
  EXPECT_EQ(eff["steps"], 3);
  EXPECT_EQ(eff["bf16"], true);
}

TEST(Options, RejectsBadInputWithNamedOption) {
  try {
    Options::parse({"--model", "m", "--steps", "x"}, kSpecs);
    FAIL();
  } catch (const rmkit::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--steps"), std::string::npos);
  }
  EXPECT_THROW(Options::parse({"--nope"}, kSpecs), rmkit::UsageError);
  EXPECT_THROW(Options::parse({}, kSpecs), rmkit::UsageError);  // --model required
}

TEST(Options, ChoiceAcceptsListedValuesAndNamesTheOthers) {
  auto o = Options::parse({"--model", "on"}, kSpecs);
  EXPECT_EQ(o.choice("model", {"auto", "on", "off"}), "on");
  try {
    o.choice("model", {"auto", "off"});
    FAIL();
  } catch (const rmkit::UsageError& e) {
    EXPECT_STREQ(e.what(), "--model: expected auto or off, got 'on'");
  }
  try {
    Options::parse({"--model", "x"}, kSpecs).choice("model", {"a", "b", "c"});
    FAIL();
  } catch (const rmkit::UsageError& e) {
    EXPECT_STREQ(e.what(), "--model: expected a, b or c, got 'x'");
  }
}

TEST(Options, ConfigFileSuppliesKeysAndCliOverrides) {
  std::string dir = rmkit::testing::temp_dir("opts");
  std::string cfg = dir + "/c.json";
  rmkit::write_file_atomic(cfg, R"({"model":"from_cfg","steps":7,"bf16":true,"data":["x","y"]})");
  auto o = Options::parse({"--config", cfg, "--steps", "9"}, kSpecs);
  EXPECT_EQ(o.str("model"), "from_cfg");
  EXPECT_EQ(o.integer("steps"), 9);
  EXPECT_TRUE(o.flag("bf16"));
  EXPECT_EQ(o.list("data").size(), 2u);
  rmkit::write_file_atomic(cfg, R"({"modle":"typo"})");
  EXPECT_THROW(Options::parse({"--config", cfg}, kSpecs), rmkit::UsageError);
}

TEST(FileIo, AtomicWriterLeavesOldFileOnFailure) {
  std::string dir = rmkit::testing::temp_dir("io");
  std::string p = dir + "/out.txt";
  rmkit::write_file_atomic(p, "old");
  {
    rmkit::AtomicFileWriter w(p);
    w.write("new partial");
    // destroyed without commit (as on an exception)
  }
  EXPECT_EQ(rmkit::read_file(p), "old");
  EXPECT_THROW(rmkit::read_file(dir + "/missing"), rmkit::IoError);
}

TEST(FileIo, ReadsGzipLines) {
  std::string p = rmkit::asset_path("prefs/llmbar.jsonl.gz");
  RMKIT_REQUIRE_ASSET(p);
  size_t n = 0;
  rmkit::for_each_line(p, [&](const std::string& l, size_t) { n += !l.empty(); return true; });
  EXPECT_EQ(n, 885u);
}
