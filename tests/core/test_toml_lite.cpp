// Flat TOML option files: values against hand-written expectations, the errors' file:line, and
// JSON/TOML configs giving the same options.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/options.h"
#include "rmkit/core/toml_lite.h"
#include "test_util.h"

namespace rmkit {
namespace {

TEST(TomlLite, ScalarsStringsAndArrays) {
  const std::string text =
      "# run config\n"
      "model = \"models/base\"   # trailing comment\n"
      "lr = 1e-5\n"
      "warmup-ratio = 0.03\n"
      "max_steps = 1_000\n"
      "neg = -42\n"
      "hex = 0xff\n"
      "bf16 = true\n"
      "skip-bad = false\n"
      "literal = 'C:\\path\\no escapes'\n"
      "escaped = \"tab\\tquote\\\" \\u00e9\\U0001F600\"\n"
      "\"quoted key\" = 1.5\n"
      "data = [\n  \"a.jsonl\", # first\n  'b.jsonl.gz',\n]\n"
      "multi = \"\"\"\nline one\nline two\"\"\"\n"
      "big = +inf\n";
  auto j = parse_toml_flat(text, "run.toml");
  EXPECT_EQ(j["model"], "models/base");
  EXPECT_DOUBLE_EQ(j["lr"].get<double>(), 1e-5);
  EXPECT_DOUBLE_EQ(j["warmup-ratio"].get<double>(), 0.03);
  EXPECT_EQ(j["max_steps"].get<long long>(), 1000);
  EXPECT_EQ(j["neg"].get<long long>(), -42);
  EXPECT_EQ(j["hex"].get<long long>(), 255);
  EXPECT_EQ(j["bf16"], true);
  EXPECT_EQ(j["skip-bad"], false);
  EXPECT_EQ(j["literal"], "C:\\path\\no escapes");
  EXPECT_EQ(j["escaped"], "tab\tquote\" \xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_DOUBLE_EQ(j["quoted key"].get<double>(), 1.5);
  ASSERT_TRUE(j["data"].is_array());
  EXPECT_EQ(j["data"], nlohmann::json::array({"a.jsonl", "b.jsonl.gz"}));
  EXPECT_EQ(j["multi"], "line one\nline two");
  EXPECT_TRUE(std::isinf(j["big"].get<double>()));
}

void expect_error(const std::string& text, const std::string& where, const std::string& what) {
  try {
    parse_toml_flat(text, "cfg.toml");
    ADD_FAILURE() << "no error for: " << text;
  } catch (const FormatError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(where), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  }
}

TEST(TomlLite, ErrorsNameFileLineAndProblem) {
  expect_error("a = 1\n[train]\nlr = 1\n", "cfg.toml:2:", "tables");
  expect_error("a = 1\nb 2\n", "cfg.toml:2:", "expected '='");
  expect_error("a = \"open\n", "cfg.toml:1:", "newline inside");
  expect_error("a = 1\n\na = 2\n", "cfg.toml:3:", "defined twice");
  expect_error("a = yes\n", "cfg.toml:1:", "got 'yes'");
  expect_error("a = 1 2\n", "cfg.toml:1:", "end of the line");
  expect_error("a = [1, 2\n", "cfg.toml:", "unterminated array");
  expect_error("a = 012\n", "cfg.toml:1:", "leading zero");
  expect_error("a = \"\\q\"\n", "cfg.toml:1:", "invalid escape");
  expect_error("x.y = 1\n", "cfg.toml:1:", "dotted keys");
  expect_error("a = {b = 1}\n", "cfg.toml:1:", "inline tables");
}

TEST(TomlLite, TomlAndJsonConfigsGiveTheSameOptions) {
  std::vector<OptionSpec> specs = {
      {"lr", OptKind::Float, "1e-5", "learning rate"},
      {"max-steps", OptKind::Int, "0", "steps"},
      {"bf16", OptKind::Flag, "false", "bf16"},
      {"data", OptKind::String, "", "files", false, true},
      {"loss", OptKind::String, "bt", "loss"},
  };
  std::string dir = testing::temp_dir("toml_cfg");
  std::string toml = join_path(dir, "run.toml"), json = join_path(dir, "run.json");
  write_file_atomic(toml, "lr = 3e-4\nmax_steps = 20\nbf16 = true\ndata = [\"a.jsonl\", \"b.jsonl\"]\nloss = \"bt:1,dpo:0.2\"\n");
  write_file_atomic(json, R"({"lr": 3e-4, "max_steps": 20, "bf16": true, "data": ["a.jsonl", "b.jsonl"], "loss": "bt:1,dpo:0.2"})");
  auto a = Options::parse({"--config", toml}, specs);
  auto b = Options::parse({"--config", json}, specs);
  for (auto* o : {&a, &b}) {
    EXPECT_DOUBLE_EQ(o->number("lr"), 3e-4);
    EXPECT_EQ(o->integer("max-steps"), 20);
    EXPECT_TRUE(o->flag("bf16"));
    EXPECT_EQ(o->list("data"), (std::vector<std::string>{"a.jsonl", "b.jsonl"}));
    EXPECT_EQ(o->str("loss"), "bt:1,dpo:0.2");
  }
  // the command line overrides the file
  auto c = Options::parse({"--config", toml, "--lr", "0.01"}, specs);
  EXPECT_DOUBLE_EQ(c.number("lr"), 0.01);
  // a bad TOML file is a usage error naming file:line
  write_file_atomic(toml, "lr = 3e-4\nmax_steps = twenty\n");
  try {
    Options::parse({"--config", toml}, specs);
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("run.toml:2:"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmkit
