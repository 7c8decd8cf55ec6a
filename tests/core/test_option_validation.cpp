// Option values are checked at parse time against the constraint in their OptionSpec (issue 18):
// numeric ranges with open/closed ends, finite floats, integer overflow, choices, and a --threads
// bound tied to the machine's cores; the command line and --config files alike.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/options.h"
#include "test_util.h"

namespace rmkit {
namespace {

const std::vector<OptionSpec> kSpecs = {
    {"count", OptKind::Int, "1", "a count", false, false, "[1,)"},
    {"keep", OptKind::Int, "0", "kept", false, false, "[0,)"},
    {"frac", OptKind::Float, "0.05", "a fraction", false, false, "[0,1)"},
    {"top-p", OptKind::Float, "1", "mass", false, false, "(0,1]"},
    {"lr", OptKind::Float, "1e-5", "learning rate", false, false, "(0,)"},
    {"shift", OptKind::Float, "0", "any finite number"},
    {"big", OptKind::Int, "0", "any integer"},
    {"dtype", OptKind::String, "float32", "dtype", false, false, "float32|bfloat16|float16"},
    {"threads", OptKind::Int, "0", "threads"},
};

std::string usage_error(const std::vector<std::string>& args) {
  try {
    Options::parse(args, kSpecs);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(OptionValidation, RangesAreCheckedWithTheirEnds) {
  EXPECT_EQ(usage_error({"--count", "1", "--keep", "0", "--frac", "0", "--top-p", "1", "--lr", "3"}), "");
  EXPECT_EQ(usage_error({"--count", "0"}), "--count: expected an integer >= 1, got '0'");
  EXPECT_EQ(usage_error({"--keep", "-1"}), "--keep: expected an integer >= 0, got '-1'");
  EXPECT_EQ(usage_error({"--frac", "1"}), "--frac: expected a number in [0, 1), got '1'");
  EXPECT_EQ(usage_error({"--top-p", "0"}), "--top-p: expected a number in (0, 1], got '0'");
  EXPECT_EQ(usage_error({"--lr", "0"}), "--lr: expected a number > 0, got '0'");
  EXPECT_EQ(usage_error({"--lr", "-1e-3"}), "--lr: expected a number > 0, got '-1e-3'");
}

TEST(OptionValidation, FloatsMustBeFiniteAndIntegersMustFit) {
  for (const char* v : {"nan", "NaN", "inf", "-inf", "1e400"})
    EXPECT_NE(usage_error({"--shift", v}).find("--shift: expected a finite number"), std::string::npos) << v;
  EXPECT_EQ(usage_error({"--shift", "-12.5"}), "");
  EXPECT_NE(usage_error({"--big", "99999999999999999999"}).find("out of range"), std::string::npos);
  EXPECT_NE(usage_error({"--big", "-99999999999999999999"}).find("out of range"), std::string::npos);
  EXPECT_EQ(Options::parse({"--big", "9223372036854775807"}, kSpecs).integer("big"), 9223372036854775807LL);
}

TEST(OptionValidation, ChoicesAreCheckedAtParseTime) {
  EXPECT_EQ(Options::parse({"--dtype", "bfloat16"}, kSpecs).str("dtype"), "bfloat16");
  EXPECT_EQ(usage_error({"--dtype", "float64"}), "--dtype: expected float32, bfloat16 or float16, got 'float64'");
}

TEST(OptionValidation, ThreadsAreBoundedByTheCores) {
  const long long cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(usage_error({"--threads", std::to_string(cores)}), "");
  EXPECT_NE(usage_error({"--threads", "100000"}).find("--threads"), std::string::npos);
  EXPECT_NE(usage_error({"--threads", "-1"}).find("--threads"), std::string::npos);
}

TEST(OptionValidation, ConfigFileValuesAreCheckedToo) {
  std::string dir = testing::temp_dir("optval");
  std::string cfg = join_path(dir, "c.json");
  write_file_atomic(cfg, "{\"frac\": 2}");
  std::string err = usage_error({"--config", cfg});
  EXPECT_NE(err.find(cfg), std::string::npos) << err;
  EXPECT_NE(err.find("--frac: expected a number in [0, 1)"), std::string::npos) << err;
  write_file_atomic(cfg, "{\"dtype\": \"int8\"}");
  EXPECT_NE(usage_error({"--config", cfg}).find("--dtype"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(OptionValidation, HelpShowsTheRange) {
  std::string h = Options::help_text("x", "y", kSpecs);
  EXPECT_NE(h.find("[default: 0.05] (in [0, 1))"), std::string::npos) << h;
}

}  // namespace
}  // namespace rmkit
