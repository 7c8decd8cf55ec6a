// One optimisation step's gradient for LASeR's policy update: DPO (β) + λ·NLL of the chosen
// response (token mean) against a frozen reference, over the pairs built from the chosen reward
// model's scores. Each prompt's pairs run as one right-padded batch of the prompt's distinct
// sampled responses (prompt + response tokens exactly as sampled, no re-tokenisation); gradients
// accumulate over prompts, each weighted by its share of the step's pairs, so the result equals
// one batch over all pairs.
#pragma once
#include <cstdint>
#include <vector>

#include "rmkit/model/causal_lm.h"
#include "rmkit/select/preference_pairs.h"

namespace rmkit::select {

struct PromptPairs {
  std::vector<int32_t> prompt;
  std::vector<std::vector<int32_t>> responses;  // samples (indexed by pairs)
  std::vector<SamplePair> pairs;
};

struct DpoStepResult {
  double loss = 0, dpo = 0, nll = 0;   // means over all pairs (measured before the update)
  double margin = 0;                   // mean β·h (the DPO implicit reward margin)
  double accuracy = 0;                 // fraction of pairs with h > 0
  int64_t pairs = 0, tokens = 0;
  std::vector<double> prompt_loss;     // per prompt (NaN for prompts without pairs)
};

// Runs forward + backward (grads accumulate in the policy's parameters; no optimiser step).
DpoStepResult accumulate_dpo(model::CausalLMImpl& policy, model::CausalLMImpl& reference,
                             const std::vector<PromptPairs>& batch, double beta, double nll_weight, bool bf16);

}  // namespace rmkit::select
