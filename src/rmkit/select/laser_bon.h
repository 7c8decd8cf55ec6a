// `rmkit laser bon`: best-of-n with a routed reward model. Per prompt the arm policy picks an RM from
// the prompt's policy context, n responses are sampled (the prompt computed once), and the one the
// chosen RM scores highest is returned. With a bandit state learned in `laser train` the choice is
// greedy (LinUCB alpha = 0); with feedback (a per-prompt reward for the returned response, e.g. from
// a verifier; line i of the file for prompt i) the bandit keeps learning online, prompt by prompt.
// Baselines: each single RM (fixed:NAME), random, and the score ensemble (ensemble-mean, per-prompt
// z-normalised scores averaged over every RM).
#pragma once
#include <string>
#include <vector>

#include "rmkit/select/laser_train.h"

namespace rmkit::select {

struct LaserBonConfig : LaserRunConfig {
  std::string bandit_state;   // a laser train bandit.json ("" = start fresh)
  std::string feedback;       // JSONL {"reward": x} per prompt ("" = none)
  std::string save_state;     // where the bandit state goes after the run ("" = nowhere)
  int64_t n = 16;
};

struct LaserBonResult {
  int64_t prompts = 0, rm_tokens = 0;
  std::vector<uint64_t> arm_counts;
};

LaserBonResult laser_bon(const LaserBonConfig& cfg);

}  // namespace rmkit::select
