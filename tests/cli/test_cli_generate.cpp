// rmkit generate on the engine: --input rows written back with --n completions each; greedy
// samples of one prompt agree, seeded sampling is reproducible, stop strings cut the text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rmkit/core/file_io.h"
#include "test_util.h"

namespace {

using rmkit::testing::asset;
using rmkit::testing::run_rmkit;
using rmkit::testing::shell_quote;

std::string base_args() {
  return "generate --model " + shell_quote(asset("models/stories260K/stories260K.bin")) + " --tokenizer " +
         shell_quote(asset("models/stories260K/tok512.model"));
}

std::vector<nlohmann::json> rows_of(const std::string& text) {
  std::vector<nlohmann::json> v;
  size_t at = 0, nl;
  while ((nl = text.find('\n', at)) != std::string::npos) {
    if (nl > at) v.push_back(nlohmann::json::parse(text.substr(at, nl - at)));
    at = nl + 1;
  }
  return v;
}

TEST(CliGenerate, InputRowsGetNCompletions) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  const std::string dir = rmkit::testing::temp_dir("cli_generate");
  const std::string in = dir + "/prompts.jsonl", out = dir + "/out.jsonl";
  rmkit::write_file_atomic(in, "{\"id\": \"a\", \"prompt\": \"Once upon a time\"}\n\n{\"id\": \"b\", \"prompt\": \"Lily\"}\n");
  auto r = run_rmkit(base_args() + " --input " + in + " --output " + out + " --n 3 --max-new-tokens 12 --temperature 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = rows_of(rmkit::read_file(out));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["id"], "a");
  EXPECT_EQ(rows[1]["id"], "b");
  for (const auto& row : rows) {
    ASSERT_EQ(row["completions"].size(), 3u);
    EXPECT_EQ(row["completions"][0], row["completions"][1]);  // greedy: every sample the same
    EXPECT_EQ(row["finish_reasons"][0], "length");
  }
  // the single-prompt form prints the same text as the first row's completion
  auto single = run_rmkit(base_args() + " --prompt 'Once upon a time' --max-new-tokens 12");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_EQ(single.out, rows[0]["completions"][0].get<std::string>() + "\n");
  // seeded sampling: reproducible, and the samples differ
  const std::string sampled = base_args() + " --input " + in + " --n 3 --max-new-tokens 12 --temperature 1 --seed 9";
  auto s1 = run_rmkit(sampled), s2 = run_rmkit(sampled);
  ASSERT_EQ(s1.exit_code, 0) << s1.err;
  EXPECT_EQ(s1.out, s2.out);
  auto srows = rows_of(s1.out);
  EXPECT_NE(srows[0]["completions"][0], srows[0]["completions"][1]);
  // a stop string ends the text before it
  const std::string full = rows[0]["completions"][0];
  const std::string stop = full.substr(full.size() / 2, 3);
  auto st = run_rmkit(base_args() + " --prompt 'Once upon a time' --max-new-tokens 12 --stop " + shell_quote(stop));
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_EQ(st.out, full.substr(0, full.find(stop)) + "\n");
  // bad input names the file and line
  rmkit::write_file_atomic(in, "{\"prompt\": 5}\n");
  auto bad = run_rmkit(base_args() + " --input " + in);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("prompts.jsonl:1"), std::string::npos) << bad.err;
}

}  // namespace
