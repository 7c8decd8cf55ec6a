// Packed (padding-free) forward (model/causal_lm.h PackedLayout): several sequences laid end to end
// in one row give, token for token, the hidden states of each sequence run alone (llama with GQA
// and RoPE, gpt2 with learned positions); a segment with a prefix equals the prefix + segment run as
// one sequence; causal query chunking changes nothing; gradients with activation checkpointing and
// chunking equal plain autograd; bad layouts are
// rejected with the segment named.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "rmkit/core/error.h"
#include "rmkit/model/registry.h"

namespace rmkit::model {
namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

ModelConfig tiny_llama() {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 40},
                      {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"max_position_embeddings", 64},
                      {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}};
  return ModelConfig::from_json(j, "tiny-llama");
}

ModelConfig tiny_gpt2() {
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", 40},
                      {"n_embd", 24}, {"n_layer", 2}, {"n_head", 3}, {"n_positions", 64},
                      {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"}};
  return ModelConfig::from_json(j, "tiny-gpt2");
}

CausalLMPtr make(const ModelConfig& cfg) {
  torch::manual_seed(7);
  auto m = create_model(cfg);
  torch::NoGradGuard ng;
  for (auto& p : m->parameters())
    if (p.dim() >= 2) p.normal_(0.0, 0.2);  // far from uniform attention
  return m;
}

torch::Tensor hidden_alone(CausalLMImpl& m, const torch::Tensor& ids) {  // ids [T] -> [T, H]
  ForwardInput in;
  in.input_ids = ids.unsqueeze(0);
  return m.forward_hidden(in).squeeze(0);
}

// Three independent sequences (lengths 5, 1, 7) and a reply of 4 tokens whose prefix is the first.
struct Packed {
  torch::Tensor a, b, c, reply;  // token ids
  PackedLayout layout;
  torch::Tensor ids;  // [1, 17]
};

Packed make_packed() {
  torch::manual_seed(3);
  Packed p;
  p.a = torch::randint(0, 40, {5}, torch::kLong);
  p.b = torch::randint(0, 40, {1}, torch::kLong);
  p.c = torch::randint(0, 40, {7}, torch::kLong);
  p.reply = torch::randint(0, 40, {4}, torch::kLong);
  p.ids = torch::cat({p.a, p.b, p.c, p.reply}).unsqueeze(0);
  p.layout.segments = {{0, 5, 0, 0}, {5, 1, 0, 0}, {6, 7, 0, 0}, {13, 4, 0, 5}};
  p.layout.positions = torch::cat({torch::arange(5), torch::arange(1), torch::arange(7), torch::arange(5, 9)});
  return p;
}

void expect_packed_equals_alone(CausalLMImpl& m, int64_t chunk) {
  SCOPED_TRACE("attention_chunk " + std::to_string(chunk));
  torch::NoGradGuard ng;
  Packed p = make_packed();
  p.layout.attention_chunk = chunk;
  ForwardInput in;
  in.input_ids = p.ids;
  in.packed = &p.layout;
  auto h = m.forward_hidden(in).squeeze(0);  // [17, H]
  EXPECT_LE(max_abs_diff(h.slice(0, 0, 5), hidden_alone(m, p.a)), 1e-5);
  EXPECT_LE(max_abs_diff(h.slice(0, 5, 6), hidden_alone(m, p.b)), 1e-5);
  EXPECT_LE(max_abs_diff(h.slice(0, 6, 13), hidden_alone(m, p.c)), 1e-5);
  // the prefixed reply = the last 4 rows of [a, reply] run as one sequence
  auto joint = hidden_alone(m, torch::cat({p.a, p.reply}));
  EXPECT_LE(max_abs_diff(h.slice(0, 13, 17), joint.slice(0, 5, 9)), 1e-5);
  // and not what it would be without the prefix
  EXPECT_GT(max_abs_diff(h.slice(0, 13, 17), hidden_alone(m, p.reply)), 1e-3);
}

TEST(PackedForward, LlamaSegmentsEqualSequencesAlone) {
  auto m = make(tiny_llama());
  // 0: one attention per segment; 2 and 3: causal query chunks (a 7-token segment in 4 or 3
  // pieces, the prefixed reply in 2); 256: the default (no segment long enough to split)
  for (int64_t chunk : {0, 2, 3, 256}) expect_packed_equals_alone(*m, chunk);
}

TEST(PackedForward, Gpt2SegmentsEqualSequencesAlone) {
  auto m = make(tiny_gpt2());
  for (int64_t chunk : {0, 3}) expect_packed_equals_alone(*m, chunk);
}

TEST(PackedForward, ChunkedAndCheckpointedGradientsEqualPlain) {
  auto m = make(tiny_llama());
  Packed p = make_packed();
  auto run = [&](bool ckpt, int64_t chunk) {
    p.layout.attention_chunk = chunk;
    m->set_activation_checkpointing(ckpt);
    for (auto& q : m->parameters()) q.mutable_grad() = torch::Tensor();
    ForwardInput in;
    in.input_ids = p.ids;
    in.packed = &p.layout;
    auto loss = m->forward(in).log_softmax(-1).select(2, 3).sum();
    loss.backward();
    std::vector<torch::Tensor> g;
    for (auto& q : m->parameters()) g.push_back(q.grad().clone());
    return std::make_pair(loss.item<double>(), g);
  };
  auto [l0, g0] = run(false, 0);
  for (auto [ckpt, chunk] : {std::pair<bool, int64_t>{true, 0}, {false, 2}, {true, 3}}) {
    SCOPED_TRACE(std::string(ckpt ? "checkpointed" : "plain") + ", chunk " + std::to_string(chunk));
    auto [l1, g1] = run(ckpt, chunk);
    // checkpointing replays the same kernels (1e-6, the bound); chunking sums in another
    // order (1e-5, the bound of the other layout tests)
    const double tol = chunk > 0 ? 1e-5 : 1e-6;
    EXPECT_NEAR(l0, l1, tol);
    ASSERT_EQ(g0.size(), g1.size());
    for (size_t i = 0; i < g0.size(); ++i) EXPECT_LE(max_abs_diff(g0[i], g1[i]), tol) << i;
  }
  m->set_activation_checkpointing(false);
}

TEST(PackedForward, BadLayoutsNameTheSegment) {
  auto m = make(tiny_llama());
  torch::NoGradGuard ng;
  Packed p = make_packed();
  auto expect_error = [&](PackedLayout layout, const std::string& needle) {
    ForwardInput in;
    in.input_ids = p.ids;
    in.packed = &layout;
    try {
      m->forward_hidden(in);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const ShapeError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  PackedLayout gap = p.layout;
  gap.segments[2].start = 7;  // leaves token 6 uncovered
  expect_error(gap, "segment 2 covers [7, 14)");
  PackedLayout late_prefix = p.layout;
  late_prefix.segments[3].prefix_start = 12;  // prefix runs into the segment itself
  expect_error(late_prefix, "segment 3 has prefix [12, 17)");
  PackedLayout short_cover = p.layout;
  short_cover.segments.pop_back();
  expect_error(short_cover, "segments cover 13 tokens, input_ids has 17");
  PackedLayout bad_pos = p.layout;
  bad_pos.positions = torch::arange(16);
  expect_error(bad_pos, "positions must be [17]");
}

}  // namespace
}  // namespace rmkit::model
