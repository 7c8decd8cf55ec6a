// Prompt-only rows ({"prompt": str | messages}) read by distill and laser.
#include <gtest/gtest.h>

#include "rmkit/core/error.h"
#include "rmkit/data/prompt_rows.h"

namespace rmkit::data {
namespace {

using json = nlohmann::json;

TEST(PromptRows, StringAndMessageListPrompts) {
  auto c = parse_prompt_field(json{{"prompt", "Hi?"}}, "f:1");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].role, "user");
  EXPECT_EQ(c[0].content, "Hi?");
  c = parse_prompt_field(json::parse(R"({"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]})"), "f:2");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].content, "U");
}

TEST(PromptRows, BadPromptsNameFileLineAndField) {
  auto msg = [](const json& row) {
    try {
      parse_prompt_field(row, "in.jsonl:7");
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(msg(json{{"text", "x"}}), "in.jsonl:7: field 'prompt': missing (expected a string or a message list)");
  EXPECT_EQ(msg(json{{"prompt", json::array()}}), "in.jsonl:7: field 'prompt': expected a string or a non-empty message list");
  EXPECT_EQ(msg(json{{"prompt", 3}}), "in.jsonl:7: field 'prompt': expected a string or a non-empty message list");
  EXPECT_EQ(msg(json::parse(R"({"prompt": [{"role": "user"}]})")), "in.jsonl:7: field 'prompt': expected a string or [{role, content}...]");
}

}  // namespace
}  // namespace rmkit::data
