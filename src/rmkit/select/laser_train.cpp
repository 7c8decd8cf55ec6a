#include "rmkit/select/laser_train.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <random>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/core/progress.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/context_features.h"
#include "rmkit/model/lora.h"
#include "rmkit/select/laser_common.h"
#include "rmkit/select/policy_dpo.h"
#include "rmkit/select/preference_pairs.h"
#include "rmkit/serve/engine.h"

namespace rmkit::select {

using json = nlohmann::json;

namespace {

double secs_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// reference <- policy (same parameter names: adapters are merged before this).
void sync_reference(model::CausalLMImpl& policy, model::CausalLMImpl& reference) {
  torch::NoGradGuard ng;
  auto src = policy.named_parameters(true);
  for (auto& p : reference.named_parameters(true)) p.value().copy_(src[p.key()]);
}

std::vector<std::pair<std::string, torch::Tensor>> trainable(model::CausalLMImpl& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : m.named_parameters(true))
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

}  // namespace

LaserTrainResult laser_train(const LaserTrainConfig& cfg) {
  const auto t_start = std::chrono::steady_clock::now();
  if (cfg.granularity != "batch" && cfg.granularity != "instance")
    throw UsageError("--granularity: expected batch or instance, got '" + cfg.granularity + "'");
  const auto prompts = read_laser_prompts(cfg.prompts);
  make_dirs(cfg.output);
  const std::string ckpt = join_path(cfg.output, "checkpoint");
  const bool resuming = cfg.resume && path_exists(join_path(ckpt, "state.json"));
  if (!cfg.resume && path_exists(join_path(ckpt, "state.json")))
    throw UsageError("--output " + cfg.output + " holds a checkpoint; pass --resume to continue it or use another --output");

  // policy and frozen reference (both from the checkpoint when resuming)
  const std::string src = resuming ? join_path(ckpt, "policy") : cfg.policy;
  auto pol = model::load_pretrained(src, resuming ? "" : cfg.tokenizer);
  if (!pol.tokenizer) throw ConfigError(src + ": no tokenizer found beside the policy (pass --tokenizer)");
  std::shared_ptr<text::Tokenizer> tok(std::move(pol.tokenizer));
  auto ref = model::load_pretrained(src, resuming ? "" : cfg.tokenizer);
  model::CausalLMPtr policy = pol.model, reference = ref.model;
  for (auto& p : reference->parameters()) p.set_requires_grad(false);
  reference->eval();
  policy->eval();  // sampling and contexts in eval mode; train mode only inside the DPO step
  const PromptEncoder enc(pol.config, *tok, cfg.chat_template);
  std::vector<std::vector<int32_t>> ids;
  for (const auto& p : prompts) ids.push_back(enc.encode(p.prompt));

  // arms and the arm policy
  std::vector<std::string> names;
  auto arms = load_arms(cfg.rms, cfg.arm_options, &names);
  ArmPolicy chooser(cfg.arm, names, static_cast<size_t>(pol.config.hidden_size));
  const auto ctx_mode = model::parse_context_mode(cfg.context);

  // optimiser over the trainable parameters (LoRA: adapters only)
  model::LoraConfig lora;
  if (!cfg.lora.empty()) lora = model::LoraConfig::parse(cfg.lora);
  const int64_t steps_per_iter = (static_cast<int64_t>(prompts.size()) + cfg.batch_size - 1) / cfg.batch_size;
  const int64_t total_steps = cfg.iterations * steps_per_iter;
  train::LrSchedule schedule(cfg.optim.lr, total_steps, static_cast<int64_t>(cfg.warmup_ratio * total_steps),
                             cfg.lr_schedule);
  std::unique_ptr<torch::optim::AdamW> opt;
  auto start_adapters = [&](int64_t iteration) {
    model::attach_lora(*policy, lora, cfg.seed + static_cast<uint64_t>(iteration));
    opt = train::make_adamw(train::split_param_groups(model::lora_parameters(*policy)), cfg.optim);
  };
  int64_t start_iter = 0, step = 0, rm_tokens_before = 0, gen_tokens_total = 0;
  if (resuming) {
    const json st = json::parse(read_file(join_path(ckpt, "state.json")));
    start_iter = st.at("iterations_done").get<int64_t>();
    step = st.at("step").get<int64_t>();
    rm_tokens_before = st.at("rm_tokens").get<int64_t>();
    gen_tokens_total = st.at("generated_tokens").get<int64_t>();
    chooser.load(st.at("arm_policy"));
  }
  if (!cfg.lora.empty()) {
    start_adapters(start_iter);
  } else {
    opt = train::make_adamw(train::split_param_groups(trainable(*policy)), cfg.optim);
    if (resuming) torch::load(*opt, join_path(ckpt, "optimizer.pt"));
  }
  const std::string metrics_path = join_path(cfg.output, "metrics.jsonl");
  if (resuming) MetricsLog::truncate_after_step(metrics_path, step);
  else if (path_exists(metrics_path)) write_file_atomic(metrics_path, "");
  MetricsLog metrics(metrics_path);

  serve::Engine engine(policy, tok, laser_engine_config(cfg));
  Progress progress("laser train", total_steps,
                    cfg.progress == "off" ? Progress::Mode::Off : cfg.progress == "lines" ? Progress::Mode::Lines : Progress::Mode::Auto);
  progress.set_start_offset(step);
  LaserTrainResult result;

  for (int64_t it = start_iter; it < cfg.iterations; ++it) {
    const auto order = shuffled_indices(prompts.size(), cfg.seed, static_cast<uint64_t>(it));
    for (int64_t s = 0; s < steps_per_iter; ++s) {
      const auto t_step = std::chrono::steady_clock::now();
      std::vector<size_t> batch(order.begin() + s * cfg.batch_size,
                                order.begin() + std::min<int64_t>((s + 1) * cfg.batch_size, static_cast<int64_t>(order.size())));
      const size_t B = batch.size();
      // 1. contexts and arms
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::vector<int64_t>> ctx_ids;
      for (size_t i : batch) ctx_ids.emplace_back(ids[i].begin(), ids[i].end());
      const auto rows = context_rows(model::prompt_contexts(*policy, ctx_ids, ctx_mode));
      const auto batch_ctx = mean_row(rows);
      std::vector<size_t> arm_of(B, 0);
      std::vector<std::vector<double>> arm_scores;
      if (!chooser.ensemble()) {
        if (cfg.granularity == "batch") {
          const size_t a = chooser.choose(batch_ctx, it);
          std::fill(arm_of.begin(), arm_of.end(), a);
          arm_scores.push_back(chooser.last_scores());
        } else {
          for (size_t b = 0; b < B; ++b) {
            arm_of[b] = chooser.choose(rows[b], it);
            arm_scores.push_back(chooser.last_scores());
          }
        }
      }
      const double t_ctx = secs_since(t0);
      // 2. samples
      t0 = std::chrono::steady_clock::now();
      std::vector<std::vector<int32_t>> gen_prompts;
      std::vector<serve::SamplingParams> params;
      for (size_t b = 0; b < B; ++b) {
        gen_prompts.push_back(ids[batch[b]]);
        params.push_back(laser_sampling(cfg, cfg.n, static_cast<uint64_t>(step * cfg.batch_size + static_cast<int64_t>(b))));
      }
      const auto outs = engine.generate_many(gen_prompts, params);
      int64_t gen_tokens = 0;
      for (const auto& o : outs)
        for (const auto& c : o) gen_tokens += static_cast<int64_t>(c.tokens.size());
      gen_tokens_total += gen_tokens;
      const double t_gen = secs_since(t0);
      // 3. scores (only the chosen arms run; ensembles: all)
      t0 = std::chrono::steady_clock::now();
      const ScoredBatch sb = score_batch(arms, chooser.ensemble(), arm_of, batch, prompts, outs);
      std::vector<PromptPairs> pp(B);
      for (size_t b = 0; b < B; ++b) {
        pp[b].prompt = ids[batch[b]];
        std::vector<std::string> texts;
        for (const auto& c : outs[b]) {
          pp[b].responses.push_back(c.tokens);
          texts.push_back(c.text);
        }
        pp[b].pairs = build_pairs(sb.scores[b], texts, cfg.pairs, static_cast<size_t>(cfg.top_pairs));
        if (chooser.agreement()) pp[b].pairs = filter_agreement(pp[b].pairs, sb.per_arm, sb.offset[b]);
      }
      const double t_score = secs_since(t0);
      // 5. the DPO + NLL step
      t0 = std::chrono::steady_clock::now();
      policy->train();
      opt->zero_grad();
      const DpoStepResult res = accumulate_dpo(*policy, *reference, pp, cfg.beta, cfg.nll_weight, cfg.bf16);
      const double lr = schedule.lr_at(step);
      double grad_norm = 0;
      if (res.pairs > 0) {
        std::vector<torch::Tensor> params_list;
        for (auto& g : opt->param_groups())
          for (auto& p : g.params()) params_list.push_back(p);
        grad_norm = train::clip_grad_norm(params_list, cfg.optim.max_grad_norm);
        if (!std::isfinite(res.loss) || !std::isfinite(grad_norm))
          throw NumericError("laser train: non-finite loss or gradient at step " + std::to_string(step + 1) +
                             " (lower --lr or use --max-grad-norm)");
        train::set_learning_rate(*opt, lr);
        opt->step();
      }
      policy->eval();
      const double t_opt = secs_since(t0);
      // 6. bandit rewards: − the loss measured before the update
      t0 = std::chrono::steady_clock::now();
      json raw = nullptr, norm = nullptr;
      if (chooser.uses_bandit()) {
        if (cfg.granularity == "batch") {
          if (res.pairs > 0) {
            raw = -res.loss;
            norm = chooser.update(arm_of[0], batch_ctx, -res.loss);
          }
        } else {
          raw = json::array();
          norm = json::array();
          for (size_t b = 0; b < B; ++b) {
            if (std::isnan(res.prompt_loss[b])) {
              raw.push_back(nullptr);
              norm.push_back(nullptr);
              continue;
            }
            raw.push_back(-res.prompt_loss[b]);
            norm.push_back(chooser.update(arm_of[b], rows[b], -res.prompt_loss[b]));
          }
        }
      }
      const double t_bandit = secs_since(t0);
      ++step;
      int64_t rm_tokens = rm_tokens_before;  // cumulative over the run, resumes included
      for (const auto& a : arms) rm_tokens += a->tokens();
      json arm_names = json::array(), cats = json::array();
      for (size_t b = 0; b < B; ++b) {
        arm_names.push_back(chooser.ensemble() ? json(chooser.strategy()) : json(names[arm_of[b]]));
        cats.push_back(prompts[batch[b]].category);
      }
      const double dt = secs_since(t_step);
      metrics.write({{"step", step},
                     {"iteration", it},
                     {"arms", arm_names},
                     {"categories", cats},
                     {"arm_scores", arm_scores},
                     {"raw_reward", raw},
                     {"normalized_reward", norm},
                     {"loss", res.loss},
                     {"dpo_loss", res.dpo},
                     {"nll_loss", res.nll},
                     {"reward_margin", res.margin},
                     {"pair_accuracy", res.accuracy},
                     {"pairs", res.pairs},
                     {"lr", lr},
                     {"grad_norm", grad_norm},
                     {"rm_tokens", rm_tokens},
                     {"generated_tokens", gen_tokens},
                     {"gen_tokens_per_s", t_gen > 0 ? gen_tokens / t_gen : 0.0},
                     {"time", {{"context", t_ctx}, {"generate", t_gen}, {"score", t_score}, {"step", t_opt}, {"bandit", t_bandit}, {"total", dt}}},
                     {"elapsed_s", secs_since(t_start)}});
      char status[160];
      std::snprintf(status, sizeof status, "iter %lld loss %.4f margin %.3f pairs %lld", static_cast<long long>(it + 1),
                    res.loss, res.margin, static_cast<long long>(res.pairs));
      progress.update(step, status);
    }
    // iteration end: merge adapters, re-sync the reference, checkpoint
    if (!cfg.lora.empty()) model::merge_lora(*policy);
    sync_reference(*policy, *reference);
    int64_t rm_tokens = rm_tokens_before;
    for (const auto& a : arms) rm_tokens += a->tokens();
    const json state = {{"iterations_done", it + 1}, {"step", step}, {"rm_tokens", rm_tokens},
                        {"generated_tokens", gen_tokens_total}, {"arm_policy", chooser.save()}};
    model::write_dir_atomic(ckpt, [&](const std::string& tmp) {
      model::save_pretrained(join_path(tmp, "policy"), pol.config, *policy, tok.get());
      if (cfg.lora.empty()) torch::save(*opt, join_path(tmp, "optimizer.pt"));
      write_file_atomic(join_path(tmp, "state.json"), state.dump(1) + "\n");
    });
    if (cfg.stop_after > 0 && it + 1 >= cfg.stop_after && it + 1 < cfg.iterations) {
      result.finished = false;
      break;
    }
    if (!cfg.lora.empty() && it + 1 < cfg.iterations) start_adapters(it + 1);
  }
  engine.stop();
  progress.finish();
  if (!result.finished) {
    result.steps = step;
    result.arm_counts = chooser.counts();
    result.seconds = secs_since(t_start);
    return result;
  }
  model::save_pretrained(join_path(cfg.output, "policy"), pol.config, *policy, tok.get());
  write_file_atomic(join_path(cfg.output, "bandit.json"), chooser.save().dump(1) + "\n");
  write_laser_report(cfg.output, names);
  result.steps = step;
  result.rm_tokens = rm_tokens_before;
  for (const auto& a : arms) result.rm_tokens += a->tokens();
  result.generated_tokens = gen_tokens_total;
  if (!chooser.ensemble()) result.arm_counts = chooser.counts();
  result.seconds = secs_since(t_start);
  return result;
}

}  // namespace rmkit::select
