// Pieces `laser train` and `laser bon` share: prompt reading and encoding, seeded batch order,
// context rows, and scoring a batch's samples with the chosen arms.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "rmkit/model/config.h"
#include "rmkit/select/laser_train.h"
#include "rmkit/select/rm_pool.h"
#include "rmkit/serve/engine.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::select {

// The policy's chat template applied to a prompt conversation (generation prompt added, BOS once).
class PromptEncoder {
 public:
  PromptEncoder(const model::ModelConfig& cfg, const text::Tokenizer& tok, const std::string& chat_template);
  std::vector<int32_t> encode(const text::Conversation& conv) const;

 private:
  const text::Tokenizer& tok_;
  text::ChatTemplate tmpl_;
};

// One arm per spec (make_arm), and their names in the same order.
std::vector<std::unique_ptr<RewardArm>> load_arms(const std::vector<ArmSpec>& specs, const ArmOptions& opts,
                                                  std::vector<std::string>* names);

// The base of a run's sampling seeds: SplitMix64(seed).next() (bandit/rng.h), so that runs with seeds 1
// and 2 draw unrelated samples (sample i of request r uses base + r * n + i; a plain seed + r * n + i
// would shift one run's samples onto the other's).
uint64_t sampling_seed_base(uint64_t seed);

// The engine both verbs sample from (the run's KV-cache budget, an unbounded in-process queue).
serve::EngineConfig laser_engine_config(const LaserRunConfig& cfg);
// Sampling of n responses for the run's request number `request` (sample i gets seed
// sampling_seed_base(cfg.seed) + request * n + i).
serve::SamplingParams laser_sampling(const LaserRunConfig& cfg, int64_t n, uint64_t request);

// 0..n-1 in a seeded order (Fisher-Yates on mt19937_64 draws of seed and iteration).
std::vector<size_t> shuffled_indices(size_t n, uint64_t seed, uint64_t iteration);
// [B, H] float64 -> B vectors, and their mean.
std::vector<std::vector<double>> context_rows(const torch::Tensor& ctx);
std::vector<double> mean_row(const std::vector<std::vector<double>>& rows);

struct ScoredBatch {
  std::vector<std::vector<double>> scores;   // [prompt][sample]: what the pairs are built from
  std::vector<std::vector<double>> per_arm;  // ensembles: [arm][flattened sample]
  std::vector<size_t> offset;                // ensembles: prompt's first sample in per_arm
};
// Scores the samples of prompt b with arm arm_of[b] (each arm runs once over its prompts), or
// with every arm combined by ensemble_mean when `ensemble`.
ScoredBatch score_batch(std::vector<std::unique_ptr<RewardArm>>& arms, bool ensemble, const std::vector<size_t>& arm_of,
                        const std::vector<size_t>& batch, const std::vector<LaserPrompt>& prompts,
                        const std::vector<std::vector<serve::Completion>>& outs);

}  // namespace rmkit::select
