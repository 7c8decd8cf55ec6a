// The generation engine against independent references: the static-batch generate() and
// teacher-forced full forwards of stories260K.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include "rmkit/model/checkpoint.h"
#include "rmkit/model/generate.h"
#include "rmkit/serve/engine.h"
#include "rmkit/serve/http_error.h"
#include "test_util.h"

namespace rmkit::serve {
namespace {

using Clock = std::chrono::steady_clock;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lm = model::load_pretrained(testing::asset("models/stories260K/stories260K.bin"),
                                     testing::asset("models/stories260K/tok512.model"));
    model_ = lm.model;
    tok_ = std::shared_ptr<text::Tokenizer>(std::move(lm.tokenizer));
  }
  std::unique_ptr<Engine> engine(EngineConfig c = {}) { return std::make_unique<Engine>(model_, tok_, c); }
  std::vector<int32_t> enc(const std::string& s) { return tok_->encode(s, true, false); }
  torch::Tensor teacher_forced(const std::vector<int32_t>& prompt, const std::vector<int32_t>& cont) {
    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    ids.insert(ids.end(), cont.begin(), cont.end());
    torch::NoGradGuard ng;
    model::ForwardInput in;
    in.input_ids = torch::tensor(ids).view({1, -1});
    return model_->forward(in)[0];
  }
  model::CausalLMPtr model_;
  std::shared_ptr<text::Tokenizer> tok_;
};

SamplingParams greedy(int64_t n_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = n_tokens;
  return p;
}

TEST_F(EngineTest, GreedyEqualsStaticBatchGenerateAndGolden) {
  RMKIT_REQUIRE_ASSET(testing::asset("models/stories260K/stories260K.bin"));
  std::vector<std::vector<int32_t>> prompts = {{1}, enc("Once upon a time"), enc("Lily and Ben"), enc("The sun")};
  model::GenerationConfig g;
  g.max_new_tokens = 60;
  g.stop_ids = tok_->stop_ids();
  auto ref = model::generate(*model_, prompts, g);
  EngineConfig ec;
  ec.prefill_chunk = 3;  // prompts arrive in chunks beside running decodes
  auto e = engine(ec);
  auto out = e->generate_many(prompts, std::vector<SamplingParams>(prompts.size(), greedy(60)));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(out[i][0].tokens, ref[i]) << "prompt " << i;
  // 200 greedy steps from BOS reproduce the llama2.c golden text
  auto golden = e->generate_many({{1}}, {greedy(200)})[0][0];
  std::string expected = read_file(testing::asset("models/stories260K/expected_greedy_200steps.txt"));
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == ' ')) expected.pop_back();
  std::string got = golden.text;
  while (!got.empty() && (got.back() == '\n' || got.back() == ' ')) got.pop_back();
  EXPECT_EQ(got, expected);
  EXPECT_EQ(e->stats().kv_bytes_reserved, 0);
}

TEST_F(EngineTest, SeededOutputIndependentOfBatchAndNSharesThePrompt) {
  RMKIT_REQUIRE_ASSET(testing::asset("models/stories260K/stories260K.bin"));
  SamplingParams p;
  p.temperature = 0.9;
  p.top_p = 0.95;
  p.top_k = 40;
  p.max_tokens = 40;
  p.seed = 1234;
  const auto prompt = enc("Once upon a time there was a little girl named Lily. She liked to");
  std::vector<int32_t> alone;
  {
    auto e = engine();
    alone = e->generate_many({prompt}, {p})[0][0].tokens;
  }
  // the same request among 15 others that run concurrently
  auto e = engine();
  std::vector<std::shared_ptr<GenHandle>> others;
  for (int i = 0; i < 15; ++i) {
    SamplingParams q = p;
    q.seed = 99 + i;
    q.max_tokens = 20 + i * 3;
    others.push_back(e->submit(enc("Tom had a big red ball number " + std::to_string(i)), q));
  }
  auto mine = e->submit(prompt, p);
  ASSERT_TRUE(mine->wait(Clock::now() + std::chrono::seconds(120)));
  for (auto& h : others) ASSERT_TRUE(h->wait(Clock::now() + std::chrono::seconds(120)));
  EXPECT_EQ(mine->results[0].tokens, alone);
  EXPECT_GT(e->stats().steps, 0);

  // n = 4 with seed s == 4 separate requests with seeds s..s+3; the prompt is computed once
  const int64_t before = e->stats().prompt_tokens_computed;
  SamplingParams pn = p;
  pn.n = 4;
  auto together = e->generate_many({prompt}, {pn})[0];
  EXPECT_EQ(e->stats().prompt_tokens_computed - before, static_cast<int64_t>(prompt.size()));
  ASSERT_EQ(together.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    SamplingParams one = p;
    one.seed = 1234 + i;
    auto sep = e->generate_many({prompt}, {one})[0][0];
    EXPECT_EQ(together[static_cast<size_t>(i)].tokens, sep.tokens) << "sample " << i;
  }
  EXPECT_NE(together[0].tokens, together[1].tokens);
  EXPECT_EQ(e->stats().kv_bytes_reserved, 0);
}

TEST_F(EngineTest, LogprobsEqualFullForwardLogSoftmax) {
  RMKIT_REQUIRE_ASSET(testing::asset("models/stories260K/stories260K.bin"));
  auto e = engine();
  SamplingParams p;
  p.temperature = 0.7;
  p.seed = 5;
  p.max_tokens = 30;
  p.logprobs = 5;
  const auto prompt = enc("The little dog");
  auto c = e->generate_many({prompt}, {p})[0][0];
  ASSERT_EQ(c.logprobs.size(), c.tokens.size());
  auto logits = teacher_forced(prompt, c.tokens);
  auto lsm = torch::log_softmax(logits.to(torch::kDouble), -1);
  for (size_t i = 0; i < c.tokens.size(); ++i) {
    auto row = lsm[static_cast<int64_t>(prompt.size() - 1 + i)];
    EXPECT_NEAR(c.logprobs[i].logprob, row[c.tokens[i]].item<double>(), 1e-4) << "step " << i;
    auto top = row.topk(5);
    ASSERT_EQ(c.logprobs[i].top.size(), 5u);
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(c.logprobs[i].top[k].first, std::get<1>(top)[k].item<int64_t>());
      EXPECT_NEAR(c.logprobs[i].top[k].second, std::get<0>(top)[k].item<double>(), 1e-4);
    }
  }
}

TEST_F(EngineTest, StopsOnStringsAcrossTokensLengthAndContext) {
  RMKIT_REQUIRE_ASSET(testing::asset("models/stories260K/stories260K.bin"));
  auto e = engine();
  const auto prompt = enc("Once upon a time");
  auto full = e->generate_many({prompt}, {greedy(80)})[0][0];
  ASSERT_EQ(full.finish_reason, "length");
  ASSERT_EQ(full.tokens.size(), 80u);
  // a stop string made of the end of one token's text and the start of the next one's: token
  // boundaries in the text from decoding prompt + the first k tokens
  const std::string ptext = tok_->decode(prompt, true);
  std::string stop;
  for (size_t k = 10; k + 1 < full.tokens.size() && stop.empty(); ++k) {
    std::vector<int32_t> head(prompt);
    head.insert(head.end(), full.tokens.begin(), full.tokens.begin() + static_cast<long>(k));
    const size_t b = tok_->decode(head, true).size() - ptext.size();
    if (b < 2 || b + 2 > full.text.size()) continue;
    const std::string cand = full.text.substr(b - 2, 4);
    if (std::all_of(cand.begin(), cand.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
      stop = cand;
  }
  SamplingParams ps = greedy(80);
  ps.stop = {stop};
  auto cut = e->generate_many({prompt}, {ps})[0][0];
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  // max_tokens
  auto short_one = e->generate_many({prompt}, {greedy(5)})[0][0];
  EXPECT_EQ(short_one.tokens.size(), 5u);
  EXPECT_EQ(short_one.finish_reason, "length");
  // the model's context (512): a 508-token prompt leaves 4 tokens
  std::vector<int32_t> longp = {1};
  while (longp.size() < 508) longp.push_back(full.tokens[longp.size() % full.tokens.size()]);
  auto ctx = e->generate_many({longp}, {greedy(100)})[0][0];
  EXPECT_EQ(ctx.tokens.size(), 4u);
  EXPECT_EQ(ctx.finish_reason, "length");
  EXPECT_THROW(e->submit(std::vector<int32_t>(512, 5), greedy(1)), HttpError);
}

TEST_F(EngineTest, CancelFreesMemoryAndTheQueueIsBounded) {
  RMKIT_REQUIRE_ASSET(testing::asset("models/stories260K/stories260K.bin"));
  EngineConfig ec;
  ec.max_queue = 2;
  ec.kv_cache_mb = 1;  // ~1000 tokens of this model's KV: one long request at a time
  auto e = engine(ec);
  SamplingParams p = greedy(450);
  p.ignore_eos = true;
  auto first = e->submit(enc("Once upon a time"), p, /*stream=*/true);
  GenEvent ev;
  ASSERT_TRUE(first->next_event(&ev, Clock::now() + std::chrono::seconds(30)));
  EXPECT_GT(e->stats().kv_bytes_reserved, 0);
  auto w1 = e->submit(enc("Lily"), p), w2 = e->submit(enc("Ben"), p);  // wait: no memory left
  try {
    e->submit(enc("Tom"), p);
    ADD_FAILURE() << "a third waiting request was accepted";
  } catch (const HttpError& err) {
    EXPECT_EQ(err.status, 503);
  }
  first->cancel();
  w1->cancel();
  w2->cancel();
  for (int i = 0; i < 200 && (e->stats().kv_bytes_reserved > 0 || e->stats().running > 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(e->stats().kv_bytes_reserved, 0);
  EXPECT_EQ(e->stats().running, 0);
  // and it serves normally afterwards
  auto after = e->generate_many({enc("Once")}, {greedy(5)})[0][0];
  EXPECT_EQ(after.tokens.size(), 5u);
}

}  // namespace
}  // namespace rmkit::serve
