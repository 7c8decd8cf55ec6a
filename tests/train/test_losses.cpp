// Loss values against hand-computed numbers, masking invariances, the log-prob shift convention and
// combine(). Gradients are checked by finite differences in test_losses_grad.cpp.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <string>

#include "rmkit/core/error.h"
#include "rmkit/train/logprobs.h"
#include "rmkit/train/losses.h"

namespace rmkit::train {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

at::Tensor vec(std::initializer_list<double> v) {
  return at::tensor(std::vector<double>(v), at::kDouble);
}
double val(const at::Tensor& t) { return t.item<double>(); }

std::string config_error(const std::vector<LossTerm>& terms, const LossInputs& in) {
  try {
    combine(terms, in);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError";
  return "";
}

// ---- reward-head losses ------------------------------------------------------------------------

TEST(Losses, BradleyTerry) {
  // Δr = {1, 0, -2}: −log σ(Δr) = log(1 + e^{−Δr}):
  //   log(1+e^-1) = 0.3132617, log 2 = 0.6931472, log(1+e^2) = 2.1269280; mean = 1.0444456
  at::Tensor per;
  at::Tensor l = bt_loss(vec({1.5, 0.0, -1.0}), vec({0.5, 0.0, 1.0}), &per);
  EXPECT_EQ(l.dim(), 0);
  EXPECT_NEAR(val(l), 1.0444456263737136, 1e-12);
  ASSERT_EQ(per.size(0), 3);
  EXPECT_NEAR(val(per[0]), 0.3132616875182229, 1e-12);
  EXPECT_NEAR(val(per[1]), 0.6931471805599453, 1e-12);
  EXPECT_NEAR(val(per[2]), 2.1269280110429727, 1e-12);
  // float32 / bf16 inputs are computed in float32.
  EXPECT_NEAR(val(bt_loss(vec({1}).to(at::kBFloat16), vec({0}).to(at::kBFloat16))), 0.3132617,
              1e-6);
  EXPECT_THROW(bt_loss(vec({1, 2}), vec({1})), ShapeError);
}

TEST(Losses, BradleyTerryWithMargin) {
  // Δr = 1, m = 0.5: log(1 + e^{−0.5}) = 0.4740770;  Δr = 1, m = 0: = bt = 0.3132617
  at::Tensor per;
  at::Tensor l = bt_margin_loss(vec({1, 1}), vec({0, 0}), vec({0.5, 0}), &per);
  EXPECT_NEAR(val(per[0]), 0.4740769841801067, 1e-12);
  EXPECT_NEAR(val(per[1]), 0.3132616875182229, 1e-12);
  EXPECT_NEAR(val(l), (0.4740769841801067 + 0.3132616875182229) / 2, 1e-12);
}

TEST(Losses, BtMarginFallsBackToScoreGap) {
  // No margin: m = Δs = 0.5 → 0.4740770 for both pairs.
  LossInputs in;
  in.r_w = vec({1, 2});
  in.r_l = vec({0, 1});
  in.s_w = vec({3.0, 1.5});
  in.s_l = vec({2.5, 1.0});
  EXPECT_NEAR(val(combine({{"bt-margin", 1}}, in).total), 0.4740769841801067, 1e-12);
  // Per-pair margin wins; NaN entries fall back to Δs: pair 0 m = 0 (0.3132617), pair 1 m = 0.5.
  in.margin = vec({0.0, kNaN});
  EXPECT_NEAR(val(combine({{"bt-margin", 1}}, in).total),
              (0.3132616875182229 + 0.4740769841801067) / 2, 1e-12);
  // NaN margin and no scores: clear error.
  in.s_w = in.s_l = at::Tensor();
  EXPECT_NE(config_error({{"bt-margin", 1}}, in).find("score_chosen"), std::string::npos);
  in.margin = at::Tensor();
  EXPECT_NE(config_error({{"bt-margin", 1}}, in).find("margin"), std::string::npos);
}

// Partly annotated batches: each pair uses its own margin, else its own Δs (scores NaN where a pair
// has none); a pair with neither is an error, not a NaN loss. margin-mse needs every pair scored.
TEST(Losses, BtMarginResolvesEachPairAlone) {
  LossInputs in;
  in.r_w = vec({1, 1});
  in.r_l = vec({0, 0});
  in.margin = vec({0.5, kNaN});  // pair 0: margin only
  in.s_w = vec({kNaN, 3.0});     // pair 1: scores only, Δs = 0.5
  in.s_l = vec({kNaN, 2.5});
  EXPECT_NEAR(val(combine({{"bt-margin", 1}}, in).total), 0.4740769841801067, 1e-12);
  in.margin = vec({kNaN, kNaN});  // pair 0 has neither
  EXPECT_NE(config_error({{"bt-margin", 1}}, in).find("pair 0 of the batch has neither"), std::string::npos);
  EXPECT_NE(config_error({{"margin-mse", 1}}, in).find("for every pair"), std::string::npos);
  EXPECT_NE(config_error({{"soft-bce", 1}}, in).find("for every pair"), std::string::npos);
}

TEST(Losses, CenterRewards) {
  // (1 + 2)² = 9, (−1 + 0.5)² = 0.25; mean 4.625.
  EXPECT_NEAR(val(center_loss(vec({1, -1}), vec({2, 0.5}))), 4.625, 1e-12);
}

TEST(Losses, MarginMse) {
  // Δr = {1, −2}, Δs = {0.5, 1}: (0.5)² = 0.25, (−3)² = 9; mean 4.625.
  at::Tensor per;
  at::Tensor l = margin_mse_loss(vec({1, -1}), vec({0, 1}), vec({3, 0}), vec({2.5, -1}), &per);
  EXPECT_NEAR(val(l), 4.625, 1e-12);
  EXPECT_NEAR(val(per[1]), 9.0, 1e-12);
}

TEST(Losses, SoftBce) {
  // Δs = 0 → α = 0.5, Δr = 1: 0.5·(log(1+e^-1) + log(1+e^1)) = 0.5·(0.3132617 + 1.3132617) = 0.8132617
  // Δs = ln 3 → α = 0.75, Δr = 0: −(0.75·log ½ + 0.25·log ½) = log 2 = 0.6931472
  at::Tensor per;
  soft_bce_loss(vec({1, 0}), vec({0, 0}), vec({0, std::log(3.0)}), vec({0, 0}), &per);
  EXPECT_NEAR(val(per[0]), 0.8132616875182228, 1e-12);
  EXPECT_NEAR(val(per[1]), 0.6931471805599453, 1e-12);
  // d/dΔr = σ(Δr) − α vanishes at Δr = Δs: the soft label is the optimum.
  at::Tensor rw = vec({0.7}).requires_grad_();
  soft_bce_loss(rw, vec({0.0}), vec({0.7}), vec({0.0})).backward();
  EXPECT_NEAR(val(rw.grad()[0]), 0.0, 1e-12);
}

TEST(Losses, RegressionMasksRowsWithoutAttributes) {
  // rows 0,1 carry attributes: (1−0)² + (2−2)² + (3−1)² + (4−1)² = 1 + 0 + 4 + 9 = 14 over 4 → 3.5
  at::Tensor head = at::tensor(std::vector<double>{1, 2, 3, 4, 7, 8}, at::kDouble).view({3, 2});
  at::Tensor tgt =
      at::tensor(std::vector<double>{0, 2, 1, 1, kNaN, kNaN}, at::kDouble).view({3, 2});
  at::Tensor per;
  at::Tensor l = regression_loss(head, tgt, vec({1, 1, 0}), &per);
  EXPECT_NEAR(val(l), 3.5, 1e-12);
  EXPECT_NEAR(val(per[0]), 0.5, 1e-12);
  EXPECT_NEAR(val(per[1]), 6.5, 1e-12);
  EXPECT_EQ(val(per[2]), 0.0);
  // No mask: NaN targets are absent on their own; masked-out row values do not matter.
  EXPECT_NEAR(val(regression_loss(head, tgt)), 3.5, 1e-12);
  at::Tensor head2 = head.clone();
  head2[2] = vec({-100, 50});
  EXPECT_NEAR(val(regression_loss(head2, tgt)), 3.5, 1e-12);
  // Element mask [B,k]: only (0,0) and (1,1): (1 + 9) / 2 = 5.
  at::Tensor em = at::tensor(std::vector<double>{1, 0, 0, 1, 0, 0}, at::kDouble).view({3, 2});
  EXPECT_NEAR(val(regression_loss(head, tgt, em)), 5.0, 1e-12);
  // Gradient does not reach masked rows; nothing present → 0, not NaN.
  at::Tensor h = head.clone().requires_grad_();
  regression_loss(h, tgt, vec({1, 1, 0})).backward();
  EXPECT_EQ(val(h.grad()[2].abs().sum()), 0.0);
  EXPECT_EQ(val(regression_loss(head, tgt, vec({0, 0, 0}))), 0.0);
  EXPECT_THROW(regression_loss(head, tgt, vec({1, 1})), ShapeError);
}

// ---- policy losses -----------------------------------------------------------------------------

TEST(Losses, DpoAndVariants) {
  // logp_w = −10, ref_w = −11, logp_l = −12, ref_l = −11: h = (−10+11) − (−12+11) = 2.
  at::Tensor pw = vec({-10}), pl = vec({-12}), rw = vec({-11}), rl = vec({-11});
  EXPECT_NEAR(val(dpo_logratio(pw, pl, rw, rl)), 2.0, 1e-12);
  // dpo, β = 0.1: −log σ(0.2) = log(1 + e^{−0.2}) = 0.5981389
  EXPECT_NEAR(val(dpo_loss(pw, pl, rw, rl, 0.1)), 0.5981388693815918, 1e-12);
  // ipo: (h − 1/(2β))²: β = 0.1 → (2 − 5)² = 9;  β = 0.5 → (2 − 1)² = 1
  EXPECT_NEAR(val(ipo_loss(pw, pl, rw, rl, 0.1)), 9.0, 1e-12);
  EXPECT_NEAR(val(ipo_loss(pw, pl, rw, rl, 0.5)), 1.0, 1e-12);
  // hinge: relu(1 − βh): β = 0.1 → 0.8;  β = 1 → relu(−1) = 0
  EXPECT_NEAR(val(hinge_loss(pw, pl, rw, rl, 0.1)), 0.8, 1e-12);
  EXPECT_EQ(val(hinge_loss(pw, pl, rw, rl, 1.0)), 0.0);
  // The reference is frozen: no gradient reaches it.
  at::Tensor rwg = vec({-11}).requires_grad_(), pwg = vec({-10}).requires_grad_();
  dpo_loss(pwg, pl, rwg, rl, 0.1).backward();
  EXPECT_FALSE(rwg.grad().defined());
  // d/dlogp_w = −β σ(−βh) = −0.1·σ(−0.2) = −0.0450166
  EXPECT_NEAR(val(pwg.grad()[0]), -0.1 / (1 + std::exp(0.2)), 1e-12);
}

TEST(Losses, Simpo) {
  // avg_w = −1, avg_l = −1.5, β = 2, γ = 0.5: −log σ(2·0.5 − 0.5) = log(1 + e^{−0.5}) = 0.4740770
  EXPECT_NEAR(val(simpo_loss(vec({-1.0}), vec({-1.5}), 2.0, 0.5)), 0.4740769841801067, 1e-12);
  // Defaults (LossHyper) through combine, from sums and lengths: −4/4 = −1, −6/4 = −1.5.
  LossInputs in;
  in.logp_w = vec({-4});
  in.logp_l = vec({-6});
  in.len_w = vec({4});
  in.len_l = vec({4});
  EXPECT_NEAR(val(combine({{"simpo", 1}}, in).total), 0.4740769841801067, 1e-12);
  in.len_w = at::Tensor();
  EXPECT_NE(config_error({{"simpo", 1}}, in).find("len_w"), std::string::npos);
}

TEST(Losses, IpoAveragesLogProbsByLengthLikeTrl) {
  // Sums −20/−24 (policy), −22/−22 (ref), lengths 2 and 4:
  //   h = (−10 − (−11)) − (−6 − (−5.5)) = 1 + 0.5 = 1.5;  β = 0.5: (1.5 − 1)² = 0.25
  LossInputs in;
  in.logp_w = vec({-20});
  in.logp_l = vec({-24});
  in.ref_logp_w = vec({-22});
  in.ref_logp_l = vec({-22});
  in.len_w = vec({2});
  in.len_l = vec({4});
  LossHyper hp;
  hp.ipo_beta = 0.5;
  EXPECT_NEAR(val(combine({{"ipo", 1}}, in, hp).total), 0.25, 1e-12);
  // On sums: h = 2 − (−2) = 4: (4 − 1)² = 9.
  hp.ipo_average_logps = false;
  EXPECT_NEAR(val(combine({{"ipo", 1}}, in, hp).total), 9.0, 1e-12);
}

// ---- token-level: log-probs, sft, kl -----------------------------------------------------------

TEST(LogProbs, ShiftConvention) {
  // Position 0 logits [0, ln2, 0] → p = [¼, ½, ¼]; position 1 logits [ln3, 0, 0] → p = [⅗, ⅕, ⅕].
  // labels [2, 1, 0]: out[0] = 0 (nothing predicts token 0), out[1] = log p₀(1) = log ½,
  // out[2] = log p₁(0) = log ⅗. (Unshifted would give log p₀(2) = log ¼ at t = 0.)
  at::Tensor logits = at::tensor(std::vector<double>{0, std::log(2.0), 0, std::log(3.0), 0, 0, 5,
                                                     -5, 9},
                                 at::kDouble)
                          .view({1, 3, 3});
  at::Tensor labels = at::tensor(std::vector<int64_t>{2, 1, 0}).view({1, 3});
  at::Tensor mask = at::ones({1, 3}, at::kLong);
  at::Tensor lp = token_logprobs(logits, labels, mask);
  ASSERT_EQ(lp.sizes(), labels.sizes());
  EXPECT_EQ(val(lp[0][0]), 0.0);
  EXPECT_NEAR(val(lp[0][1]), std::log(0.5), 1e-12);
  EXPECT_NEAR(val(lp[0][2]), std::log(0.6), 1e-12);
  // Sum log ½ + log ⅗ = log 0.3 = −1.2039728; mean over 2 counted tokens = −0.6019864.
  EXPECT_NEAR(val(sequence_logprob_sum(logits, labels, mask)[0]), std::log(0.3), 1e-12);
  EXPECT_NEAR(val(sequence_logprob_mean(logits, labels, mask)[0]), std::log(0.3) / 2, 1e-12);
  // Masking token 2 (and putting an ignore label there) leaves log ½; the last logits never matter.
  at::Tensor m2 = at::tensor(std::vector<int64_t>{1, 1, 0}).view({1, 3});
  at::Tensor l2 = at::tensor(std::vector<int64_t>{2, 1, -100}).view({1, 3});
  EXPECT_NEAR(val(sequence_logprob_sum(logits, l2, m2)[0]), std::log(0.5), 1e-12);
  EXPECT_NEAR(val(sequence_logprob_mean(logits, l2, m2)[0]), std::log(0.5), 1e-12);
  // bf16 logits are upcast: same values to bf16 input precision.
  EXPECT_NEAR(val(token_logprobs(logits.to(at::kBFloat16), labels, mask)[0][2]), std::log(0.6),
              2e-2);
  EXPECT_THROW(token_logprobs(logits, labels.view({3}), mask), ShapeError);
  EXPECT_THROW(token_logprobs(logits, at::tensor(std::vector<int64_t>{0, 3, 0}).view({1, 3}),
                              mask),
               ShapeError);
}

// Prompt token 0, response tokens 1..2, pad 3..4 (label −100). Predictions that count come from
// positions 0 and 1 (for tokens 1 and 2).
struct TokenBatch {
  at::Tensor logits, labels, mask;
};
TokenBatch prompt_response_pad() {
  at::Tensor logits = at::zeros({1, 5, 2}, at::kDouble);
  logits[0][1] = vec({std::log(3.0), 0});
  return {logits, at::tensor(std::vector<int64_t>{0, 1, 0, -100, -100}).view({1, 5}),
          at::tensor(std::vector<int64_t>{0, 1, 1, 0, 0}).view({1, 5})};
}

TEST(Losses, SftMeanTokenNll) {
  // Token 1 from [0,0]: −log ½ = 0.6931472; token 2 from [ln3, 0]: −log ¾ = 0.2876821;
  // mean over 2 tokens = 0.4904146.
  auto b = prompt_response_pad();
  at::Tensor per;
  EXPECT_NEAR(val(sft_loss(b.logits, b.labels, b.mask, &per)), 0.4904146265058631, 1e-12);
  EXPECT_NEAR(val(per[0]), 0.4904146265058631, 1e-12);
  // Logits at positions predicting prompt/pad tokens (2, 3, 4) do not change the value.
  at::Tensor noisy = b.logits.clone();
  noisy.narrow(1, 2, 3).copy_(at::randn({1, 3, 2}, at::kDouble) * 10);
  EXPECT_NEAR(val(sft_loss(noisy, b.labels, b.mask)), 0.4904146265058631, 1e-12);
  // A second, longer-padded row with 1 token of NLL log 2: batch mean over 3 tokens, not rows.
  at::Tensor logits2 = at::cat({b.logits, at::zeros({1, 5, 2}, at::kDouble)}, 0);
  at::Tensor labels2 = at::cat({b.labels, at::tensor(std::vector<int64_t>{0, 1, -100, -100,
                                                                          -100}).view({1, 5})});
  at::Tensor mask2 =
      at::cat({b.mask, at::tensor(std::vector<int64_t>{0, 1, 0, 0, 0}).view({1, 5})});
  EXPECT_NEAR(val(sft_loss(logits2, labels2, mask2, &per)),
              (0.6931471805599453 + 0.2876820724517809 + 0.6931471805599453) / 3, 1e-12);
  EXPECT_NEAR(val(per[1]), 0.6931471805599453, 1e-12);
}

TEST(Losses, KlForwardTeacherStudent) {
  // One counted position (predicting token 1): teacher [0,0] → p = [½,½], student [ln3,0] → q = [¾,¼]
  // KL(p‖q) = ½ log(½/¾) + ½ log(½/¼) = ½(−0.4054651) + ½(0.6931472) = 0.1438410
  // (reverse KL(q‖p) would be 0.1308120).
  at::Tensor zs = at::zeros({1, 3, 2}, at::kDouble), zt = at::zeros({1, 3, 2}, at::kDouble);
  zs[0][0] = vec({std::log(3.0), 0});
  at::Tensor mask = at::tensor(std::vector<int64_t>{0, 1, 0}).view({1, 3});
  EXPECT_NEAR(val(kl_distill_loss(zs, zt, mask)), 0.14384103622589042, 1e-12);
  // T = 2: q = softmax([ln√3, 0]) = [0.6339746, 0.3660254];
  // T²·KL = 4·(½ log(½/0.6339746) + ½ log(½/0.3660254)) = 4·0.0372523 = 0.1490091
  EXPECT_NEAR(val(kl_distill_loss(zs, zt, mask, 2.0)), 0.14900914406163324, 1e-12);
  // Identical distributions → 0.
  EXPECT_NEAR(val(kl_distill_loss(zs, zs.clone(), mask)), 0.0, 1e-15);
}

TEST(Losses, KlMasksPromptAndPad) {
  auto b = prompt_response_pad();
  at::Tensor zt = at::zeros_like(b.logits);
  // Counted positions 0 and 1: KL([½,½] ‖ [½,½]) = 0 and KL([½,½] ‖ [¾,¼]) = 0.1438410; mean 0.0719205
  at::Tensor per;
  double expect = 0.14384103622589042 / 2;
  EXPECT_NEAR(val(kl_distill_loss(b.logits, zt, b.mask, 1.0, &per)), expect, 1e-12);
  EXPECT_NEAR(val(per[0]), expect, 1e-12);
  // Any values at the positions predicting prompt/pad tokens, in student or teacher: unchanged.
  at::Tensor zs2 = b.logits.clone(), zt2 = zt.clone();
  zs2.narrow(1, 2, 3).copy_(at::randn({1, 3, 2}, at::kDouble) * 10);
  zt2.narrow(1, 2, 3).copy_(at::randn({1, 3, 2}, at::kDouble) * 10);
  EXPECT_NEAR(val(kl_distill_loss(zs2, zt2, b.mask)), expect, 1e-12);
  // No response token at all: 0, still differentiable w.r.t. the student.
  at::Tensor s = b.logits.clone().requires_grad_();
  at::Tensor z = kl_distill_loss(s, zt, at::zeros({1, 5}, at::kLong));
  EXPECT_EQ(val(z), 0.0);
  z.backward();
  EXPECT_EQ(val(s.grad().abs().sum()), 0.0);
  EXPECT_THROW(kl_distill_loss(b.logits, zt.narrow(2, 0, 1), b.mask), ShapeError);
}

// ---- combine -----------------------------------------------------------------------------------

LossInputs full_inputs() {
  LossInputs in;
  in.r_w = vec({1.5, 0.0, -1.0});
  in.r_l = vec({0.5, 0.0, 1.0});
  in.s_w = vec({2.0, 1.0, 0.0});
  in.s_l = vec({1.0, 1.5, 0.5});
  in.logp_w = vec({-10, -8, -5});
  in.logp_l = vec({-12, -7, -6});
  in.ref_logp_w = vec({-11, -8, -5.5});
  in.ref_logp_l = vec({-11, -7.5, -6});
  in.len_w = vec({5, 4, 2});
  in.len_l = vec({6, 4, 3});
  in.sft_nll = at::scalar_tensor(2.25, at::kDouble);
  auto b = prompt_response_pad();
  in.student_logits = b.logits;
  in.teacher_logits = at::zeros_like(b.logits);
  in.kl_mask = b.mask;
  return in;
}

TEST(LossCombine, ReportsEachComponentAndWeightedTotal) {
  LossInputs in = full_inputs();
  auto terms = parse_loss_spec("bt:1,center:0.01,margin-mse:0.5,soft-bce:0.3,dpo:0.2,hinge:0.7,"
                               "simpo:0.4,sft:0.1,kl:0.5,bt-margin:0");
  LossResult res = combine(terms, in);
  ASSERT_EQ(res.components.size(), terms.size());
  // Each component equals its standalone loss (computed independently here).
  std::map<std::string, double> expect = {
      {"bt", val(bt_loss(in.r_w, in.r_l))},
      {"bt-margin", val(bt_margin_loss(in.r_w, in.r_l, in.s_w - in.s_l))},
      {"center", val(center_loss(in.r_w, in.r_l))},
      {"margin-mse", val(margin_mse_loss(in.r_w, in.r_l, in.s_w, in.s_l))},
      {"soft-bce", val(soft_bce_loss(in.r_w, in.r_l, in.s_w, in.s_l))},
      {"dpo", val(dpo_loss(in.logp_w, in.logp_l, in.ref_logp_w, in.ref_logp_l, 0.1))},
      {"hinge", val(hinge_loss(in.logp_w, in.logp_l, in.ref_logp_w, in.ref_logp_l, 0.1))},
      {"simpo", val(simpo_loss(in.logp_w / in.len_w, in.logp_l / in.len_l, 2.0, 0.5))},
      {"sft", 2.25},
      {"kl", 0.14384103622589042 / 2}};
  EXPECT_NEAR(expect["bt"], 1.0444456263737136, 1e-12);  // the hand-computed batch above
  auto values = res.component_values();
  double sum = 0;
  for (const auto& t : terms) {
    ASSERT_TRUE(values.count(t.name)) << t.name;
    EXPECT_NEAR(values[t.name], expect[t.name], 1e-12) << t.name;
    EXPECT_FALSE(res.components[t.name].requires_grad()) << t.name;
    sum += t.weight * values[t.name];
  }
  EXPECT_NEAR(val(res.total), sum, 1e-12);
}

TEST(LossCombine, TotalCarriesGradientsOfActiveTermsOnly) {
  LossInputs in = full_inputs();
  in.r_w = in.r_w.clone().requires_grad_();
  in.logp_w = in.logp_w.clone().requires_grad_();
  auto terms = parse_loss_spec("bt:1,dpo:0.2");
  // Step 0 of the alternate schedule: only bt → no gradient on the policy log-probs.
  combine(active_terms(terms, 0, Schedule::Alternate), in).total.backward();
  EXPECT_TRUE(in.r_w.grad().defined());
  EXPECT_FALSE(in.logp_w.grad().defined());
}

TEST(LossCombine, MissingInputsGiveClearConfigErrors) {
  LossInputs in;
  in.r_w = vec({1});
  in.r_l = vec({0});
  std::string m = config_error({{"bt", 1}, {"margin-mse", 1}}, in);
  EXPECT_NE(m.find("'margin-mse'"), std::string::npos) << m;
  EXPECT_NE(m.find("score_chosen/score_rejected"), std::string::npos) << m;
  EXPECT_NE(config_error({{"soft-bce", 1}}, in).find("'soft-bce'"), std::string::npos);
  EXPECT_NE(config_error({{"dpo", 1}}, in).find("logp_w"), std::string::npos);
  in.logp_w = vec({-1});
  in.logp_l = vec({-2});
  EXPECT_NE(config_error({{"dpo", 1}}, in).find("reference"), std::string::npos);
  EXPECT_NE(config_error({{"ipo", 1}}, in).find("'ipo'"), std::string::npos);
  EXPECT_NE(config_error({{"sft", 1}}, in).find("sft_nll"), std::string::npos);
  EXPECT_NE(config_error({{"kl", 1}}, in).find("'kl'"), std::string::npos);
  EXPECT_NE(config_error({{"regression", 1}}, in).find("head_out"), std::string::npos);
  EXPECT_NE(config_error({}, in).find("no loss terms"), std::string::npos);
  LossInputs none;
  EXPECT_NE(config_error({{"center", 1}}, none).find("rewards"), std::string::npos);
}

}  // namespace
}  // namespace rmkit::train
