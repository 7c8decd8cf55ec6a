// Multi-head attention for CPU float32 with the work split by head: each thread runs whole heads,
// and every BLAS call inside runs on one thread (OpenBLAS does inside an OpenMP region), where
// ATen's bmm splits each small per-head product across all threads. Per head, the 1/sqrt(D) scale
// and the additive mask ride on the QK^T gemm (alpha, and beta = 1 over the mask), then softmax,
// then PV; backward mirrors it per head. Probabilities are kept for backward, as the math path
// keeps them.
#pragma once
#include <torch/torch.h>

namespace rmkit::model {

// True when attention_by_head handles these inputs (CPU float32, 3-D q/k/v of matching heads and
// head dim, mask [T, S] or undefined).
bool attention_by_head_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& mask);

// q [H, T, D], k/v [H, S, D]; mask: additive [T, S] (0 = attend, -inf = not) or undefined; causal:
// query i sees keys 0..i (requires T == S). Every query row must see at least one key.
// Returns softmax(q k^T / sqrt(D) + mask) v  [H, T, D].
torch::Tensor attention_by_head(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& mask, bool causal);

}  // namespace rmkit::model
