// The training loop: micro-batches -> combined loss -> AdamW step; evaluation, best model,
// checkpoints, resume, metrics and progress.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/core/progress.h"
#include "rmkit/data/batching.h"
#include "rmkit/train/autocast.h"
#include "rmkit/train/logprobs.h"
#include "rmkit/train/losses.h"
#include "rmkit/train/trainer_impl.h"

namespace rmkit::train {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void add_reward_stats(const torch::Tensor& r_w, const torch::Tensor& r_l, StepStats* st) {
  auto w = r_w.detach().to(torch::kDouble), l = r_l.detach().to(torch::kDouble);
  auto d = w - l;
  st->pairs += w.size(0);
  st->correct += d.gt(0).sum().item<int64_t>();
  st->ties += d.eq(0).sum().item<double>();
  st->margin_sum += d.sum().item<double>();
  auto all = torch::cat({w, l});
  st->reward_sum += all.sum().item<double>();
  st->reward_sq_sum += all.pow(2).sum().item<double>();
  st->rewards += all.size(0);
  st->bt_loss_sum += -torch::log_sigmoid(d).sum().item<double>();
}

double reward_mean(const StepStats& s) { return s.rewards ? s.reward_sum / s.rewards : 0.0; }
double reward_std(const StepStats& s) {
  if (s.rewards < 2) return 0.0;
  double m = reward_mean(s);
  double var = (s.reward_sq_sum - s.rewards * m * m) / (s.rewards - 1);
  return std::sqrt(std::max(0.0, var));
}

Progress::Mode progress_mode(const std::string& s) {
  if (s == "bar") return Progress::Mode::Bar;
  if (s == "lines") return Progress::Mode::Lines;
  if (s == "off") return Progress::Mode::Off;
  if (s == "auto") return Progress::Mode::Auto;
  throw UsageError("--progress: expected auto, bar, lines or off, got '" + s + "'");
}

}  // namespace

torch::Tensor Trainer::Impl::micro_step(const PairBatch& b, const std::vector<LossTerm>& active,
                                        StepStats* st) {
  const int64_t B = b.B;
  bool policy = false, sft = false, kl = false;
  for (const auto& t : active) {
    auto g = t.name;
    policy |= g == "dpo" || g == "ipo" || g == "hinge" || g == "simpo";
    sft |= g == "sft";
    kl |= g == "kl";
  }
  CpuAutocast ac(o.bf16);
  // Chosen rows 0..B-1 and rejected rows B..2B-1 in ONE forward (batch.h). In the shared-prefix
  // layout (prefix_forward.h) `hidden` rows are [last prompt token, reply...] and lm_ids /
  // lm_mask index them the same way, so every LM-head term below reads the same tokens.
  torch::Tensor rewards, attributes, hidden, lm_ids, lm_mask;
  if (b.shared) {
    PrefixPairOutput po = prefix_shared_forward(*rm, b.prefix);
    rewards = po.all.rewards;
    attributes = po.all.attributes;
    hidden = po.all.hidden;
    lm_ids = po.lm_ids;
    lm_mask = po.lm_response_mask;
  } else {
    RewardOutput out = rm->forward(b.ids, b.mask);
    rewards = out.rewards;
    attributes = out.attributes;
    hidden = out.hidden;
    lm_ids = b.ids;
    lm_mask = b.response_mask;
  }
  // Logits of a frozen model (reference / teacher) in the same layout as `hidden`.
  auto frozen_logits = [&](model::CausalLMImpl& m, int64_t rows) {
    torch::NoGradGuard ng;
    if (b.shared) {
      PrefixHidden h = prefix_shared_hidden(m, b.prefix);
      return m.lm_logits(h.hidden.slice(0, 0, rows));
    }
    model::ForwardInput fi;
    fi.input_ids = b.ids.slice(0, 0, rows);
    fi.attention_mask = b.mask.slice(0, 0, rows);
    return m.forward(fi);
  };
  LossInputs in;
  in.r_w = rewards.slice(0, 0, B);
  in.r_l = rewards.slice(0, B, 2 * B);
  // Scores and margins go in as they are, NaN where a pair has none: bt-margin resolves each pair
  // (its margin, else Δs), margin-mse / soft-bce need every pair scored (losses.h).
  if ((b.s_w.isfinite() & b.s_l.isfinite()).any().item<bool>()) {
    in.s_w = b.s_w;
    in.s_l = b.s_l;
  }
  if (b.margin.isfinite().any().item<bool>()) in.margin = b.margin;
  if (attributes.defined()) {
    in.head_out = attributes.slice(0, 0, B);  // attributes describe the chosen reply
    in.attributes = b.attributes;
    in.attributes_mask = b.attributes_mask;
  }
  torch::Tensor logits;
  if (policy || kl) logits = rm->lm_logits(hidden);  // [2B, T, V]
  if (policy) {
    auto tlp = token_logprobs(logits, lm_ids, lm_mask);  // [2B, T]
    auto sums = tlp.sum(1);                              // [2B]
    auto lens = target_mask(lm_mask, torch::kFloat32).sum(1);
    in.logp_w = sums.slice(0, 0, B);
    in.logp_l = sums.slice(0, B, 2 * B);
    in.len_w = lens.slice(0, 0, B);
    in.len_l = lens.slice(0, B, 2 * B);
    if (ref) {
      torch::NoGradGuard ng;
      auto ref_sums = token_logprobs(frozen_logits(*ref, 2 * B), lm_ids, lm_mask).sum(1);  // [2B]
      in.ref_logp_w = ref_sums.slice(0, 0, B);
      in.ref_logp_l = ref_sums.slice(0, B, 2 * B);
    }
  }
  if (kl) {
    in.teacher_logits = frozen_logits(*teacher, B);  // [B, T, V] on the chosen rows
    in.student_logits = logits.slice(0, 0, B);
    // KL over the positions of reply tokens; in the shared layout reply token j sits at column 1+j.
    in.kl_mask = b.shared ? torch::cat({torch::zeros({B, 1}, torch::kLong), b.prefix.resp_mask.slice(0, 0, B)}, 1)
                          : b.response_mask.slice(0, 0, B);
  }
  if (sft) {
    if (b.teacher_count > 0) {
      model::ForwardInput fi;
      fi.input_ids = b.teacher_ids;
      fi.attention_mask = b.teacher_mask;
      auto tl = rm->lm_logits(rm->backbone().forward_hidden(fi));  // [B, Tt, V]
      in.sft_nll = sft_loss(tl, b.teacher_ids, b.teacher_response_mask);
    } else {
      in.sft_nll = torch::zeros({}, torch::kFloat32);  // no teacher reply in this batch
    }
  }
  LossResult res = dp ? dp->combine(active, in, hyper, b) : combine(active, in, hyper);
  add_reward_stats(in.r_w, in.r_l, st);
  for (const auto& [name, v] : res.component_values()) st->components[name] += v;
  st->real_tokens += b.real_tokens;
  st->computed_tokens += b.computed_tokens;
  st->slots += b.slots;
  st->micro += 1;
  return res.total;
}

EvalResult Trainer::Impl::evaluate(const std::vector<EncodedExample>& set,
                                   const std::vector<size_t>& lengths) {
  EvalResult r;
  if (set.empty()) return r;
  torch::NoGradGuard ng;
  rm->eval();
  CpuAutocast ac(o.bf16);
  StepStats st;
  auto batches = data::sequential_batches(lengths, static_cast<size_t>(o.batch_size));
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    if (dp && static_cast<int>(bi % static_cast<size_t>(dp->world())) != dp->rank()) continue;  // sharded
    const auto& idx = batches[bi];
    PairBatch b = collate_pairs(set, idx, pad_id, false, o.shared_prefix, o.shared_prefix_always ? 0 : cfg.hidden_size,
                                rm->head_config().num_attributes);
    auto rewards = b.shared ? prefix_shared_forward(*rm, b.prefix).all.rewards : rm->forward(b.ids, b.mask).rewards;
    add_reward_stats(rewards.slice(0, 0, b.B), rewards.slice(0, b.B, 2 * b.B), &st);
  }
  if (dp) dp->reduce_stats(&st, "all-reduce of evaluation statistics");
  rm->train();
  r.pairs = st.pairs;
  r.accuracy = st.pairs ? static_cast<double>(st.correct) / st.pairs : -1;
  r.loss = st.pairs ? st.bt_loss_sum / st.pairs : 0;
  r.margin = st.pairs ? st.margin_sum / st.pairs : 0;
  r.reward_mean = reward_mean(st);
  r.reward_std = reward_std(st);
  return r;
}

RewardModelMeta Trainer::Impl::meta(int64_t step, const EvalResult* calib) const {
  RewardModelMeta m;
  m.training_config = o.to_json();
  m.data_hash = summary.data_hash;
  m.chat_template = summary.chat_template;
  m.base_model = o.model;
  m.step = step;
  if (calib && calib->pairs > 0) {
    m.reward_mean = calib->reward_mean;
    m.reward_std = calib->reward_std;
    m.calibration_count = 2 * calib->pairs;
    m.val_accuracy = calib->accuracy;
  }
  return m;
}

TrainResult Trainer::Impl::train() {
  namespace fs = std::filesystem;
  const double t_start = now_s();
  make_dirs(o.output);
  const std::string ckpt_dir = join_path(o.output, "checkpoints");
  const std::string metrics_path = join_path(o.output, "metrics.jsonl");

  OptimConfig oc;
  oc.lr = o.lr;
  oc.beta1 = o.beta1;
  oc.beta2 = o.beta2;
  oc.eps = o.adam_eps;
  oc.weight_decay = o.weight_decay;
  oc.max_grad_norm = o.max_grad_norm;
  auto groups = split_param_groups(rm->named_trainable_parameters());
  auto opt = make_adamw(o.zero1 ? DataParallelStep::zero1_groups(groups) : groups, oc);  // --zero1: own share
  std::vector<torch::Tensor> params = groups.decay;
  params.insert(params.end(), groups.no_decay.begin(), groups.no_decay.end());
  const int64_t warmup = static_cast<int64_t>(std::llround(o.warmup_ratio * static_cast<double>(total_steps)));
  LrSchedule sched(o.lr, total_steps, warmup, o.schedule, o.min_lr_ratio);

  TrainerState state;
  state.data_hash = summary.data_hash;
  state.annotation_hash = summary.annotation_hash;
  state.seed = o.seed;
  state.batch_size = global_batch();  // per-rank batch x world size: resumable at any world size
  state.grad_accum = o.grad_accum;
  state.total_steps = total_steps;
  state.loss = o.loss;
  torch::manual_seed(o.seed);  // dropout in the MLP head; restored from rng.pt on resume

  if (!o.resume.empty()) {
    std::string dir = o.resume == "latest" ? latest_checkpoint(ckpt_dir, run_id) : o.resume;
    if (dir.empty()) throw UsageError("--resume latest: no checkpoint under " + ckpt_dir);
    TrainerState saved = load_train_checkpoint(dir, *rm, *opt, o.resume_inexact);
    auto mismatch = [&](const std::string& what, const std::string& a, const std::string& b) {
      if (a != b)
        throw ConfigError("--resume " + dir + ": " + what + " differs (checkpoint " + a + ", now " + b +
                          "); resuming would not continue the same run");
    };
    mismatch("data hash", saved.data_hash, state.data_hash);
    if (!saved.annotation_hash.empty())  // older checkpoints did not record it
      mismatch("annotations (scores, margins, attributes, teacher replies) hash", saved.annotation_hash,
               state.annotation_hash);
    mismatch("seed", std::to_string(saved.seed), std::to_string(state.seed));
    mismatch("batch size", std::to_string(saved.batch_size), std::to_string(state.batch_size));
    mismatch("grad accumulation", std::to_string(saved.grad_accum), std::to_string(state.grad_accum));
    mismatch("total steps", std::to_string(saved.total_steps), std::to_string(state.total_steps));
    mismatch("loss spec", saved.loss, state.loss);
    check_resume(dir, saved);  // any other option that differs, by name; rng.pt warning
    state = saved;
    size_t dropped = dist::is_primary() ? MetricsLog::truncate_after_step(metrics_path, state.step) : 0;
    log("resumed from " + dir + " at step " + std::to_string(state.step) +
        (dropped ? " (dropped " + std::to_string(dropped) + " metrics lines logged after it)" : ""));
  }
  record_run_identity(&state);  // run.json; the run id every checkpoint carries
  // Data parallel: replicas start from rank 0's parameters; only rank 0 writes outputs.
  dist::ReducerOptions ro;
  ro.bucket_cap_bytes = static_cast<size_t>(o.dist_bucket_mb * (1 << 20));
  ro.overlap = o.dist_overlap;
  // An untied LM head that no loss term reads (no dpo/ipo/hinge/simpo/sft/kl) gets no gradient on any
  // rank: it is left out of the all-reduce instead of sending its zeros every step.
  std::vector<torch::Tensor> reduced;
  for (const auto& [name, p] : rm->named_trainable_parameters())
    if (need_policy || need_kl || need_sft || name != "lm_head.weight") reduced.push_back(p);
  dp = DataParallelStep::create(reduced, ro);
  if (dp) dp->broadcast_parameters(params);
  if (dp && o.zero1) dp->enable_zero1(groups);
  const bool primary = dist::is_primary();
  MetricsLog metrics(primary ? metrics_path : "/dev/null");
  Progress progress("train", total_steps, primary ? progress_mode(o.progress) : Progress::Mode::Off);
  progress.set_start_offset(state.step);
  std::string last_ckpt = latest_checkpoint(ckpt_dir, run_id);

  int64_t cached_epoch = -1;
  data::Batches epoch_batches;
  TrainResult result;
  result.output = o.output;
  EvalResult last_eval;
  bool last_eval_at_end = false;
  rm->train();
  if (ref) ref->eval();
  if (teacher) teacher->eval();

  while (state.step < total_steps) {
    const int64_t step = state.step;  // 0-based index of this optimizer step
    const double t0 = now_s();
    const double lr = sched.lr_at(step);
    set_learning_rate(*opt, lr);
    // Undefined, not zero (libtorch 1.13's zero_grad() zeroes): AdamW skips a parameter without a
    // gradient, so one that no active term reaches this step (--loss-schedule alternate) keeps its
    // value instead of moving by momentum and weight decay.
    for (auto& p : params) p.mutable_grad().reset();
    auto active = active_terms(terms, step, loss_sched);
    StepStats st, dummy_stats;
    if (dp) dp->seed_step(o.seed, step);
    double epoch_pos = 0;
    // an accumulation window never crosses an epoch: the epoch's last step takes the micro-batches
    // left (ceil(batches / grad_accum) steps per epoch) and averages over those
    const int64_t window = std::min<int64_t>(o.grad_accum, batches_per_epoch - state.micro_batches % batches_per_epoch);
    for (int64_t m = 0; m < window; ++m) {
      const int64_t epoch = state.micro_batches / batches_per_epoch;
      const int64_t bi = state.micro_batches % batches_per_epoch;
      if (epoch != cached_epoch) {
        epoch_batches = data::length_grouped_batches(train_lengths, static_cast<size_t>(global_batch()), o.seed,
                                                     static_cast<uint64_t>(epoch));
        cached_epoch = epoch;
      }
      bool dummy = false;
      const auto& global_idx = epoch_batches[static_cast<size_t>(bi)];
      PairBatch b = collate_pairs(train_set, dp ? dp->shard(global_idx, &dummy) : global_idx, pad_id, need_sft,
                                  o.shared_prefix, o.shared_prefix_always ? 0 : cfg.hidden_size,
                                  rm->head_config().num_attributes);
      if (dp) dp->set_dummy(dummy);
      torch::Tensor total = micro_step(b, active, dummy ? &dummy_stats : &st);
      if (o.inject_nan_at_step == step + 1) total = total * std::numeric_limits<double>::quiet_NaN();
      double v = total.item<double>();
      st.loss_sum += v;
      if (!std::isfinite(v)) {
        progress.finish();
        throw NumericError("step " + std::to_string(step + 1) + ": loss is " + std::to_string(v) +
                           "; stopped before updating the model; last good checkpoint: " +
                           (last_ckpt.empty() ? std::string("none (use --save-every)") : last_ckpt));
      }
      if (dp) dp->before_backward(m + 1 == window);
      if (total.requires_grad()) (total / static_cast<double>(window)).backward();
      state.micro_batches += 1;
      epoch_pos = static_cast<double>(state.micro_batches) / batches_per_epoch;
    }
    if (dp) {
      dp->finish_step(step + 1);  // gradients = the average over ranks
      dp->reduce_stats(&st, "all-reduce of step " + std::to_string(step + 1) + " metrics");
    }
    const double grad_norm = clip_grad_norm(params, o.max_grad_norm);
    if (!std::isfinite(grad_norm)) {
      progress.finish();
      throw NumericError("step " + std::to_string(step + 1) + ": gradient norm is " + std::to_string(grad_norm) +
                         "; stopped before updating the model; last good checkpoint: " +
                         (last_ckpt.empty() ? std::string("none (use --save-every)") : last_ckpt));
    }
    opt->step();
    if (dp) dp->after_optimizer_step();  // --zero1: every parameter from the rank that updated it
    check_parameters_finite(step + 1, last_ckpt);  // never evaluate, save or continue from NaN/inf weights
    state.step += 1;
    const double dt = now_s() - t0;

    const double loss = st.loss_sum / st.micro;
    nlohmann::json rec = {{"step", state.step}, {"epoch", epoch_pos}, {"loss", loss}};
    for (const auto& [name, v] : st.components) rec["loss_" + name] = v / st.micro;
    rec["accuracy"] = st.pairs ? static_cast<double>(st.correct) / st.pairs : 0.0;
    rec["margin"] = st.pairs ? st.margin_sum / st.pairs : 0.0;
    rec["reward_mean"] = reward_mean(st);
    rec["reward_std"] = reward_std(st);
    rec["lr"] = lr;
    rec["grad_norm"] = grad_norm;
    rec["tokens_per_s"] = dt > 0 ? st.real_tokens / dt : 0.0;
    rec["padding_fraction"] = st.slots ? 1.0 - static_cast<double>(st.computed_tokens) / st.slots : 0.0;
    rec["step_time_s"] = dt;
    if (dp) rec["allreduce_wait_s"] = dp->reducer().stats().finish_wait_s;  // not hidden behind backward

    const bool last = state.step == total_steps;
    const bool eval_now = !val_set.empty() && ((o.eval_every > 0 && state.step % o.eval_every == 0) || last);
    if (eval_now) {
      last_eval = evaluate(val_set, val_lengths);
      last_eval_at_end = last;
      rec["val_accuracy"] = last_eval.accuracy;
      rec["val_loss"] = last_eval.loss;
      rec["val_margin"] = last_eval.margin;
      rec["val_reward_mean"] = last_eval.reward_mean;
      rec["val_reward_std"] = last_eval.reward_std;
      if (last_eval.accuracy > state.best_val_accuracy) {
        state.best_val_accuracy = last_eval.accuracy;
        state.best_step = state.step;
        if (primary) save_reward_model(join_path(o.output, "best"), *rm, tok.get(), meta(state.step, &last_eval), o.save_dtype);
      }
      char buf[200];
      std::snprintf(buf, sizeof buf, "eval step %lld: val_accuracy %.4f val_loss %.4f (best %.4f at step %lld)",
                    static_cast<long long>(state.step), last_eval.accuracy, last_eval.loss,
                    state.best_val_accuracy, static_cast<long long>(state.best_step));
      progress.message(buf);
    }
    if (o.log_every <= 1 || state.step % o.log_every == 0 || last || eval_now) metrics.write(rec);
    result.final_loss = loss;

    if (primary && o.save_every > 0 && state.step % o.save_every == 0) {
      last_ckpt = save_train_checkpoint(ckpt_dir, *rm, tok.get(), meta(state.step, nullptr), *opt, state,
                                        o.keep_checkpoints);
      progress.message("checkpoint " + last_ckpt);
    }
    char status[160];
    std::snprintf(status, sizeof status, "loss %.4f acc %.3f lr %.2e %.0f tok/s", loss,
                  rec["accuracy"].get<double>(), lr, rec["tokens_per_s"].get<double>());
    progress.update(state.step, status);
    if (o.stop_after_steps > 0 && state.step >= o.stop_after_steps && !last) {
      progress.finish();
      result.steps = state.step;
      result.stopped_early = true;
      result.seconds = now_s() - t_start;
      return result;
    }
  }
  progress.finish();

  // final model: calibrate on validation (or a train sample when there is none)
  EvalResult calib = last_eval;
  if (val_set.empty() || !last_eval_at_end) {
    if (!val_set.empty()) {
      calib = evaluate(val_set, val_lengths);
    } else {
      size_t n = std::min<size_t>(train_set.size(), 512);
      std::vector<EncodedExample> sample(train_set.begin(), train_set.begin() + static_cast<std::ptrdiff_t>(n));
      std::vector<size_t> lens(train_lengths.begin(), train_lengths.begin() + static_cast<std::ptrdiff_t>(n));
      calib = evaluate(sample, lens);
      calib.accuracy = -1;  // not a validation accuracy
    }
  }
  if (primary) save_reward_model(o.output, *rm, tok.get(), meta(state.step, &calib), o.save_dtype);
  result.steps = state.step;
  result.final_val_accuracy = val_set.empty() ? -1 : calib.accuracy;
  result.best_val_accuracy = state.best_val_accuracy;
  result.best_step = state.best_step;
  result.seconds = now_s() - t_start;
  log("saved reward model to " + o.output + (state.best_step ? " (best validation model in " +
                                             join_path(o.output, "best") + ")" : ""));
  return result;
}

}  // namespace rmkit::train
