// Private state of Trainer, shared by trainer.cpp (setup: models, data) and trainer_loop.cpp
// (steps, evaluation, checkpoints). Not part of the public API.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rmkit/data/pairs.h"
#include "rmkit/model/causal_lm.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"
#include "rmkit/train/batch.h"
#include "rmkit/train/dp_step.h"
#include "rmkit/train/loss_spec.h"
#include "rmkit/train/optim.h"
#include "rmkit/train/reward_model.h"
#include "rmkit/train/run_dir.h"
#include "rmkit/train/train_checkpoint.h"
#include "rmkit/train/trainer.h"

namespace rmkit::train {

// Accumulated statistics of the micro-batches of one optimizer step (or of an evaluation).
struct StepStats {
  double loss_sum = 0;
  int64_t micro = 0;
  std::map<std::string, double> components;  // summed over micro-batches
  int64_t pairs = 0, correct = 0;
  double ties = 0;
  double margin_sum = 0;
  double reward_sum = 0, reward_sq_sum = 0;
  int64_t rewards = 0;
  int64_t real_tokens = 0, computed_tokens = 0, slots = 0;
  double bt_loss_sum = 0;  // evaluation: Σ −log σ(Δr)
};

struct EvalResult {
  double accuracy = -1, loss = 0, reward_mean = 0, reward_std = 1, margin = 0;
  int64_t pairs = 0;
};

struct Trainer::Impl {
  TrainerOptions o;
  std::function<void(const std::string&)> log;
  bool prepared = false;
  DataSummary summary;

  // models
  model::ModelConfig cfg;
  RewardModel rm{nullptr};
  std::unique_ptr<text::Tokenizer> tok;
  std::optional<text::ChatTemplate> tmpl;
  model::CausalLMPtr ref;       // frozen reference (dpo / ipo / hinge)
  model::CausalLMPtr teacher;   // frozen teacher (kl)
  int64_t pad_id = 0;

  // losses
  std::vector<LossTerm> terms;
  Schedule loss_sched = Schedule::Joint;
  LossHyper hyper;
  bool need_policy = false;     // any dpo/ipo/hinge/simpo term
  bool need_ref = false;        // dpo/ipo/hinge
  bool need_sft = false, need_kl = false, need_regression = false;

  // data
  std::vector<EncodedExample> train_set, val_set;
  std::vector<size_t> train_lengths, val_lengths;

  // schedule
  int64_t batches_per_epoch = 0;
  int64_t total_steps = 0;

  // data parallel (dp_step.h): null in a single process
  std::unique_ptr<DataParallelStep> dp;
  int64_t global_batch() const { return o.batch_size * dist::world_size(); }

  // run directory (trainer_run_dir.cpp)
  std::unique_ptr<RunLock> run_lock;
  std::string run_id;
  void open_run_dir();
  void check_resume(const std::string& dir, const TrainerState& saved);
  void record_run_identity(TrainerState* state);
  void check_parameters_finite(int64_t step, const std::string& last_ckpt);

  // trainer.cpp
  void prepare();
  void load_models();
  void load_data();
  void parse_losses();

  // trainer_loop.cpp
  TrainResult train();
  // One micro-batch: forward, combined loss over `active`, stats. Returns the differentiable total.
  torch::Tensor micro_step(const PairBatch& b, const std::vector<LossTerm>& active, StepStats* st);
  EvalResult evaluate(const std::vector<EncodedExample>& set, const std::vector<size_t>& lengths);
  RewardModelMeta meta(int64_t step, const EvalResult* calib) const;
};

// Encodes pairs with the tokenizer + chat template (trainer_data.cpp). Counts truncated pairs.
std::vector<EncodedExample> encode_examples(const std::vector<data::PrefPair>& pairs,
                                            const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                                            int64_t max_length, bool with_teacher, size_t* truncated);

}  // namespace rmkit::train
