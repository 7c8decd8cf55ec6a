// Training checkpoints: OUT/checkpoints/step-N/ holds the reward model (save_reward_model layout),
// optimizer.pt (torch::save of the AdamW state), rng.pt (libtorch's default CPU generator state)
// and trainer_state.json (step, data position, best validation result, run identity). Each is
// written into a temp directory renamed into place, so a crash never leaves a half checkpoint;
// only the newest `keep` are kept.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/train/reward_model.h"

namespace rmkit::train {

struct TrainerState {
  int64_t step = 0;           // optimizer steps completed
  int64_t micro_batches = 0;  // micro-batches consumed: the data position (epoch, batch)
  double best_val_accuracy = -1;
  int64_t best_step = 0;
  // Run identity, checked on resume.
  std::string data_hash;
  std::string annotation_hash;  // "" in checkpoints written before it was recorded (not checked)
  uint64_t seed = 0;
  int64_t batch_size = 0, grad_accum = 0, total_steps = 0;
  std::string loss;
  std::string run_id;                             // the run directory's identity (run_dir.h)
  nlohmann::json config = nlohmann::json::object();  // TrainerOptions::to_json() of the run

  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

// Checkpoint directories under `checkpoints_dir` as (step, path), ascending by step; with a
// run_id, only the checkpoints of that run (trainer_state.json "run_id").
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& checkpoints_dir,
                                                              const std::string& run_id = "");
// Path of the newest checkpoint (of run_id when given), or "" when there is none.
std::string latest_checkpoint(const std::string& checkpoints_dir, const std::string& run_id = "");

// Writes checkpoints_dir/step-<state.step> and prunes to the newest `keep` of the same run
// (state.run_id; keep <= 0: keep all); another run's checkpoints are neither counted nor removed.
// A failed write (full disk, I/O error) throws IoError naming the file; its temp directory is
// removed and earlier checkpoints are untouched. Returns the checkpoint path.
std::string save_train_checkpoint(const std::string& checkpoints_dir, RewardModelImpl& rm,
                                  const text::Tokenizer* tokenizer, const RewardModelMeta& meta,
                                  torch::optim::Optimizer& optimizer, const TrainerState& state,
                                  int64_t keep);

// Restores weights (backbone + head) into `rm`, the optimizer state and the RNG state; returns the
// trainer state. Throws IoError/FormatError/ShapeError naming the checkpoint file at fault. A
// checkpoint without rng.pt cannot resume exactly: IoError unless allow_missing_rng.
TrainerState load_train_checkpoint(const std::string& dir, RewardModelImpl& rm,
                                   torch::optim::Optimizer& optimizer, bool allow_missing_rng = false);

// Default CPU generator state (for exact resume of dropout and any other sampling).
torch::Tensor get_rng_state();
void set_rng_state(const torch::Tensor& state);

}  // namespace rmkit::train
