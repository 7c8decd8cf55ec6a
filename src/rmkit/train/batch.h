// Tokenised preference examples and their collation into padded tensors.
//
// Layout of a PairBatch (B pairs): chosen and rejected share ONE tensor so the reward model runs a
// single forward: rows 0..B-1 are prompt+chosen, rows B..2B-1 prompt+rejected, each RIGHT-padded
// to the longest row T (mask 0 on pads). response_mask marks the reply tokens (what DPO/SFT/KL
// count); the reward is read at the last mask-1 token.
// With shared_prefix the pair tensors are a PrefixBatch instead (prefix_forward.h: each prompt
// runs once, both replies attend to its cached keys/values) when that layout is cheaper for the
// batch (shared_layout_is_cheaper); ids/mask/response_mask then stay undefined.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "rmkit/train/prefix_forward.h"

namespace rmkit::train {

struct EncodedExample {
  std::vector<int32_t> prompt;            // rendered prompt (incl. BOS when the template/tokenizer adds it)
  std::vector<int32_t> chosen, rejected;  // reply tokens only
  std::vector<int32_t> teacher;           // teacher reply tokens (empty: none)
  std::vector<int32_t> teacher_prompt;    // prompt as encoded with the teacher reply (may be cut differently)
  double s_w = std::numeric_limits<double>::quiet_NaN();
  double s_l = std::numeric_limits<double>::quiet_NaN();
  double margin = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> attributes;
  bool truncated = false;

  size_t chosen_length() const { return prompt.size() + chosen.size(); }
  size_t rejected_length() const { return prompt.size() + rejected.size(); }
  // Length used for length-grouped batching: the longer side.
  size_t length() const { return std::max(chosen_length(), rejected_length()); }
};

struct PairBatch {
  int64_t B = 0;
  bool shared = false;          // prefix layout (`prefix`) instead of ids/mask/response_mask
  PrefixBatch prefix;
  torch::Tensor ids;            // [2B, T] int64
  torch::Tensor mask;           // [2B, T] int64, 1 = token
  torch::Tensor response_mask;  // [2B, T] int64, 1 = reply token
  torch::Tensor s_w, s_l, margin;               // [B] float32, NaN = absent
  torch::Tensor attributes, attributes_mask;    // [B, K] float32 / [B, K] float32 (K = the head's width; undefined when K = 0)
  // Teacher reply sequences (prompt + teacher reply), only when requested.
  torch::Tensor teacher_ids, teacher_mask, teacher_response_mask;  // [B, Tt]
  int64_t teacher_count = 0;    // rows that have a teacher reply
  int64_t real_tokens = 0;      // non-pad tokens of the pairs (prompt counted for both replies)
  int64_t computed_tokens = 0;  // non-pad tokens the forward runs (shared: each prompt once)
  int64_t slots = 0;            // tensor positions computed (unshared: 2B * T)
  double padding_fraction() const { return slots ? 1.0 - static_cast<double>(computed_tokens) / slots : 0.0; }
};

// Collates examples[idx[i]] (pad_id fills padding; its value never matters as the mask hides it).
// num_attributes = K, the attribute head's width: attributes/attributes_mask are [B, K] in every
// batch, mask 0 where a row has no value (fewer attributes, none, or NaN); 0 = no attribute tensors.
PairBatch collate_pairs(const std::vector<EncodedExample>& examples, const std::vector<size_t>& idx,
                        int64_t pad_id, bool with_teacher = false, bool shared_prefix = false,
                        int64_t hidden_size = 0, int64_t num_attributes = 0);

// Right-padded [N, T] ids/mask/response mask from (prompt, reply) pieces.
void pad_sequences(const std::vector<const std::vector<int32_t>*>& prompts,
                   const std::vector<const std::vector<int32_t>*>& replies, int64_t pad_id,
                   torch::Tensor* ids, torch::Tensor* mask, torch::Tensor* response_mask);

}  // namespace rmkit::train
