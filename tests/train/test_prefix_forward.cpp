// Shared-prompt forward (train/prefix_forward.h) against the unshared forward_pair on the full
// concatenated sequences: rewards, BT loss, every parameter gradient and the reply-token log-probs,
// for llama (GQA, RoPE) and gpt2 (learned positions); prefix-shared scoring (eval/scorer.cpp)
// against unshared batch-1 scoring, for several batch sizes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "rmkit/data/encode.h"
#include "rmkit/data/readers.h"
#include "rmkit/eval/scorer.h"
#include "rmkit/model/registry.h"
#include "rmkit/train/logprobs.h"
#include "rmkit/train/prefix_forward.h"
#include "rmkit/train/reward_model.h"
#include "test_util.h"

namespace rmkit::train {
namespace {

using Ids = std::vector<int32_t>;

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

model::ModelConfig tiny_llama() {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 48},
                      {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"max_position_embeddings", 64},
                      {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", false}};
  return model::ModelConfig::from_json(j, "tiny-llama");
}

model::ModelConfig tiny_gpt2() {
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", 48},
                      {"n_embd", 24}, {"n_layer", 2}, {"n_head", 3}, {"n_positions", 64},
                      {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"}};
  return model::ModelConfig::from_json(j, "tiny-gpt2");
}

// Random weights large enough that attention is far from uniform (std 0.2 instead of 0.02).
RewardModel make_rm(const model::ModelConfig& cfg, HeadConfig head = HeadConfig()) {
  torch::manual_seed(11);
  auto bb = model::create_model(cfg);
  {
    torch::NoGradGuard ng;
    for (auto& p : bb->parameters())
      if (p.dim() >= 2) p.normal_(0.0, 0.2);
  }
  RewardModel rm(bb, head);
  rm->eval();  // no dropout: both paths must see the same function
  return rm;
}

// Pairs with variable prompt/reply lengths; prompt tokens in [1, 24), reply tokens in [24, 48), so
// embedding-gradient rows 1..23 come from the prompts only.
struct Pairs {
  std::vector<Ids> prompt, chosen, rejected;
};

Ids rand_ids(int64_t n, int64_t lo, int64_t hi) {
  auto t = torch::randint(lo, hi, {n}, torch::kLong);
  Ids v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<int32_t>(t[i].item<int64_t>()));
  return v;
}

Pairs make_pairs(const std::vector<std::array<int64_t, 3>>& lens) {
  torch::manual_seed(5);
  Pairs p;
  for (const auto& l : lens) {
    p.prompt.push_back(rand_ids(l[0], 1, 24));
    p.chosen.push_back(rand_ids(l[1], 24, 48));
    p.rejected.push_back(rand_ids(l[2], 24, 48));
  }
  return p;
}

// Unshared layout: prompt + reply right-padded (pad 0), response mask on reply tokens.
void full_sequences(const Pairs& p, bool chosen, torch::Tensor* ids, torch::Tensor* mask, torch::Tensor* resp) {
  const int64_t B = static_cast<int64_t>(p.prompt.size());
  int64_t T = 1;
  for (int64_t i = 0; i < B; ++i)
    T = std::max<int64_t>(T, p.prompt[i].size() + (chosen ? p.chosen[i] : p.rejected[i]).size());
  *ids = torch::zeros({B, T}, torch::kLong);
  *mask = torch::zeros({B, T}, torch::kLong);
  *resp = torch::zeros({B, T}, torch::kLong);
  for (int64_t i = 0; i < B; ++i) {
    Ids s = p.prompt[i];
    const Ids& r = chosen ? p.chosen[i] : p.rejected[i];
    s.insert(s.end(), r.begin(), r.end());
    for (size_t t = 0; t < s.size(); ++t) {
      (*ids)[i][static_cast<int64_t>(t)] = s[t];
      (*mask)[i][static_cast<int64_t>(t)] = 1;
      (*resp)[i][static_cast<int64_t>(t)] = t >= p.prompt[i].size() ? 1 : 0;
    }
  }
}

struct PassResult {
  torch::Tensor chosen, rejected, logp;  // [B], [B], [2B]
  double loss = 0;
  std::map<std::string, torch::Tensor> grads;
};

std::map<std::string, torch::Tensor> take_grads(RewardModelImpl& rm) {
  std::map<std::string, torch::Tensor> g;
  for (auto& kv : rm.named_parameters(true)) {
    g[kv.key()] = kv.value().grad().defined() ? kv.value().grad().clone() : torch::zeros_like(kv.value());
    kv.value().mutable_grad() = torch::Tensor();
  }
  return g;
}

// loss = BT + lm_weight * mean reply log-prob (the DPO/SFT path through the LM head).
PassResult run_unshared(RewardModelImpl& rm, const Pairs& p, double lm_weight) {
  torch::Tensor ci, cm, cr, ri, rmask, rr;
  full_sequences(p, true, &ci, &cm, &cr);
  full_sequences(p, false, &ri, &rmask, &rr);
  auto out = rm.forward_pair(ci, cm, ri, rmask);
  auto [ids, mask] = concat_right_padded(ci, cr, ri, rr, 0);  // response masks padded the same way
  auto logp = sequence_logprob_sum(rm.lm_logits(out.all.hidden), ids, mask);  // [2B]
  auto loss = -torch::log_sigmoid(out.chosen - out.rejected).mean() + lm_weight * logp.mean();
  loss.backward();
  return {out.chosen.detach(), out.rejected.detach(), logp.detach(), loss.item<double>(), take_grads(rm)};
}

// packed: the padding-free single-row layout (default); else the prompt pass + KV-cache reply pass.
PassResult run_shared(RewardModelImpl& rm, const Pairs& p, double lm_weight, int64_t pad_id, bool packed) {
  auto out = prefix_shared_forward(rm, collate_prefix_pairs(p.prompt, p.chosen, p.rejected, pad_id, packed));
  auto logp = sequence_logprob_sum(rm.lm_logits(out.all.hidden), out.lm_ids, out.lm_response_mask);
  auto loss = -torch::log_sigmoid(out.chosen - out.rejected).mean() + lm_weight * logp.mean();
  loss.backward();
  return {out.chosen.detach(), out.rejected.detach(), logp.detach(), loss.item<double>(), take_grads(rm)};
}

void expect_equal_runs(const PassResult& a, const PassResult& b, double tol) {
  EXPECT_LE(max_abs_diff(a.chosen, b.chosen), tol) << a.chosen << b.chosen;
  EXPECT_LE(max_abs_diff(a.rejected, b.rejected), tol) << a.rejected << b.rejected;
  EXPECT_LE(max_abs_diff(a.logp, b.logp), tol * 10) << a.logp << b.logp;  // sums of up to 9 terms
  EXPECT_NEAR(a.loss, b.loss, tol);
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (const auto& [name, g] : a.grads) {
    ASSERT_TRUE(b.grads.count(name)) << name;
    EXPECT_LE(max_abs_diff(g, b.grads.at(name)), tol) << name;
  }
}

// Left padding (prompts 1..7), an empty reply on each side, a one-token (BOS-only) prompt.
const std::vector<std::array<int64_t, 3>> kLens = {{5, 4, 7}, {1, 3, 2}, {7, 0, 5}, {3, 6, 0}, {2, 1, 1}};

TEST(PrefixForward, CollateLayoutAndTokenCounts) {
  auto p = make_pairs(kLens);
  auto b = collate_prefix_pairs(p.prompt, p.chosen, p.rejected, /*pad_id=*/47);
  EXPECT_EQ(b.B, 5);
  EXPECT_EQ(b.P, 7);
  EXPECT_EQ(b.R, 7);
  // row 1: prompt of length 1 sits in the last column, 6 pads before it
  EXPECT_EQ(b.prompt_mask[1].sum().item<int64_t>(), 1);
  EXPECT_EQ(b.prompt_mask[1][6].item<int64_t>(), 1);
  EXPECT_EQ(b.prompt_ids[1][6].item<int64_t>(), p.prompt[1][0]);
  EXPECT_EQ(b.prompt_ids[1][0].item<int64_t>(), 47);
  // rejected of pair 0 is row B+0, right-padded
  EXPECT_EQ(b.resp_ids[5][6].item<int64_t>(), p.rejected[0][6]);
  EXPECT_EQ(b.resp_len[2].item<int64_t>(), 0);  // empty chosen of pair 2
  // hand counts: prompts 18, chosen 14, rejected 15; longest full sequence 7 + 5 = 12
  EXPECT_EQ(b.real_tokens, 18 + 14 + 15);
  EXPECT_EQ(b.unshared_real_tokens, 2 * 18 + 14 + 15);
  EXPECT_EQ(b.unshared_slots, 10 * 12);
  // packed (default): no padding at all
  ASSERT_TRUE(b.packed);
  EXPECT_EQ(b.slots, b.real_tokens);
  EXPECT_EQ(b.packed_ids.sizes(), (std::vector<int64_t>{1, 47}));
  // segments (hand-laid): pair 0 = [prompt 5 + chosen 4] at 0, rejected 7 at 9 with prefix [0, 5);
  // pair 1 at 16 (4 tokens), rejected 2 at 20; pair 2 (empty chosen) = [prompt 7] at 22, rejected
  // 5 at 29 with prefix [22, 29); pair 3 (empty rejected) = [prompt 3 + chosen 6] at 34 and no
  // rejected segment; pair 4 = [2 + 1] at 43, rejected 1 at 46 with prefix [43, 45).
  const auto& sg = b.layout.segments;
  ASSERT_EQ(sg.size(), 9u);
  auto seg = [](int64_t s, int64_t l, int64_t ps, int64_t pl) { return std::array<int64_t, 4>{s, l, ps, pl}; };
  auto as = [](const model::PackedSegment& g) { return std::array<int64_t, 4>{g.start, g.length, g.prefix_start, g.prefix_length}; };
  EXPECT_EQ(as(sg[0]), seg(0, 9, 0, 0));
  EXPECT_EQ(as(sg[1]), seg(9, 7, 0, 5));
  EXPECT_EQ(as(sg[3]), seg(20, 2, 16, 1));
  EXPECT_EQ(as(sg[4]), seg(22, 7, 0, 0));
  EXPECT_EQ(as(sg[5]), seg(29, 5, 22, 7));
  EXPECT_EQ(as(sg[6]), seg(34, 9, 0, 0));
  EXPECT_EQ(as(sg[7]), seg(43, 3, 0, 0));
  EXPECT_EQ(as(sg[8]), seg(46, 1, 43, 2));
  // positions restart per pair; a reply continues from its prompt's length
  auto pos = b.layout.positions;
  EXPECT_EQ(pos[9].item<int64_t>(), 5);    // first rejected token of pair 0
  EXPECT_EQ(pos[29].item<int64_t>(), 7);   // first rejected token of pair 2
  EXPECT_EQ(pos[22].item<int64_t>(), 0);   // prompt of pair 2
  EXPECT_EQ(pos[42].item<int64_t>(), 8);   // last chosen token of pair 3
  EXPECT_EQ(b.packed_ids[0][9].item<int64_t>(), p.rejected[0][0]);
  // extended-reply view: rejected row of pair 0 = [prompt's last token 4, rejected tokens 9..15]
  auto ext = b.ext_index.view({10, 8});
  EXPECT_EQ(ext[5][0].item<int64_t>(), 4);
  EXPECT_EQ(ext[5][1].item<int64_t>(), 9);
  EXPECT_EQ(ext[5][7].item<int64_t>(), 15);
  EXPECT_EQ(ext[0][5].item<int64_t>(), 47);  // past chosen 0's 4 tokens: the zero row N
  // cached layout: padded prompt and reply tensors
  auto c = collate_prefix_pairs(p.prompt, p.chosen, p.rejected, 47, /*packed=*/false);
  EXPECT_FALSE(c.packed);
  EXPECT_EQ(c.slots, 5 * 7 + 10 * 7);
  EXPECT_EQ(c.real_tokens, b.real_tokens);
}

TEST(PrefixForward, LlamaRewardsLossAndGradientsEqualUnshared) {
  auto rm = make_rm(tiny_llama());
  auto p = make_pairs(kLens);
  PassResult ref = run_unshared(*rm, p, 0.0);
  for (bool packed : {true, false}) {
    SCOPED_TRACE(packed ? "packed" : "cached");
    PassResult sh = run_shared(*rm, p, 0.0, /*pad_id=*/3, packed);  // a pad id that is also a real token: the mask decides
    expect_equal_runs(ref, sh, 1e-5);
    // Gradients reach prompt-only embedding rows through the shared prompt (and are not trivially 0).
    auto emb = sh.grads.at("backbone.model.embed_tokens.weight");
    EXPECT_GT(emb.slice(0, 1, 24).abs().sum().item<double>(), 1e-4);
  }
  EXPECT_NE(ref.chosen[0].item<double>(), ref.rejected[0].item<double>());
}

TEST(PrefixForward, LlamaLmHeadTermsEqualUnshared) {
  auto rm = make_rm(tiny_llama());
  auto p = make_pairs(kLens);
  PassResult ref = run_unshared(*rm, p, 0.5);
  for (bool packed : {true, false}) {
    SCOPED_TRACE(packed ? "packed" : "cached");
    PassResult sh = run_shared(*rm, p, 0.5, 0, packed);
    expect_equal_runs(ref, sh, 1e-5);
    // the log-prob of a pair with an empty reply is exactly 0 in every layout
    EXPECT_EQ(sh.logp[2].item<double>(), 0.0);
    EXPECT_EQ(sh.logp[5 + 3].item<double>(), 0.0);
  }
}

TEST(PrefixForward, EmptyPromptRowsAndAllEmptyPrompts) {
  auto rm = make_rm(tiny_llama());
  // one empty prompt among others: its row is all left padding
  auto p = make_pairs({{0, 3, 4}, {4, 2, 5}, {2, 6, 1}});
  // no prompt at all: the prompt pass is skipped
  auto q = make_pairs({{0, 3, 4}, {0, 2, 5}});
  for (bool packed : {true, false}) {
    SCOPED_TRACE(packed ? "packed" : "cached");
    expect_equal_runs(run_unshared(*rm, p, 0.5), run_shared(*rm, p, 0.5, 0, packed), 1e-5);
    expect_equal_runs(run_unshared(*rm, q, 0.5), run_shared(*rm, q, 0.5, 0, packed), 1e-5);
  }
}

TEST(PrefixForward, Gpt2RewardsLossAndGradientsEqualUnshared) {
  auto rm = make_rm(tiny_gpt2());
  auto p = make_pairs(kLens);
  PassResult ref = run_unshared(*rm, p, 0.5);
  for (bool packed : {true, false}) {
    SCOPED_TRACE(packed ? "packed" : "cached");
    PassResult sh = run_shared(*rm, p, 0.5, 0, packed);
    expect_equal_runs(ref, sh, 1e-5);
    EXPECT_GT(sh.grads.at("backbone.transformer.wpe.weight").abs().sum().item<double>(), 1e-4);
  }
}

TEST(PrefixForward, MlpHeadWithAttributesMatchesForward) {
  HeadConfig h;
  h.type = "mlp";
  h.mlp_hidden = 16;
  h.num_attributes = 3;
  auto rm = make_rm(tiny_llama(), h);
  auto p = make_pairs(kLens);
  torch::NoGradGuard ng;
  auto sh = prefix_shared_forward(*rm, p.prompt, p.chosen, p.rejected, 0);
  torch::Tensor ci, cm, cr, ri, rmask, rr;
  full_sequences(p, true, &ci, &cm, &cr);
  full_sequences(p, false, &ri, &rmask, &rr);
  auto ref = rm->forward_pair(ci, cm, ri, rmask);
  EXPECT_LE(max_abs_diff(sh.all.rewards, ref.all.rewards), 1e-5);
  ASSERT_TRUE(sh.all.attributes.defined());
  EXPECT_EQ(sh.all.attributes.sizes(), ref.all.attributes.sizes());
  EXPECT_LE(max_abs_diff(sh.all.attributes, ref.all.attributes), 1e-5);
}

// ---------------------------------------------------------------- scoring

TEST(PrefixScoring, RewardsIndependentOfBatchSizeAndEqualUnshared) {
  const std::string model_bin = rmkit::testing::asset("models/stories260K/stories260K.bin");
  const std::string tok_bin = rmkit::testing::asset("models/stories260K/tok512.bin");
  const std::string prefs = rmkit::testing::asset("prefs/hh_rlhf_harmless_base_test.jsonl.gz");
  RMKIT_REQUIRE_ASSET(model_bin);
  RMKIT_REQUIRE_ASSET(prefs);
  torch::manual_seed(3);
  auto loaded = load_reward_model(model_bin, tok_bin, HeadConfig(), /*require_head=*/false);
  auto& rm = *loaded.model;
  auto all = data::read_prefs(prefs);
  ASSERT_GE(all.size(), 20u);
  std::vector<data::PrefPair> pairs(all.begin(), all.begin() + 20);  // multi-turn: prompt lengths vary
  auto tmpl = text::ChatTemplate::named("plain");
  eval::ScoreOptions o;
  o.max_length = 160;
  o.progress = false;

  // Independent expectation: every full sequence scored alone, unpadded, by RewardModelImpl::forward.
  std::vector<double> exp_c, exp_r;
  {
    torch::NoGradGuard ng;
    rm.eval();
    for (const auto& pp : pairs) {
      auto e = data::encode_pair(pp, *loaded.tokenizer, tmpl, 160);
      for (int side = 0; side < 2; ++side) {
        Ids s = e.prompt_ids;
        const Ids& r = side == 0 ? e.chosen_ids : e.rejected_ids;
        s.insert(s.end(), r.begin(), r.end());
        auto ids = torch::tensor(std::vector<int64_t>(s.begin(), s.end()), torch::kLong).unsqueeze(0);
        double v = rm.forward(ids, torch::ones_like(ids)).rewards.item<double>();
        (side == 0 ? exp_c : exp_r).push_back(v);
      }
    }
  }
  std::vector<eval::PairRewards> runs;
  for (int64_t bs : {1, 2, 6, 64}) {  // sequences per forward: 1, 1, 3 and 32 pairs per batch
    o.batch_size = bs;
    runs.push_back(eval::score_pairs(rm, *loaded.tokenizer, tmpl, pairs, o));
  }
  o.batch_size = 16;
  o.max_tokens = 300;  // token budget splits the batches differently again
  runs.push_back(eval::score_pairs(rm, *loaded.tokenizer, tmpl, pairs, o));
  double worst_vs_alone = 0, worst_vs_batch1 = 0;
  for (const auto& r : runs) {
    ASSERT_EQ(r.chosen.size(), pairs.size());
    for (size_t i = 0; i < pairs.size(); ++i) {
      worst_vs_alone = std::max({worst_vs_alone, std::abs(r.chosen[i] - exp_c[i]), std::abs(r.rejected[i] - exp_r[i])});
      worst_vs_batch1 = std::max({worst_vs_batch1, std::abs(r.chosen[i] - runs[0].chosen[i]),
                                  std::abs(r.rejected[i] - runs[0].rejected[i])});
    }
  }
  // Not bitwise: padding changes the matmul/softmax shapes and so the float summation order.
  EXPECT_LE(worst_vs_alone, 1e-5);
  EXPECT_LE(worst_vs_batch1, 1e-5);
  RecordProperty("max_diff_vs_unshared", std::to_string(worst_vs_alone));
  RecordProperty("max_diff_across_batch_sizes", std::to_string(worst_vs_batch1));
  std::printf("prefix scoring: max |diff| vs unshared %.3g, across batch sizes %.3g\n", worst_vs_alone,
              worst_vs_batch1);
  // the rewards are not all the same number (a broken pooling would make them so)
  EXPECT_NE(exp_c[0], exp_c[1]);
  EXPECT_NE(exp_c[0], exp_r[0]);
}

}  // namespace
}  // namespace rmkit::train
