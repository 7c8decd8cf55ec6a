// Policy contexts (model/context_features.h) on stories260K (llama, RoPE) and a tiny GPT-2
// (learned positions): a prompt's vector does not depend on padding or batch composition, and
// last-hidden / mean-hidden / mean-embedding equal the same quantities computed independently.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/context_features.h"
#include "rmkit/model/registry.h"
#include "test_util.h"

namespace rmkit::model {
namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

std::vector<CausalLMPtr> models() {
  std::vector<CausalLMPtr> out;
  const std::string path = rmkit::testing::asset("models/stories260K/stories260K.bin");
  if (path_exists(path)) out.push_back(load_pretrained(path).model);
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", 40},
                      {"n_embd", 24}, {"n_layer", 2}, {"n_head", 3}, {"n_positions", 64},
                      {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"}};
  torch::manual_seed(11);
  out.push_back(create_model(ModelConfig::from_json(j, "tiny-gpt2")));
  return out;
}

std::vector<int64_t> prompt(int64_t len, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  auto t = torch::randint(3, vocab, {len}, torch::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + len);
}

const ContextMode kModes[] = {ContextMode::LastHidden, ContextMode::MeanHidden, ContextMode::MeanEmbedding};

TEST(ContextFeatures, IndependentOfPaddingAndBatchComposition) {
  auto ms = models();
  ASSERT_EQ(ms.size(), 2u) << "missing stories260K (set RMKIT_ASSETS)";
  for (auto& m : ms) {
    SCOPED_TRACE(m->config().family);
    const int64_t V = m->config().vocab_size;
    auto target = prompt(7, V, 1);
    std::vector<std::vector<int64_t>> mixed = {prompt(12, V, 2), target, prompt(3, V, 3), prompt(1, V, 4), prompt(9, V, 5)};
    for (ContextMode mode : kModes) {
      SCOPED_TRACE(context_mode_name(mode));
      auto alone = prompt_contexts(*m, {target}, mode);  // [1, C]
      ASSERT_EQ(alone.sizes().vec(), (std::vector<int64_t>{1, m->config().hidden_size}));
      EXPECT_EQ(alone.scalar_type(), torch::kFloat64);
      for (int64_t bs : {1, 2, 5, 16}) {
        auto all = prompt_contexts(*m, mixed, mode, bs);  // [5, C]
        EXPECT_LE(max_abs_diff(all[1], alone[0]), 1e-5) << "batch_size " << bs;
        auto again = prompt_contexts(*m, {mixed[3]}, mode);
        EXPECT_LE(max_abs_diff(all[3], again[0]), 1e-5) << "batch_size " << bs;
      }
      auto bc = batch_context(*m, mixed, mode, 2);  // [C]: the mean of the rows
      EXPECT_LE(max_abs_diff(bc, prompt_contexts(*m, mixed, mode, 2).mean(0)), 1e-12);
    }
  }
}

TEST(ContextFeatures, EqualIndependentComputations) {
  for (auto& m : models()) {
    SCOPED_TRACE(m->config().family);
    const int64_t V = m->config().vocab_size;
    std::vector<std::vector<int64_t>> ps = {prompt(6, V, 7), prompt(11, V, 8)};
    auto last = prompt_contexts(*m, ps, ContextMode::LastHidden);
    auto mean = prompt_contexts(*m, ps, ContextMode::MeanHidden);
    auto emb = prompt_contexts(*m, ps, ContextMode::MeanEmbedding);
    m->eval();
    torch::NoGradGuard ng;
    for (size_t i = 0; i < ps.size(); ++i) {
      const auto n = static_cast<int64_t>(ps[i].size());
      ForwardInput in;
      in.input_ids = torch::tensor(ps[i], torch::kLong).unsqueeze(0);
      auto h = m->forward_hidden(in).squeeze(0);  // [T, C]
      const auto row = static_cast<int64_t>(i);
      EXPECT_LE(max_abs_diff(last[row], h[n - 1]), 1e-5);
      EXPECT_LE(max_abs_diff(mean[row], h.to(torch::kFloat64).mean(0)), 1e-5);
      auto e = m->embedding_weight().index_select(0, in.input_ids.squeeze(0)).to(torch::kFloat64).mean(0);
      EXPECT_LE(max_abs_diff(emb[row], e), 1e-12);
    }
  }
}

TEST(ContextFeatures, RestoresModeAndRejectsBadInput) {
  auto m = models().back();
  m->train();
  prompt_contexts(*m, {{1, 2, 3}}, ContextMode::LastHidden);
  EXPECT_TRUE(m->is_training());
  EXPECT_THROW(prompt_contexts(*m, {{1, 2}, {}}, ContextMode::MeanHidden), ShapeError);
  EXPECT_THROW(prompt_contexts(*m, {{1, 400}}, ContextMode::MeanHidden), ShapeError);
  EXPECT_THROW(prompt_contexts(*m, {}, ContextMode::MeanHidden), ShapeError);
  EXPECT_THROW(parse_context_mode("cls"), UsageError);
  EXPECT_EQ(parse_context_mode("mean-embedding"), ContextMode::MeanEmbedding);
  for (ContextMode mode : kModes) EXPECT_EQ(parse_context_mode(context_mode_name(mode)), mode);
}

}  // namespace
}  // namespace rmkit::model
