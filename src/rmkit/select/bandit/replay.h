// Replaying a recorded stream through a bandit (`rmkit bandit replay`): line t of the contexts file
// is round t's context (a JSON array of numbers), line t of the rewards file the raw reward of every
// arm at round t (a JSON array of K numbers), of which only the chosen arm's reaches the bandit —
// normalised by a RewardNormalizer unless raw rewards are asked for. Rounds are numbered by line,
// from 1. A saved state (replay_state) records the rounds done, so a replay resumed from it on the
// same files continues at the next line.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/normalizer.h"

namespace rmkit::select {

struct ContextTransform {
  size_t project_dim = 0;     // > 0: RandomProjection(project_seed, d, project_dim) first
  uint64_t project_seed = 0;
  bool l2_normalize = false;  // then x / ||x||
  nlohmann::json to_json() const;
  static ContextTransform from_json(const nlohmann::json& j);
};

struct ReplayConfig {
  std::string contexts_path;  // "" only for context-free bandits
  std::string rewards_path;
  bool raw_rewards = false;   // true: the bandit sees the raw reward, no normaliser
  uint64_t start_round = 0;   // rounds already done: lines 1..start_round are skipped
  uint64_t max_rounds = 0;    // stop after this many rounds (0 = at the end of the stream)
  ContextTransform transform;
};

struct ReplayRound {
  uint64_t round = 0;  // = the line number
  size_t arm = 0;
  std::vector<double> scores;
  double reward = 0;             // the chosen arm's raw reward
  double normalized_reward = 0;  // what the bandit learnt from (= reward with raw rewards)
  // {"round", "arm", "scores", "reward", "normalized_reward"} in this order; non-finite scores print
  // as null
  nlohmann::ordered_json to_json() const;
};

// Each line of `path` as a JSON array of numbers: FormatError "path:line: ..." on anything else, or
// when the length differs from `expected` (0 = take line 1's length; `what` names the values).
std::vector<std::vector<double>> read_number_rows(const std::string& path, size_t expected, const std::string& what);
// The length of the first line's array (FormatError as above).
size_t first_row_size(const std::string& path, const std::string& what);

// Replays rounds start_round+1 ... of the stream; calls emit after each round. `norm` is unused with
// raw rewards. Returns the number of the last round done (start_round when none). Errors name
// file:line.
uint64_t run_replay(Bandit& bandit, RewardNormalizer& norm, const ReplayConfig& cfg,
                    const std::function<void(const ReplayRound&)>& emit);

// {"format": "rmkit-bandit-replay", "round", "raw_rewards", "transform", "bandit", "normalizer"}
nlohmann::json replay_state(const Bandit& bandit, const RewardNormalizer& norm, const ReplayConfig& cfg,
                            uint64_t round);

}  // namespace rmkit::select
