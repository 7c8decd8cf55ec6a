// LossInputs → named loss terms → weighted total (see losses.h).
#include <ATen/ATen.h>

#include "rmkit/train/losses.h"
#include "rmkit/train/losses_util.h"

namespace rmkit::train {
namespace {

[[noreturn]] void missing(const std::string& name, const std::string& what) {
  throw ConfigError("loss '" + name + "' needs " + what);
}

void need_rewards(const std::string& name, const LossInputs& in) {
  if (!in.r_w.defined() || !in.r_l.defined())
    missing(name, "chosen/rejected rewards (r_w/r_l) from the reward head");
}

bool has_scores(const LossInputs& in) { return in.s_w.defined() && in.s_l.defined(); }

void need_scores(const std::string& name, const LossInputs& in) {
  if (!has_scores(in))
    missing(name, "teacher scores (score_chosen/score_rejected) in the data");
  if (!(in.s_w.isfinite() & in.s_l.isfinite()).all().item<bool>())
    missing(name, "teacher scores (score_chosen/score_rejected) for every pair; some pairs of the batch lack them");
}

void need_policy_and_ref(const std::string& name, const LossInputs& in) {
  if (!in.logp_w.defined() || !in.logp_l.defined())
    missing(name, "policy log-probs of the chosen/rejected responses (logp_w/logp_l); enable the "
                  "LM head");
  if (!in.ref_logp_w.defined() || !in.ref_logp_l.defined())
    missing(name, "reference-model log-probs of the chosen/rejected responses "
                  "(ref_logp_w/ref_logp_l); give a reference model");
}

// Length-averaged policy log-prob of one side: the given mean, else sum / length.
at::Tensor average_logp(const std::string& name, const at::Tensor& mean, const at::Tensor& sum,
                        const at::Tensor& len) {
  if (mean.defined()) return mean;
  if (sum.defined() && len.defined()) return sum / len.to(sum.scalar_type()).clamp_min(1);
  missing(name, "length-averaged policy log-probs (logp_mean_w/logp_mean_l), or log-prob sums "
                "(logp_w/logp_l) with response lengths (len_w/len_l)");
}

// Per-pair margin for bt-margin: each pair's given margin, else its Δs (scores may be NaN where a pair
// has none); a pair with neither fails.
at::Tensor resolve_margin(const LossInputs& in) {
  at::Tensor m = in.margin;
  if (has_scores(in)) {
    at::Tensor ds = in.s_w - in.s_l;
    m = m.defined() ? at::where(m.isnan(), ds.to(m.scalar_type()), m) : ds;
  }
  if (!m.defined())
    missing("bt-margin", "a per-pair margin (margin) or teacher scores (score_chosen/"
                         "score_rejected) in the data");
  if (m.isnan().any().item<bool>())
    missing("bt-margin", "a margin or both teacher scores (score_chosen/score_rejected) for every pair; "
                         "pair " + std::to_string(m.isnan().nonzero().flatten()[0].item<int64_t>()) +
                         " of the batch has neither");
  return m;
}

}  // namespace

at::Tensor compute_term(const std::string& name, const LossInputs& in, const LossHyper& hyper) {
  if (name == "bt") {
    need_rewards(name, in);
    return bt_loss(in.r_w, in.r_l);
  }
  if (name == "bt-margin") {
    need_rewards(name, in);
    return bt_margin_loss(in.r_w, in.r_l, resolve_margin(in));
  }
  if (name == "center") {
    need_rewards(name, in);
    return center_loss(in.r_w, in.r_l);
  }
  if (name == "margin-mse") {
    need_rewards(name, in);
    need_scores(name, in);
    return margin_mse_loss(in.r_w, in.r_l, in.s_w, in.s_l);
  }
  if (name == "soft-bce") {
    need_rewards(name, in);
    need_scores(name, in);
    return soft_bce_loss(in.r_w, in.r_l, in.s_w, in.s_l);
  }
  if (name == "regression") {
    if (!in.head_out.defined())
      missing(name, "a multi-attribute reward head output (head_out [B,k])");
    if (!in.attributes.defined())
      missing(name, "attribute scores (attributes) in the data");
    return regression_loss(in.head_out, in.attributes, in.attributes_mask);
  }
  if (name == "dpo" || name == "hinge") {
    need_policy_and_ref(name, in);
    return name == "dpo"
               ? dpo_loss(in.logp_w, in.logp_l, in.ref_logp_w, in.ref_logp_l, hyper.beta)
               : hinge_loss(in.logp_w, in.logp_l, in.ref_logp_w, in.ref_logp_l, hyper.beta);
  }
  if (name == "ipo") {
    need_policy_and_ref(name, in);
    const double beta = hyper.effective_ipo_beta();
    if (!hyper.ipo_average_logps)
      return ipo_loss(in.logp_w, in.logp_l, in.ref_logp_w, in.ref_logp_l, beta);
    if (!in.len_w.defined() || !in.len_l.defined())
      missing(name, "response lengths (len_w/len_l) to length-average the log-probs (or set "
                    "ipo_average_logps = false)");
    at::Tensor aw = average_logp(name, in.logp_mean_w, in.logp_w, in.len_w);
    at::Tensor al = average_logp(name, in.logp_mean_l, in.logp_l, in.len_l);
    at::Tensor rw = in.ref_logp_w / in.len_w.to(in.ref_logp_w.scalar_type()).clamp_min(1);
    at::Tensor rl = in.ref_logp_l / in.len_l.to(in.ref_logp_l.scalar_type()).clamp_min(1);
    return ipo_loss(aw, al, rw, rl, beta);
  }
  if (name == "simpo") {
    at::Tensor aw = average_logp(name, in.logp_mean_w, in.logp_w, in.len_w);
    at::Tensor al = average_logp(name, in.logp_mean_l, in.logp_l, in.len_l);
    return simpo_loss(aw, al, hyper.simpo_beta, hyper.simpo_gamma);
  }
  if (name == "sft") {
    if (!in.sft_nll.defined())
      missing(name, "the LM-head NLL of the teacher response (sft_nll); the data needs a "
                    "teacher response");
    if (in.sft_nll.numel() != 1)
      throw ShapeError("loss 'sft': sft_nll must be a scalar; got " +
                       detail::shape_str(in.sft_nll));
    return in.sft_nll.reshape({});
  }
  if (name == "kl") {
    if (!in.student_logits.defined() || !in.kl_mask.defined())
      missing(name, "student LM logits and a response mask (student_logits/kl_mask)");
    if (!in.teacher_logits.defined())
      missing(name, "frozen teacher logits (teacher_logits); give a teacher model");
    return kl_distill_loss(in.student_logits, in.teacher_logits, in.kl_mask,
                           hyper.kl_temperature);
  }
  loss_group(name);  // throws UsageError listing the valid names
  throw UsageError("loss '" + name + "' has no implementation");
}

LossResult combine(const std::vector<LossTerm>& terms, const LossInputs& in,
                   const LossHyper& hyper) {
  if (terms.empty()) throw ConfigError("combine: no loss terms (check --loss / --schedule)");
  LossResult res;
  at::Tensor total;
  for (const auto& t : terms) {
    at::Tensor v = compute_term(t.name, in, hyper);  // scalar
    res.components[t.name] = v.detach();
    if (t.weight == 0) continue;
    at::Tensor wv = v * t.weight;
    total = total.defined() ? total + wv : wv;
  }
  if (!total.defined()) {
    // All weights zero: a 0 with the dtype/device of the first component, not differentiable.
    total = at::zeros_like(res.components.begin()->second);
  }
  res.total = total;
  return res;
}

std::map<std::string, double> LossResult::component_values() const {
  std::map<std::string, double> out;
  for (const auto& [k, v] : components) out[k] = v.to(at::kDouble).item<double>();
  return out;
}

}  // namespace rmkit::train
