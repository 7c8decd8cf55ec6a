// Attention of a packed row whose segments each continue their own sequence (continuous batching:
// decode tokens and prefill chunks of different requests in one forward). Internal to blocks.cpp.
#pragma once
#include <torch/torch.h>

#include "rmkit/model/blocks.h"

namespace rmkit::model {

// q [1, H, N, D]; k, v [1, Hkv, N, D] (after RoPE, kv heads NOT repeated). For segment s (tokens
// [start, start + L) of the row) with cache C = ctx.seq_kv[s]: writes k/v into C at
// [C.length, C.length + L) for `layer`, then attends over [C.prefix (read-only), C's tokens,
// the segment's own tokens causally]. GQA runs on the grouped layout (kv heads never copied); a
// shared prefix is read in place (scores of the parts are joined, not the keys).
// Returns [1, N, H * D].
torch::Tensor attend_packed_kv(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const AttentionContext& ctx, int64_t layer);

}  // namespace rmkit::model
