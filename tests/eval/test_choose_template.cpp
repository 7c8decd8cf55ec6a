// eval::choose_template: the template scoring uses is the one training saved in rmkit.json
// (a built-in name or a custom format), unless --chat-template overrides it.
#include <gtest/gtest.h>

#include <string>

#include "rmkit/eval/scorer.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"
#include "test_util.h"

namespace {

using rmkit::text::ChatTemplate;

TEST(ChooseTemplate, SavedSpecRebuildsTheTrainingTemplate) {
  const std::string tok_path = rmkit::testing::asset("models/stories260K/tok512.bin");
  RMKIT_REQUIRE_ASSET(tok_path);
  auto tok = rmkit::text::load_tokenizer(tok_path);
  rmkit::model::ModelConfig cfg;
  cfg.model_type = "llama";
  const rmkit::text::Conversation conv = {{"user", "hi"}};

  // a custom format saved by training renders exactly as at training time
  const std::string fmt = "### {role}:\n{content}\n";
  auto custom = rmkit::eval::choose_template(cfg, *tok, ChatTemplate::from_string(fmt).spec(), "");
  EXPECT_EQ(custom.name(), "custom");
  EXPECT_EQ(custom.render_prompt(conv), "### user:\nhi\n### assistant:\n");

  // built-in names, and the override winning over the saved spec
  EXPECT_EQ(rmkit::eval::choose_template(cfg, *tok, "chatml", "").name(), "chatml");
  EXPECT_EQ(rmkit::eval::choose_template(cfg, *tok, fmt, "plain").name(), "plain");
  // nothing saved, or the pre-format placeholder "custom": detected from the vocabulary
  // (tok512 has no chat markers -> plain)
  EXPECT_EQ(rmkit::eval::choose_template(cfg, *tok, "", "").name(), "plain");
  EXPECT_EQ(rmkit::eval::choose_template(cfg, *tok, "custom", "").name(), "plain");
}

}  // namespace
