// rmkit train: trains a reward model (see src/rmkit/train/trainer.h for the output layout).
// Every option lives in the table below: it drives parsing, --help (with defaults), --config
// FILE.json (same keys) and the effective configuration printed at start.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/model/runtime.h"
#include "dist_options.h"
#include "rmkit/train/loss_spec.h"
#include "rmkit/train/trainer.h"

namespace rmkit::cli {
namespace {

int run_train(const Options& o) {
  const bool primary = init_dist_from_options(o);  // WORLD_SIZE > 1: join the process group
  train::TrainerOptions t;
  t.model = o.str("model");
  if (o.has("tokenizer")) t.tokenizer = o.str("tokenizer");
  t.data = o.list("data");
  t.format = o.str("format");
  t.skip_bad = o.flag("skip-bad");
  t.val_data = o.list("val-data");
  t.val_fraction = o.number("val-fraction");
  if (o.has("val-split")) {
    const std::string s = o.str("val-split");
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      throw UsageError("--val-split: expected FIELD=VALUE (e.g. subset=eval), got '" + s + "'");
    t.val_split_field = s.substr(0, eq);
    t.val_split_value = s.substr(eq + 1);
  }
  t.max_val_pairs = static_cast<size_t>(std::max<long long>(0, o.integer("max-val-pairs")));
  t.chat_template = o.str("chat-template");
  t.max_length = o.integer("max-length");
  t.output = o.str("output");
  t.head_type = o.str("head");
  t.head_init = o.str("head-init");
  t.freeze_backbone = o.flag("freeze-backbone");
  t.batch_size = o.integer("batch-size");
  t.grad_accum = o.integer("grad-accum");
  t.lr = o.number("lr");
  t.schedule = o.str("schedule");
  t.warmup_ratio = o.number("warmup-ratio");
  t.min_lr_ratio = o.number("min-lr-ratio");
  t.weight_decay = o.number("weight-decay");
  t.beta1 = o.number("adam-beta1");
  t.beta2 = o.number("adam-beta2");
  t.adam_eps = o.number("adam-eps");
  t.max_grad_norm = o.number("max-grad-norm");
  t.epochs = o.integer("epochs");
  t.max_steps = o.integer("max-steps");
  t.seed = static_cast<uint64_t>(o.integer("seed"));
  t.bf16 = o.flag("bf16");
  const std::string sp = o.choice("shared-prefix", {"auto", "on", "off"});
  t.shared_prefix = sp != "off";
  t.shared_prefix_always = sp == "on";
  t.grad_checkpointing = o.flag("grad-checkpointing");
  t.loss = o.str("loss");
  train::parse_loss_spec(t.loss);  // fail fast on a bad spec, before loading anything
  t.loss_schedule = o.str("loss-schedule");
  train::parse_schedule(t.loss_schedule);
  t.beta = o.number("beta");
  t.kl_temperature = o.number("kl-temperature");
  t.simpo_beta = o.number("simpo-beta");
  t.simpo_gamma = o.number("simpo-gamma");
  if (o.has("reference-model")) t.reference_model = o.str("reference-model");
  if (o.has("teacher-model")) t.teacher_model = o.str("teacher-model");
  t.eval_every = o.integer("eval-every");
  t.save_every = o.integer("save-every");
  t.keep_checkpoints = o.integer("keep-checkpoints");
  if (o.has("resume")) t.resume = o.str("resume");
  t.log_every = o.integer("log-every");
  t.progress = o.str("progress");
  t.save_dtype = o.str("save-dtype");
  t.stop_after_steps = o.integer("stop-after-steps");
  t.overwrite = o.flag("overwrite");
  t.resume_inexact = o.flag("resume-inexact");
  // torchrun --max-restarts: a restarted attempt continues the run from its last checkpoint (or, when
  // the failed attempt saved none, starts it again) unless --resume/--overwrite say otherwise
  if (const char* rc = std::getenv("TORCHELASTIC_RESTART_COUNT");
      rc && std::atoi(rc) > 0 && t.resume.empty() && !t.overwrite) {
    std::error_code ec;
    bool any = false;
    for (const auto& e : std::filesystem::directory_iterator(t.output + "/checkpoints", ec))
      any |= e.path().filename().string().rfind("step-", 0) == 0;
    if (any) t.resume = "latest";
    else t.overwrite = true;
    if (primary)
      std::fprintf(stderr, "torchrun restart %s: %s\n", rc,
                   any ? "resuming from the latest checkpoint" : "no checkpoint yet, starting the run again");
  }
  t.dist_bucket_mb = o.number("bucket-mb");
  t.dist_overlap = !o.flag("no-overlap");
  t.zero1 = o.flag("zero1");
  if (t.zero1 && (t.save_every > 0 || !t.resume.empty()))
    throw UsageError("--zero1: optimizer state is sharded and not checkpointed yet; use it without --save-every / --resume");
  if (!(t.dist_bucket_mb > 0)) throw UsageError("--bucket-mb: expected > 0");

  train::Trainer trainer(t);
  if (!primary) trainer.set_logger([](const std::string&) {});  // rank 0 reports for the group
  trainer.prepare();
  const auto& s = trainer.data_summary();
  if (primary) std::fprintf(stderr,
               "data summary: %zu rows read, %zu pairs kept, %zu bad rows skipped, %zu identical and %zu "
               "empty pairs dropped, %zu mismatched dropped; %zu train / %zu validation pairs; %zu "
               "truncated; padding %.1f%%\n",
               s.rows, s.kept, s.skipped_bad, s.dropped_identical, s.dropped_empty, s.dropped_mismatched,
               s.train_pairs, s.val_pairs, s.truncated, 100.0 * s.padding_fraction);
  auto r = trainer.train();
  if (!primary) return 0;
  if (r.stopped_early) {
    std::fprintf(stderr, "stopped after %lld steps (--stop-after-steps); resume with --resume latest\n",
                 static_cast<long long>(r.steps));
    return 0;
  }
  nlohmann::json summary = {{"steps", r.steps},
                            {"final_loss", r.final_loss},
                            {"seconds", r.seconds},
                            {"output", r.output}};
  if (r.final_val_accuracy >= 0) {
    summary["val_accuracy"] = r.final_val_accuracy;
    summary["best_val_accuracy"] = r.best_val_accuracy;
    summary["best_step"] = r.best_step;
  }
  std::cout << summary.dump() << std::endl;
  return 0;
}

CommandRegistrar reg({
    "train",
    "train a reward model on preference pairs",
    with_dist_options({
        // model / data
        {"model", OptKind::String, "", "base model: HF directory, rmkit reward model or llama2.c .bin", true},
        {"tokenizer", OptKind::String, "", "tokenizer path (required for a llama2.c .bin)"},
        {"data", OptKind::String, "", "preference files (.jsonl/.json[.gz]); several allowed", true, true},
        {"format", OptKind::String, "auto", "data format: auto|normalized|trl|hh|rm-bench|rewardbench", false, false, "auto|normalized|trl|hh|rm-bench|rewardbench"},
        {"skip-bad", OptKind::Flag, "false", "skip (and count) malformed rows instead of stopping"},
        {"val-data", OptKind::String, "", "validation files (instead of splitting --data)", false, true},
        {"val-fraction", OptKind::Float, "0.05", "fraction of --data held out for validation (grouped by prompt)", false, false, "[0,1)"},
        {"val-split", OptKind::String, "", "validation = pairs with FIELD=VALUE (e.g. subset=eval, meta.split=test)"},
        {"max-val-pairs", OptKind::Int, "0", "cap on validation pairs (0 = all)", false, false, "[0,)"},
        {"chat-template", OptKind::String, "auto", "auto | llama3|chatml|qwen3|llama2|mistral|gemma|plain | format with {role}/{content} | file"},
        {"max-length", OptKind::Int, "512", "max tokens per prompt+response (longer pairs are truncated and counted)", false, false, "[8,)"},
        {"output", OptKind::String, "", "output directory (model, metrics.jsonl, best/, checkpoints/)", true},
        // head
        {"head", OptKind::String, "linear", "reward head: linear | mlp (h->1024->ReLU->dropout 0.1->1)", false, false, "linear|mlp"},
        {"head-init", OptKind::String, "normal", "head init: normal (std 1/sqrt(h+1)) | zero (HAF-RM)", false, false, "normal|zero"},
        {"freeze-backbone", OptKind::Flag, "false", "train only the reward head"},
        // optimisation
        {"batch-size", OptKind::Int, "8", "pairs per micro-batch", false, false, "[1,)"},
        {"grad-accum", OptKind::Int, "1", "micro-batches per optimizer step (an epoch's last step takes those left)", false, false, "[1,)"},
        {"lr", OptKind::Float, "1e-5", "peak learning rate", false, false, "(0,)"},
        {"schedule", OptKind::String, "cosine", "LR schedule after warmup: cosine | linear | constant", false, false, "cosine|linear|constant"},
        {"warmup-ratio", OptKind::Float, "0.03", "linear warmup as a fraction of the optimizer steps", false, false, "[0,1]"},
        {"min-lr-ratio", OptKind::Float, "0", "final LR as a fraction of --lr (cosine/linear)", false, false, "[0,1]"},
        {"weight-decay", OptKind::Float, "0", "AdamW weight decay (never on norms, biases, 1-d params)", false, false, "[0,)"},
        {"adam-beta1", OptKind::Float, "0.9", "AdamW beta1", false, false, "[0,1)"},
        {"adam-beta2", OptKind::Float, "0.999", "AdamW beta2", false, false, "[0,1)"},
        {"adam-eps", OptKind::Float, "1e-8", "AdamW epsilon", false, false, "[0,)"},
        {"max-grad-norm", OptKind::Float, "1.0", "gradient clipping norm (0 = off)", false, false, "[0,)"},
        {"epochs", OptKind::Int, "1", "passes over the training pairs", false, false, "[0,)"},
        {"max-steps", OptKind::Int, "0", "optimizer steps (> 0 overrides --epochs)", false, false, "[0,)"},
        {"seed", OptKind::Int, "42", "seed: split, batch order, head init, dropout", false, false, "[0,)"},
        {"threads", OptKind::Int, "0", "CPU threads (0 = physical cores; data parallel: divided by the ranks on this machine)", false, false, "[0,4*cores]"},
        {"bf16", OptKind::Flag, "false", "bfloat16 autocast on CPU"},
        {"shared-prefix", OptKind::String, "auto", "auto | on | off: run each prompt once for both replies in packed, padding-free batches (same loss and gradients; auto = on); off: the padded joint layout", false, false, "auto|on|off"},
        {"grad-checkpointing", OptKind::Flag, "false", "recompute each block's activations in backward (less memory, more time)"},
        // losses
        {"loss", OptKind::String, "bt", "loss spec name[:weight],... (bt, bt-margin, center, margin-mse, soft-bce, regression, dpo, ipo, hinge, simpo, sft, kl)"},
        {"loss-schedule", OptKind::String, "joint", "joint | alternate (HAF-RM: reward terms on even steps, policy terms on odd)", false, false, "joint|alternate"},
        {"beta", OptKind::Float, "0.1", "DPO/IPO/hinge beta", false, false, "(0,)"},
        {"kl-temperature", OptKind::Float, "1.0", "distillation temperature for kl", false, false, "(0,)"},
        {"simpo-beta", OptKind::Float, "2.0", "SimPO beta", false, false, "(0,)"},
        {"simpo-gamma", OptKind::Float, "0.5", "SimPO gamma"},
        {"reference-model", OptKind::String, "", "frozen reference for dpo/ipo/hinge (default: a frozen copy of --model)"},
        {"teacher-model", OptKind::String, "", "teacher for kl (must share the tokenizer/vocabulary)"},
        // evaluation / checkpoints / logging
        {"eval-every", OptKind::Int, "0", "evaluate every N steps (0 = at the end); the best is saved to OUT/best", false, false, "[0,)"},
        {"save-every", OptKind::Int, "0", "checkpoint every N steps under OUT/checkpoints (0 = none)", false, false, "[0,)"},
        {"keep-checkpoints", OptKind::Int, "2", "checkpoints kept (newest of this run; 0 = all)", false, false, "[0,)"},
        {"resume", OptKind::String, "", "continue from a checkpoint directory, or 'latest' (of this run); options that may change on resume: --threads, --progress, --log-every, --save-every, --keep-checkpoints, --stop-after-steps (any other difference is refused)"},
        {"resume-inexact", OptKind::Flag, "false", "allow --resume from a checkpoint without rng.pt (continues with a fresh random state, with a warning)"},
        {"overwrite", OptKind::Flag, "false", "clear --output first when it holds another run (without it such a start is refused)"},
        {"log-every", OptKind::Int, "1", "metrics.jsonl line every N steps", false, false, "[0,)"},
        {"progress", OptKind::String, "auto", "auto | bar | lines | off", false, false, "auto|bar|lines|off"},
        {"save-dtype", OptKind::String, "float32", "dtype of saved weights: float32 | bfloat16 | float16", false, false, "float32|bfloat16|float16"},
        {"stop-after-steps", OptKind::Int, "0", "stop after N steps without saving the final model (to test --resume)", false, false, "[0,)"},
        // data parallel (launched by torchrun / rmkit launch / SLURM; see docs/distributed.md)
        {"bucket-mb", OptKind::Float, "25", "data parallel: gradient all-reduce bucket size in MiB (first bucket 1 MiB)"},
        {"no-overlap", OptKind::Flag, "false", "data parallel: all-reduce after backward instead of during it"},
        {"zero1", OptKind::Flag, "false", "data parallel: shard AdamW's moments over ranks (ZeRO-1; no --save-every/--resume yet)"},
    }),
    {},
    run_train,
    /*print_config=*/true,
});

}  // namespace
}  // namespace rmkit::cli
