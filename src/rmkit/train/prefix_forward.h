// Shared-prompt ("prefix sharing") forward for preference pairs: the prompt of each pair runs ONCE,
// then its chosen and its rejected reply both attend to the prompt's cached keys/values. Autograd
// flows through the cache (blocks.cpp appends with torch::cat, the expansion below is an
// index_select), so losses and gradients equal the unshared forward_pair on the full sequences
// (tests/train/test_prefix_forward.cpp checks rewards, BT loss and every parameter gradient to 1e-5).
//
// Layout of a PrefixBatch (B pairs, P = longest prompt, R = longest reply):
//   prompt_ids/prompt_mask [B, P]   LEFT-padded (pads first), so every prompt ends in column P-1;
//                                   positions come from the mask (0 at each row's first real token).
//   resp_ids/resp_mask    [2B, R]   RIGHT-padded replies, rows 0..B-1 chosen, B..2B-1 rejected.
// The reply pass runs with attention_mask = [prompt_mask ; resp_mask] over P + R keys; positions
// continue from each row's real prompt length (cumsum of that mask, blocks.cpp).
//
// "Extended reply" view used for the reward and the LM-head terms: row r of the 2B rows is
//   [last prompt token, reply tokens...]                        (1 + R columns)
// hidden: the final hidden states at those tokens; column 0 is the prompt's last real token.
// The reward is read at column resp_len[r] (the reply's last token, or the prompt's last token when
// the reply is empty). For token log-probs, token_logprobs(rm.lm_logits(out.all.hidden), out.lm_ids,
// out.lm_response_mask) gives exactly the reply-token log-probs that the unshared layout gives
// (logits at the last prompt token predict the first reply token).
// Packed layout (the default, `packed`): the pairs are laid end to end in one padding-free row
// [1, N] (model::PackedLayout): per pair the prompt and its chosen reply form one causal segment,
// then the rejected reply is a segment with the prompt as prefix. Every linear layer runs on real
// tokens only and attention runs per segment; the extended-reply view is gathered from the packed
// hidden states (ext_index), so outputs are those of the cached layout. packed = false keeps the
// padded two-pass layout (prompt pass, then replies on the prompt's KV cache).
// A row whose prompt AND reply are both empty has no token at all; it reads a pad position (finite,
// meaningless), like the unshared forward does. data/encode.h never produces one (BOS).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "rmkit/model/causal_lm.h"
#include "rmkit/train/reward_model.h"

namespace rmkit::train {

struct PrefixBatch {
  int64_t B = 0, P = 0, R = 0;
  torch::Tensor prompt_ids, prompt_mask;  // [B, P] int64, left-padded (P may be 0)
  torch::Tensor resp_ids, resp_mask;      // [2B, R] int64, right-padded (R >= 1: an all-empty
                                          // batch gets one masked pad column)
  torch::Tensor prompt_len;               // [B] int64
  torch::Tensor resp_len;                 // [2B] int64
  // Token accounting. real: non-pad tokens the forward computes; slots: tensor positions computed.
  int64_t real_tokens = 0, slots = 0;                    // shared: sum(P_i + C_i + R_i); B*P + 2B*R
  int64_t unshared_real_tokens = 0, unshared_slots = 0;  // sum(2P_i + C_i + R_i); 2B * max(P_i + len)
  int64_t unshared_T = 0;                                // max(P_i + len)
  // Packed layout (see above); slots == real_tokens when packed.
  bool packed = false;
  torch::Tensor packed_ids;    // [1, N] int64, N = real_tokens
  model::PackedLayout layout;  // per pair: [prompt, chosen] segment, then rejected (prefix: prompt)
  torch::Tensor ext_index;     // [2B * (1+R)] int64: packed row of each extended-reply cell (N = zeros)
};

// Collates B pairs (pointers must stay valid during the call; ids are copied).
PrefixBatch collate_prefix_pairs(const std::vector<const std::vector<int32_t>*>& prompts,
                                 const std::vector<const std::vector<int32_t>*>& chosen,
                                 const std::vector<const std::vector<int32_t>*>& rejected, int64_t pad_id,
                                 bool packed = true);
PrefixBatch collate_prefix_pairs(const std::vector<std::vector<int32_t>>& prompts,
                                 const std::vector<std::vector<int32_t>>& chosen,
                                 const std::vector<std::vector<int32_t>>& rejected, int64_t pad_id,
                                 bool packed = true);

// Whether the shared layout computes less than the joint right-padded layout (2B rows of the
// longest prompt+reply) for this batch. Cost = 6·hidden·positions + attention score entries
// (dense work ≈ 24·hidden² FLOPs per position per layer, attention ≈ 4·hidden per entry):
//   shared:   positions B·P + 2B·R,  entries B·P² + 2B·R·(P+R)
//   unshared: positions 2B·T,        entries 2B·T²
// Sharing saves the second copy of each prompt but pads prompts and replies separately, so with
// short prompts and uneven replies it can cost more (RMB pairs: prompts are ~1/3 of a sequence).
// A packed batch is always cheaper: it computes real tokens only, each prompt once.
bool shared_layout_is_cheaper(const PrefixBatch& b, int64_t hidden);

// Backbone-level pass (any CausalLM: reward models, DPO policy/reference).
struct PrefixHidden {
  torch::Tensor hidden;            // [2B, 1+R, H] extended-reply hidden states (see above)
  torch::Tensor lm_ids;            // [2B, 1+R] int64: [last prompt id, reply ids]
  torch::Tensor lm_response_mask;  // [2B, 1+R] int64: 1 on reply tokens that a prompt token or an
                                   // earlier reply token predicts (token_logprobs convention)
  torch::Tensor last_index;        // [2B] int64 = resp_len: column of each row's last real token
};
PrefixHidden prefix_shared_hidden(model::CausalLMImpl& lm, const PrefixBatch& b);

struct PrefixPairOutput : PairOutput {
  // all.hidden / all.last_index are in the extended-reply layout; all.rewards [2B].
  torch::Tensor lm_ids, lm_response_mask;  // [2B, 1+R], for token_logprobs on lm_logits(all.hidden)
};

// Reward-model forward of a prefix batch: rewards of chosen/rejected [B] each, attributes when the
// regression head exists.
PrefixPairOutput prefix_shared_forward(RewardModelImpl& rm, const PrefixBatch& b);

// Convenience: collate + forward.
PrefixPairOutput prefix_shared_forward(RewardModelImpl& rm, const std::vector<std::vector<int32_t>>& prompts,
                                       const std::vector<std::vector<int32_t>>& chosen,
                                       const std::vector<std::vector<int32_t>>& rejected, int64_t pad_id);

}  // namespace rmkit::train
