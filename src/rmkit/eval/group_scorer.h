// Rewards of "groups": one prompt and K >= 1 responses scored in ONE packed, padding-free forward
// (model::PackedLayout), the prompt computed once for all of its responses. This is the layout
// `rmkit score` uses for pairs (train/prefix_forward.h), generalised to any K, and what the server
// batches requests into (serve/), /v1/compare (one prompt, many responses), best-of-n and LASeR use.
//
// Row layout of a batch of groups g = 0..G-1 (p_g = prompt length, r_gk = response lengths):
//   [prompt_g, resp_g0]            one causal segment (positions 0..p_g + r_g0 - 1)
//   [resp_g1], …, [resp_g(K-1)]    each a segment with prompt_g as prefix (positions from p_g)
// A response's reward is read at its last token, or at the prompt's last token when it is empty.
// So a sequence's reward equals the unpacked forward of prompt + response alone (to float
// rounding, ~1e-6; tests/eval/test_group_scorer.cpp), whatever else shares its batch.
#pragma once
#include <cstdint>
#include <vector>

#include "rmkit/train/reward_model.h"

namespace rmkit::eval {

struct ScoreGroup {
  std::vector<int32_t> prompt;                  // may be empty
  std::vector<std::vector<int32_t>> responses;  // K >= 1; prompt + each response must hold >= 1 token
};

// Tokens the packed forward computes for a group: |prompt| + Σ|response|.
int64_t group_tokens(const ScoreGroup& g);

// Rewards in group order, then response order (Σ K values). Runs under InferenceMode; `bf16`
// enables CPU autocast. Throws ShapeError for a response with no token at all (empty prompt and
// empty response).
std::vector<double> score_groups(train::RewardModelImpl& rm, const std::vector<const ScoreGroup*>& groups,
                                 bool bf16 = false);

}  // namespace rmkit::eval
