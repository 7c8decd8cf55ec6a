// Presence score of stories260K against an independent computation from the model's full logits
// (one unpadded forward per text, log-softmax in double): equal to 1e-5 whatever the batching and
// padding, with truncation to N tokens, and per-group means.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>

#include "rmkit/basemodel/presence.h"
#include "rmkit/model/checkpoint.h"
#include "test_util.h"

namespace rmkit::basemodel {
namespace {

using testing::asset;

// (1/(T-1)) sum_{t>=1} log softmax(logits[t-1])[ids[t]] for ids = [BOS] + first n tokens.
double reference_presence(model::CausalLMImpl& lm, const text::Tokenizer& tok, const std::string& text, size_t n) {
  auto ids = tok.encode(text, false, false);
  if (ids.size() > n) ids.resize(n);
  ids.insert(ids.begin(), tok.bos_id());
  auto t = torch::zeros({1, static_cast<int64_t>(ids.size())}, torch::kLong);
  for (size_t i = 0; i < ids.size(); ++i) t[0][static_cast<int64_t>(i)] = ids[i];
  torch::NoGradGuard ng;
  model::ForwardInput in;
  in.input_ids = t;
  auto logits = lm.forward(in).to(torch::kDouble).contiguous();  // [1, T, V]
  auto acc = logits.accessor<double, 3>();
  const int64_t V = logits.size(2);
  double total = 0;
  for (size_t pos = 1; pos < ids.size(); ++pos) {
    const int64_t row = static_cast<int64_t>(pos) - 1;
    double mx = -1e300;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, acc[0][row][v]);
    double se = 0;
    for (int64_t v = 0; v < V; ++v) se += std::exp(acc[0][row][v] - mx);
    total += acc[0][row][ids[pos]] - mx - std::log(se);
  }
  return total / static_cast<double>(ids.size() - 1);
}

TEST(BasemodelPresence, MatchesFullLogitsOnStories260K) {
  RMKIT_REQUIRE_ASSET(asset("models/stories260K/stories260K.bin"));
  auto lm = model::load_pretrained(asset("models/stories260K/stories260K.bin"), asset("models/stories260K/tok512.model"));
  ASSERT_TRUE(lm.tokenizer);
  ASSERT_GE(lm.tokenizer->bos_id(), 0);
  const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
      "The cat sat.",
      "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, "
      "\"I want to play with your ball, but I can't find it.\"",
      "zq xv kkk",
      "Tom had a big red ball.",
  };
  const std::vector<std::string> groups = {"story", "story", "story", "noise", "story"};
  PresenceOptions po;
  po.batch_size = 3;  // batches of different lengths: padding in every batch
  po.progress = false;
  auto r = presence_scores(*lm.model, *lm.tokenizer, texts, groups, po);
  EXPECT_EQ(r.max_tokens, 511);  // capped at seq_len 512 - 1
  ASSERT_EQ(r.docs.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const double ref = reference_presence(*lm.model, *lm.tokenizer, texts[i], 1u << 20);
    EXPECT_NEAR(r.docs[i].presence, ref, 1e-5) << texts[i];
    EXPECT_EQ(r.docs[i].tokens, static_cast<int64_t>(lm.tokenizer->encode(texts[i]).size()));
    EXPECT_LT(r.docs[i].presence, 0);
  }
  // the model has seen stories, not letter noise
  EXPECT_GT(r.docs[0].presence, r.docs[3].presence + 1.0);
  double story = 0;
  for (size_t i : {0, 1, 2, 4}) story += r.docs[i].presence / 4;
  EXPECT_NEAR(r.groups["story"].first, story, 1e-12);
  EXPECT_EQ(r.groups["story"].second, 4u);
  EXPECT_NEAR(r.groups["noise"].first, r.docs[3].presence, 1e-12);
  // the first N tokens only
  po.max_tokens = 6;
  auto r6 = presence_scores(*lm.model, *lm.tokenizer, texts, groups, po);
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_NEAR(r6.docs[i].presence, reference_presence(*lm.model, *lm.tokenizer, texts[i], 6), 1e-5) << texts[i];
    EXPECT_LE(r6.docs[i].tokens, 6);
  }
  EXPECT_TRUE(r6.docs[0].truncated);
}

}  // namespace
}  // namespace rmkit::basemodel
