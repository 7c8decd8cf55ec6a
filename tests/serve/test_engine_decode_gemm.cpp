// The generation engine with its decode-step linears on oneDNN (model/decode_gemm.h), on models
// whose weights are big enough to take that path (stories260K's are not): 8 concurrent greedy
// sequences, each chosen token checked against a teacher-forced full forward computed outside the
// engine (torch's linears): log-probs to 1e-4 and every token the forward's argmax (up to ties
// within 1e-4). Llama (nn::Linear weights, k/v below the size threshold) and GPT-2 (Conv1D weights
// read in place, the tied LM head copied); and a seeded request alone equals the same request among
// 15 others.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "rmkit/model/decode_gemm.h"
#include "rmkit/model/registry.h"
#include "rmkit/serve/engine.h"
#include "rmkit/text/tokenizer.h"
#include "test_util.h"

namespace rmkit::serve {
namespace {

model::ModelConfig llama_256() {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 512},
                      {"hidden_size", 256}, {"intermediate_size", 512}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}};
  return model::ModelConfig::from_json(j, "llama-256");
}

model::ModelConfig gpt2_256() {
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", 512},
                      {"n_embd", 256}, {"n_layer", 2}, {"n_head", 4}, {"n_positions", 256},
                      {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"}};
  return model::ModelConfig::from_json(j, "gpt2-256");
}

void check_against_full_forward(const model::ModelConfig& cfg) {
  const auto tok_path = testing::asset("models/stories260K/tok512.model");
  RMKIT_REQUIRE_ASSET(tok_path);
  std::shared_ptr<text::Tokenizer> tok(text::load_tokenizer(tok_path).release());
  torch::manual_seed(11);
  auto model = model::create_model(cfg);
  model->eval();
  model::decode_gemm_clear_cache();
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> prompts(8);
  for (auto& p : prompts) {
    p.push_back(1);
    for (int i = 0; i < 5 + static_cast<int>(rng() % 12); ++i) p.push_back(static_cast<int32_t>(3 + rng() % 509));
  }
  SamplingParams sp;
  sp.temperature = 0;
  sp.max_tokens = 24;
  sp.ignore_eos = true;
  sp.logprobs = 0;
  std::vector<std::vector<Completion>> out;
  {
    Engine e(model, tok, EngineConfig{});
    out = e.generate_many(prompts, std::vector<SamplingParams>(prompts.size(), sp));
  }
  ASSERT_GT(model::decode_gemm_cache_bytes(), 0) << "the oneDNN path was not taken";
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& c = out[i][0];
    ASSERT_EQ(c.tokens.size(), 24u);
    std::vector<int64_t> ids(prompts[i].begin(), prompts[i].end());
    ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
    torch::NoGradGuard ng;
    model::ForwardInput in;
    in.input_ids = torch::tensor(ids).view({1, -1});
    auto lsm = torch::log_softmax(model->forward(in)[0].to(torch::kDouble), -1);  // [T, V]
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      auto row = lsm[static_cast<int64_t>(prompts[i].size() - 1 + t)];
      const double lp = row[c.tokens[t]].item<double>();
      EXPECT_NEAR(c.logprobs[t].logprob, lp, 1e-4) << "sequence " << i << " step " << t;
      EXPECT_GE(lp, row.max().item<double>() - 1e-4) << "sequence " << i << " step " << t << ": not the argmax";
    }
  }
  model::decode_gemm_clear_cache();
}

// Batch invariance where it is hardest: alone, the request decodes one row per step (torch's gemv);
// among 15 others, 16 rows per step on oneDNN. The seeded tokens must not change.
TEST(EngineDecodeGemm, SeededRequestAloneEqualsAmongFifteenOthers) {
  if (!model::decode_gemm_available()) GTEST_SKIP() << "built without oneDNN";
  const auto tok_path = testing::asset("models/stories260K/tok512.model");
  RMKIT_REQUIRE_ASSET(tok_path);
  std::shared_ptr<text::Tokenizer> tok(text::load_tokenizer(tok_path).release());
  torch::manual_seed(11);
  auto model = model::create_model(llama_256());
  model->eval();
  std::mt19937 rng(8);
  auto prompt = [&](int len) {
    std::vector<int32_t> p = {1};
    while (static_cast<int>(p.size()) < len) p.push_back(static_cast<int32_t>(3 + rng() % 509));
    return p;
  };
  SamplingParams sp;
  sp.temperature = 0.9;
  sp.top_p = 0.95;
  sp.max_tokens = 32;
  sp.ignore_eos = true;
  sp.seed = 77;
  const auto mine = prompt(12);
  std::vector<int32_t> alone;
  {
    Engine e(model, tok, EngineConfig{});
    alone = e.generate_many({mine}, {sp})[0][0].tokens;
  }
  model::decode_gemm_clear_cache();
  Engine e(model, tok, EngineConfig{});
  std::vector<std::shared_ptr<GenHandle>> others;
  for (int i = 0; i < 15; ++i) {
    SamplingParams q = sp;
    q.seed = 100 + static_cast<uint64_t>(i);
    q.max_tokens = 40;
    others.push_back(e.submit(prompt(6 + i), q));
  }
  auto h = e.submit(mine, sp);
  ASSERT_TRUE(h->wait(std::chrono::steady_clock::now() + std::chrono::seconds(120)));
  for (auto& o : others) ASSERT_TRUE(o->wait(std::chrono::steady_clock::now() + std::chrono::seconds(120)));
  EXPECT_EQ(h->results[0].tokens, alone);
  EXPECT_GT(model::decode_gemm_cache_bytes(), 0) << "the batched run did not take the oneDNN path";
  model::decode_gemm_clear_cache();
}

TEST(EngineDecodeGemm, LlamaTokensAndLogprobsMatchFullForward) {
  if (!model::decode_gemm_available()) GTEST_SKIP() << "built without oneDNN";
  check_against_full_forward(llama_256());
}

TEST(EngineDecodeGemm, Gpt2TokensAndLogprobsMatchFullForward) {
  if (!model::decode_gemm_available()) GTEST_SKIP() << "built without oneDNN";
  check_against_full_forward(gpt2_256());
}

}  // namespace
}  // namespace rmkit::serve
