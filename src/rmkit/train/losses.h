// Reward-model training losses and their weighted combination.
//
// Notation: r = reward, Δr = r_w − r_l (chosen minus rejected), s = teacher/annotator score,
// Δs = s_w − s_l, σ = logistic sigmoid. Pairwise losses take [B] tensors and return the batch mean
// (a scalar); pass `per_example` to also receive the [B] per-pair values (still attached to the
// graph: .detach() them for logging). Reduced-precision inputs (bf16/fp16) are computed in float32.
//
//   bt          −log σ(Δr)                                           (Bradley–Terry)
//   bt-margin   −log σ(Δr − m),  m = per-pair margin, else Δs
//   center      (r_w + r_l)²; its spec weight is TRL's center_rewards_coefficient (center:0.01)
//   margin-mse  (Δr − Δs)² on raw scores                             (RM-Distiller)
//   soft-bce    −[α log σ(Δr) + (1−α) log σ(−Δr)],  α = σ(Δs)
//   regression  masked MSE of a [B,k] attribute head to [B,k] attribute targets
//   dpo         −log σ(β·h),  h = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)),
//               log π = Σ over response tokens                      (HAF-RM's policy term)
//   ipo         (h − 1/(2β))²                                        (as TRL; see LossHyper)
//   hinge       relu(1 − β·h)                                        (as TRL)
//   simpo       −log σ(β·(avg_w − avg_l) − γ), avg = length-averaged log π; no reference
//   sft         mean token NLL of the teacher response under the LM head (masked; mean over all
//               counted tokens of the batch)
//   kl          T²·KL(softmax(z_T/T) ‖ softmax(z_S/T)), forward KL teacher‖student as in Hinton
//               distillation, averaged over response tokens; teacher logits are frozen (detached)
//
// Masks for token-level losses follow logprobs.h: aligned with the tokens/labels, 1 = response token.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "rmkit/train/loss_spec.h"

namespace rmkit::train {

// ---- reward-head losses ------------------------------------------------------------------------
at::Tensor bt_loss(const at::Tensor& r_w, const at::Tensor& r_l, at::Tensor* per_example = nullptr);
at::Tensor bt_margin_loss(const at::Tensor& r_w, const at::Tensor& r_l, const at::Tensor& margin,
                          at::Tensor* per_example = nullptr);
at::Tensor center_loss(const at::Tensor& r_w, const at::Tensor& r_l,
                       at::Tensor* per_example = nullptr);
at::Tensor margin_mse_loss(const at::Tensor& r_w, const at::Tensor& r_l, const at::Tensor& s_w,
                           const at::Tensor& s_l, at::Tensor* per_example = nullptr);
at::Tensor soft_bce_loss(const at::Tensor& r_w, const at::Tensor& r_l, const at::Tensor& s_w,
                         const at::Tensor& s_l, at::Tensor* per_example = nullptr);
// head_out, target: [B,k]. mask: [B] (per row) or [B,k] (per attribute), 1 = target present;
// undefined = all present. NaN targets count as absent too. The loss is the mean squared error over
// the present elements (0, still attached to head_out's graph, when none is present); per_example
// is the [B] mean over each row's present elements (0 for rows without any).
at::Tensor regression_loss(const at::Tensor& head_out, const at::Tensor& target,
                           const at::Tensor& mask = {}, at::Tensor* per_example = nullptr);

// ---- policy / LM losses ------------------------------------------------------------------------
// h = (logp_w − ref_w) − (logp_l − ref_l), all [B].
at::Tensor dpo_logratio(const at::Tensor& logp_w, const at::Tensor& logp_l, const at::Tensor& ref_w,
                        const at::Tensor& ref_l);
at::Tensor dpo_loss(const at::Tensor& logp_w, const at::Tensor& logp_l, const at::Tensor& ref_w,
                    const at::Tensor& ref_l, double beta, at::Tensor* per_example = nullptr);
at::Tensor ipo_loss(const at::Tensor& logp_w, const at::Tensor& logp_l, const at::Tensor& ref_w,
                    const at::Tensor& ref_l, double beta, at::Tensor* per_example = nullptr);
at::Tensor hinge_loss(const at::Tensor& logp_w, const at::Tensor& logp_l, const at::Tensor& ref_w,
                      const at::Tensor& ref_l, double beta, at::Tensor* per_example = nullptr);
// avg_w, avg_l: [B] length-averaged log-probs (sequence_logprob_mean).
at::Tensor simpo_loss(const at::Tensor& avg_w, const at::Tensor& avg_l, double beta, double gamma,
                      at::Tensor* per_example = nullptr);
// logits [B,T,V], labels/mask [B,T] (logprobs.h convention). per_example: [B] per-sequence mean NLL.
at::Tensor sft_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& mask,
                    at::Tensor* per_example = nullptr);
// The same from token_logprobs' output [B,T] (lets a trainer share one log-prob pass with DPO).
at::Tensor sft_loss_from_logprobs(const at::Tensor& token_logp, const at::Tensor& mask,
                                  at::Tensor* per_example = nullptr);
// student/teacher logits [B,T,V] from the same tokens; mask [B,T] aligned with the tokens: the
// distributions compared are those at positions t−1 for every t with mask[t] = 1, i.e. the ones that
// predict response tokens. Only those rows are gathered (memory ~ N·V, not B·T·V). Temperature > 0.
// per_example: [B] per-sequence mean (0 for rows without response tokens).
at::Tensor kl_distill_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                           const at::Tensor& mask, double temperature = 1.0,
                           at::Tensor* per_example = nullptr);

// ---- combination -------------------------------------------------------------------------------
// Everything a term may need. An undefined tensor (the default) means "not available"; a term whose
// inputs are missing makes combine() throw ConfigError naming the loss and the missing data.
struct LossInputs {
  // Reward head.
  at::Tensor r_w, r_l;          // [B] rewards of chosen / rejected
  at::Tensor s_w, s_l;          // [B] teacher/annotator scores (data: score_chosen/score_rejected), NaN =
                                //     absent: margin-mse / soft-bce need every pair scored
  at::Tensor margin;            // [B] per-pair margin for bt-margin; NaN entries fall back to that pair's Δs
  at::Tensor head_out;          // [B,k] attribute head output (regression)
  at::Tensor attributes;        // [B,k] attribute targets (NaN = absent)
  at::Tensor attributes_mask;   // [B] or [B,k], 1 = present; undefined = all (non-NaN) present
  // Policy / LM head.
  at::Tensor logp_w, logp_l;            // [B] Σ log π(y|x) over response tokens
  at::Tensor logp_mean_w, logp_mean_l;  // [B] length-averaged; if undefined, logp / len is used
  at::Tensor len_w, len_l;              // [B] response token counts
  at::Tensor ref_logp_w, ref_logp_l;    // [B] Σ log π_ref(y|x) (frozen reference; detached)
  at::Tensor sft_nll;                   // scalar: sft_loss() of the teacher response
  at::Tensor student_logits;            // [B,T,V]
  at::Tensor teacher_logits;            // [B,T,V] frozen teacher (detached inside)
  at::Tensor kl_mask;                   // [B,T] response-token mask for kl
};

struct LossResult {
  at::Tensor total;                                 // scalar Σ weight·component (differentiable)
  std::map<std::string, at::Tensor> components;     // name → unweighted value, detached scalar
  // components as doubles (synchronises with the device; call once per logging step).
  std::map<std::string, double> component_values() const;
};

// Computes every term of `terms` (filter with active_terms() for the alternate schedule) and their
// weighted sum. Terms with weight 0 are computed and reported but not added. Throws ConfigError
// for an empty term list or a term whose inputs are missing, ShapeError for mis-shaped inputs.
LossResult combine(const std::vector<LossTerm>& terms, const LossInputs& in,
                   const LossHyper& hyper = {});

// One term's unweighted value (the building block of combine).
at::Tensor compute_term(const std::string& name, const LossInputs& in, const LossHyper& hyper);

}  // namespace rmkit::train
