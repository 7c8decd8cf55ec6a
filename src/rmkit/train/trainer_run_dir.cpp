// The trainer's run directory (run_dir.h): lock, stale temps, refusal of another run's directory,
// the run identity and the --resume config check; and the guard that never lets non-finite
// parameters reach a saved model.
#include <cstdlib>
#include <ctime>
#include <limits>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/train/run_dir.h"
#include "rmkit/train/trainer_impl.h"

namespace rmkit::train {
namespace {

// Data-parallel ranks other than 0 share rank 0's directory and write nothing (torchrun / rmkit
// launch set RANK).
bool writes_outputs() {
  const char* r = std::getenv("RANK");
  return !r || !*r || std::atoi(r) == 0;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string resumable_list() { return "--threads, --progress, --log-every, --save-every, --keep-checkpoints, --stop-after-steps"; }

}  // namespace

void Trainer::Impl::open_run_dir() {
  if (!writes_outputs()) return;
  if (o.overwrite && !o.resume.empty()) throw UsageError("--overwrite clears the run that --resume continues; give one of them");
  run_lock = std::make_unique<RunLock>(o.output);
  for (const auto& line : recover_run_saves(o.output)) log("interrupted save: " + line);
  for (const auto& p : remove_run_temps(o.output)) log("removed a stale temp of an interrupted run: " + p);
  if (o.resume.empty()) {
    const std::string marker = run_marker(o.output);
    if (!marker.empty()) {
      if (!o.overwrite)
        throw ConfigError(o.output + " already holds a training run (" + marker +
                          "); pass --overwrite to clear it and start anew, or --resume latest to continue it");
      clear_run_dir(o.output);
      log("--overwrite: cleared " + o.output);
    }
    run_id = RunIdentity::new_id();
  } else if (auto id = RunIdentity::read(o.output)) {
    run_id = id->run_id;
  }
}

void Trainer::Impl::check_resume(const std::string& dir, const TrainerState& saved) {
  if (!path_exists(join_path(dir, "rng.pt")))
    log("warning: " + dir + " has no rng.pt: --resume-inexact continues with a fresh random state, so the "
        "run will not match an uninterrupted one (dropout)");
  if (saved.config.is_object() && !saved.config.empty()) {
    std::string was, now;
    nlohmann::json cfg = o.to_json();
    cfg["batch_size"] = global_batch();  // data parallel: the global batch must match, not the per-rank one
    const std::string key = first_config_difference(saved.config, cfg, &was, &now);
    if (!key.empty())
      throw ConfigError("--resume " + dir + ": " + config_key_option(key) + " differs (checkpoint " + was + ", now " +
                        now + "; config key '" + key + "'); only " + resumable_list() +
                        " may change on resume, or start a new run with --overwrite");
  }
  if (run_id.empty()) run_id = saved.run_id;
}

void Trainer::Impl::record_run_identity(TrainerState* state) {
  if (run_id.empty()) run_id = state->run_id.empty() ? RunIdentity::new_id() : state->run_id;
  state->run_id = run_id;
  state->config = o.to_json();
  state->config["batch_size"] = global_batch();  // per-rank batch x world size (resumable at any world size)
  if (!writes_outputs()) return;
  auto existing = RunIdentity::read(o.output);
  if (existing && existing->run_id == run_id) return;
  RunIdentity id;
  id.run_id = run_id;
  id.config = state->config;
  id.data_hash = summary.data_hash;
  id.started = utc_now();
  id.write(o.output);
}

void Trainer::Impl::check_parameters_finite(int64_t step, const std::string& last_ckpt) {
  torch::NoGradGuard ng;
  auto named = rm->named_trainable_parameters();
  if (o.inject_nonfinite_param_at_step == step && !named.empty())
    named.front().second.view(-1)[0].fill_(std::numeric_limits<float>::infinity());
  std::vector<torch::Tensor> ok;
  ok.reserve(named.size());
  for (const auto& [name, p] : named) ok.push_back(p.isfinite().all());
  if (ok.empty() || torch::stack(ok).all().item<bool>()) return;
  std::string bad;
  for (size_t i = 0; i < named.size(); ++i)
    if (!ok[i].item<bool>()) {
      bad = named[i].first;
      break;
    }
  char lr[32];
  std::snprintf(lr, sizeof lr, "%g", o.lr);
  throw NumericError("step " + std::to_string(step) + ": the optimizer step made parameter " + bad +
                     " non-finite (NaN/inf: too large a --lr (" + lr + ")? --adam-eps 0 with a zero gradient?); "
                     "nothing of it is saved; last good checkpoint: " +
                     (last_ckpt.empty() ? std::string("none (use --save-every)") : last_ckpt));
}

}  // namespace rmkit::train
