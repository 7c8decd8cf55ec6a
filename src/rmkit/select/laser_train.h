// `rmkit laser train`: LASeR's iterative DPO with a bandit choosing the reward model (arXiv
// 2410.01735). Per iteration (default 10), per batch of prompts (default 16):
//   1. the policy's context of the batch (or of each prompt with granularity "instance") -> the arm
//      policy picks one RM (arm_policy.h);
//   2. n samples per prompt from the current policy through the generation engine (the prompt runs
//      once for its n samples; sample i of prompt p at step s uses seed + (s * batch + p) * n + i);
//   3. only the chosen RM scores them (ensembles: every RM);
//   4. pairs per prompt: the top sample against ranks 2..P+1 (or best-worst);
//   5. one AdamW step on DPO(β) + λ·NLL(chosen, token mean) against a frozen reference, re-synced to
//      the policy at the end of each iteration;
//   6. bandit reward = − the mean loss of those pairs measured before the update, normalised.
// With LoRA, only adapters train; at each iteration's end they are merged into the policy (which
// becomes the new reference) and fresh adapters start the next iteration.
// Checkpoints (OUT/checkpoint, atomic) at iteration ends hold the policy, the optimiser and the
// bandit; `resume` continues from the last one with the same arm sequence and losses.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rmkit/select/arm_policy.h"
#include "rmkit/select/rm_pool.h"
#include "rmkit/text/message.h"
#include "rmkit/train/optim.h"

namespace rmkit::select {

struct LaserPrompt {
  text::Conversation prompt;
  std::string category;
  nlohmann::json raw;
};
// {"prompt": str | messages, "category"?} rows. FormatError "FILE:LINE: ..." on a bad row.
std::vector<LaserPrompt> read_laser_prompts(const std::string& path);

// What `laser train` and `laser bon` share: the policy, the prompts, the arms and how one is
// chosen, the context, and the sampling (n, whose default differs, is in each).
struct LaserRunConfig {
  std::string policy, tokenizer, chat_template = "auto", prompts, output;
  std::vector<ArmSpec> rms;
  ArmOptions arm_options;
  ArmPolicyConfig arm;
  std::string context = "last-hidden";
  int64_t max_new_tokens = 150;
  double temperature = 0.8, top_p = 1.0;
  uint64_t seed = 0;
  int64_t kv_cache_mb = 2048;
};

struct LaserTrainConfig : LaserRunConfig {
  std::string granularity = "batch";   // batch | instance
  int64_t iterations = 10, batch_size = 16, n = 30, top_pairs = 10;
  std::string pairs = "top-vs-rest";
  double beta = 0.1, nll_weight = 1.0;
  train::OptimConfig optim;
  double warmup_ratio = 0.1;
  std::string lr_schedule = "constant";
  std::string lora;                     // "" = full fine-tuning
  bool bf16 = false;
  bool resume = false;
  int64_t stop_after = 0;               // > 0: stop (resumably) after this many iterations in total
  std::string progress = "auto";
};

struct LaserTrainResult {
  int64_t steps = 0, rm_tokens = 0, generated_tokens = 0;
  std::vector<uint64_t> arm_counts;
  double seconds = 0;
  bool finished = true;                 // false: stopped by stop_after before the last iteration
};

LaserTrainResult laser_train(const LaserTrainConfig& cfg);

// OUT/report.html from OUT/metrics.jsonl: arm choices over time, per-arm normalised reward, and
// (when prompts carry a category) which RM was chosen for which category.
void write_laser_report(const std::string& out_dir, const std::vector<std::string>& arm_names);

}  // namespace rmkit::select
