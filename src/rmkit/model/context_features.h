// Policy-context vectors for a contextual bandit over prompts (LASeR: the bandit picks a reward
// model per batch of prompts from a context computed by the policy LM). Given tokenized prompts,
// one vector per prompt [B, hidden] (float64), in one of three modes:
//   last-hidden     the final hidden state (after the final norm, as forward_hidden returns) at
//                   the prompt's last token (the paper's default);
//   mean-hidden     the mean of the final hidden states over the prompt's tokens;
//   mean-embedding  the mean of the input token embeddings over the prompt's tokens (the released
//                   LASeR code's choice, here with the padding masked out).
// Runs without autograd, in eval mode, in right-padded batches of prompts sorted by length; padding
// never reaches a real token (causal attention + key mask), so a prompt's vector does not depend
// on the batch it ran in. L2 normalisation, when wanted, is the bandit's business.
#pragma once
#include <string>
#include <vector>

#include "rmkit/model/causal_lm.h"

namespace rmkit::model {

enum class ContextMode { LastHidden, MeanHidden, MeanEmbedding };

// "last-hidden" | "mean-hidden" | "mean-embedding"; UsageError otherwise.
ContextMode parse_context_mode(const std::string& s);
std::string context_mode_name(ContextMode m);

// Per-prompt contexts: [prompts.size(), hidden] float64 on the CPU, row i for prompts[i].
// Each prompt needs >= 1 token (ShapeError naming the prompt otherwise); batch_size >= 1 prompts
// run per forward.
torch::Tensor prompt_contexts(CausalLMImpl& model, const std::vector<std::vector<int64_t>>& prompts, ContextMode mode,
                              int64_t batch_size = 16);

// The context of a batch of prompts: the mean of their prompt_contexts rows, [hidden] float64.
torch::Tensor batch_context(CausalLMImpl& model, const std::vector<std::vector<int64_t>>& prompts, ContextMode mode,
                            int64_t batch_size = 16);

}  // namespace rmkit::model
