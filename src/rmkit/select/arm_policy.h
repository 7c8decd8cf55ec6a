// Which reward model labels a batch (or a prompt) in LASeR's loop and in best-of-n: a bandit from
// select/bandit/ over policy contexts, or one of the baselines the issue compares against:
//   random               a uniformly random arm (the bandit library's seeded `random`)
//   fixed:NAME           always that arm
//   sequential           arm = iteration mod K
//   ensemble-mean        every arm scores; per-arm z-normalised scores are averaged
//   ensemble-agreement   every arm scores; a pair is kept only when a majority of arms order it alike
// The bandit's raw rewards go through the percentile normaliser (normalizer.h) before update().
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/normalizer.h"

namespace rmkit::select {

struct ArmPolicyConfig {
  std::string strategy = "linucb";  // a bandit name or a baseline above
  BanditParams bandit;              // arms and dim are filled by the caller
  NormalizerParams normalizer;
  bool l2_normalize = false;
  size_t project_dim = 0;           // 0 = no projection
  uint64_t project_seed = 0;
};

class ArmPolicy {
 public:
  // `arm_names` index the arms; `dim` is the raw context dimension. ConfigError on a bad strategy.
  ArmPolicy(const ArmPolicyConfig& cfg, const std::vector<std::string>& arm_names, size_t dim);

  bool ensemble() const { return ensemble_; }
  bool agreement() const { return cfg_.strategy == "ensemble-agreement"; }
  bool uses_bandit() const { return bandit_ != nullptr; }
  size_t arms() const { return names_.size(); }
  const std::string& strategy() const { return cfg_.strategy; }

  // The arm for one context (raw policy context; projected / normalised here). `iteration` drives
  // `sequential`. Not for ensembles (every arm scores there).
  size_t choose(const std::vector<double>& raw_context, int64_t iteration);
  // The last choose()'s per-arm scores (bandit strategies; empty otherwise).
  std::vector<double> last_scores() const;
  // Feeds the raw pay-off of `arm` at `raw_context`; returns the normalised reward (NaN without a
  // bandit: nothing is learned).
  double update(size_t arm, const std::vector<double>& raw_context, double raw_reward);
  // Greedy selection (best-of-n with a learned state): alpha = 0 for LinUCB, v = 0 for Thompson,
  // epsilon = 0 for epsilon-greedy, and no collapse guard; exp3 and ucb1 have no greedy form and keep
  // their rule.
  void set_greedy();

  nlohmann::json save() const;
  void load(const nlohmann::json& j);
  const std::vector<uint64_t>& counts() const;

 private:
  std::vector<double> prepare(const std::vector<double>& raw) const;
  ArmPolicyConfig cfg_;
  std::vector<std::string> names_;
  bool ensemble_ = false;
  size_t fixed_ = 0;
  std::unique_ptr<Bandit> bandit_;
  std::unique_ptr<RewardNormalizer> normalizer_;
  std::unique_ptr<RandomProjection> projection_;
  std::vector<uint64_t> counts_;
};

}  // namespace rmkit::select
