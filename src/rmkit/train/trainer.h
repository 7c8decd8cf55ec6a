// Reward-model training loop: data -> tokenised pairs -> length-grouped batches -> one joint
// forward of chosen+rejected -> combined loss (losses.h) -> AdamW with warmup + schedule, gradient
// accumulation and clipping; periodic evaluation with best-checkpoint selection on validation
// accuracy; atomic checkpoints that resume exactly; metrics.jsonl + progress output.
//
// Output directory layout:
//   OUT/                     final reward model (save_reward_model) + metrics.jsonl
//   OUT/best/                best model by validation accuracy (when there is a validation set)
//   OUT/checkpoints/step-N/  model + optimizer.pt + rng.pt + trainer_state.json (last K kept)
//
// Torch-free header: the CLI builds TrainerOptions without libtorch headers.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rmkit::train {

struct TrainerOptions {
  // model / data
  std::string model;             // HF directory, rmkit reward model directory or llama2.c .bin
  std::string tokenizer;         // tokenizer path (required for llama2.c .bin)
  std::vector<std::string> data; // preference files (read_prefs)
  std::string format = "auto";
  bool skip_bad = false;
  std::vector<std::string> val_data;  // explicit validation files (instead of a split)
  double val_fraction = 0.05;    // split of `data` when no val_data / split field
  std::string val_split_field;   // e.g. "subset" (with val_split_value): split_by_field
  std::string val_split_value;
  size_t max_val_pairs = 0;      // 0 = all
  std::string chat_template = "auto";  // auto | template name | custom format with {role}/{content}
  int64_t max_length = 512;
  std::string output;            // OUT directory

  // head
  std::string head_type = "linear";
  std::string head_init = "normal";
  bool freeze_backbone = false;

  // optimisation
  int64_t batch_size = 8;
  int64_t grad_accum = 1;
  double lr = 1e-5;
  std::string schedule = "cosine";
  double warmup_ratio = 0.03;
  double min_lr_ratio = 0.0;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  double max_grad_norm = 1.0;
  int64_t epochs = 1;
  int64_t max_steps = 0;         // > 0 overrides epochs
  uint64_t seed = 42;
  bool bf16 = false;             // CPU autocast to bfloat16
  bool shared_prefix = true;     // run each prompt once for both replies (train/prefix_forward.h):
                                 // packed padding-free batches, always cheaper than the padded layout
  bool shared_prefix_always = false;  // (packed batches are always used; kept for the config format)
  bool grad_checkpointing = false;  // recompute each block's activations in backward (less memory)

  // losses
  std::string loss = "bt";
  std::string loss_schedule = "joint";  // joint | alternate (HAF-RM)
  double beta = 0.1;
  double kl_temperature = 1.0;
  double simpo_beta = 2.0, simpo_gamma = 0.5;
  std::string reference_model;   // "" = frozen copy of the base model (only when dpo/ipo/hinge)
  std::string teacher_model;     // required for `kl`

  // evaluation / checkpoints / logging
  int64_t eval_every = 0;        // 0 = only at the end
  int64_t save_every = 0;        // 0 = no intermediate checkpoints
  int64_t keep_checkpoints = 2;
  std::string resume;            // checkpoint dir (OUT/checkpoints/step-N) or "latest"
  int64_t log_every = 1;         // metrics.jsonl line every N steps
  std::string progress = "auto"; // auto | bar | lines | off
  std::string save_dtype = "float32";

  bool overwrite = false;        // clear OUT when it holds another run (else such a start is refused)
  bool resume_inexact = false;   // resume from a checkpoint without rng.pt (with a warning)

  // Test hook: makes the loss of this step (1-based) NaN (0 = off).
  int64_t inject_nan_at_step = 0;
  // Test hook: makes a parameter inf after this step's optimizer update (0 = off).
  int64_t inject_nonfinite_param_at_step = 0;
  // Stop (as if interrupted) after this many steps, without saving the final model (0 = off).
  int64_t stop_after_steps = 0;

  // data parallel (when launched with WORLD_SIZE > 1; --batch-size is per rank)
  double dist_bucket_mb = 25;    // gradient all-reduce bucket size (the first bucket is 1 MiB)
  bool dist_overlap = true;      // all-reduce buckets during backward (false: after it)
  bool zero1 = false;            // shard AdamW's moments over ranks (no optimizer checkpoints yet)

  nlohmann::json to_json() const;
};

struct DataSummary {
  size_t rows = 0, kept = 0, skipped_bad = 0, dropped_identical = 0, dropped_empty = 0,
         dropped_mismatched = 0;
  size_t train_pairs = 0, val_pairs = 0, truncated = 0;
  size_t identical_after_truncation = 0;  // pairs whose chosen and rejected tokens are the same
  double padding_fraction = 0;   // of the first epoch's batches
  std::vector<std::string> first_errors;
  std::string format, data_hash, annotation_hash, chat_template;
  nlohmann::json to_json() const;
};

struct TrainResult {
  int64_t steps = 0;             // optimizer steps completed
  double final_loss = 0;
  double final_val_accuracy = -1;   // -1: no validation set
  double best_val_accuracy = -1;
  int64_t best_step = 0;
  double seconds = 0;
  bool stopped_early = false;    // stop_after_steps reached
  std::string output;
};

class Trainer {
 public:
  explicit Trainer(TrainerOptions opts);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Takes the output directory (run_dir.h: lock, stale temps, refusal of another run's directory
  // unless `overwrite`), loads model(s), reads/splits/encodes the data. Called by train() when not
  // called before. The directory stays locked until train() returns (or the Trainer goes).
  void prepare();
  const DataSummary& data_summary() const;
  // Runs the loop. Throws NumericError on a non-finite loss, gradient or parameter (nothing
  // non-finite is saved; the last checkpoint is kept).
  TrainResult train();

  // Info lines (data stats, eval results, checkpoint paths); default: stderr.
  void set_logger(std::function<void(const std::string&)> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rmkit::train
