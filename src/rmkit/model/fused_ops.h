// Fused CPU float32 kernels for the elementwise chains of the llama block: RMSNorm and rotate-half
// RoPE. Each is one pass forward and one pass backward (a torch::autograd::Function), where the ATen
// composition makes 5-8 passes over [tokens, C] and keeps their intermediates alive for backward.
// Other dtypes and devices take the composite ATen expressions (the *_composite functions below),
// which are also what the tests compare against.
#pragma once
#include <torch/torch.h>

namespace rmkit::model {

// x [..., C], weight [C] -> weight * x * rsqrt(mean(x^2, -1) + eps), computed in float32 as HF's
// LlamaRMSNorm. Fused when x and weight are CPU float32.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor rms_norm_composite(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Rotate-half (GPT-NeoX / HF llama) RoPE on the projection layout:
// x [B, T, H, D], cos/sin [B, 1, T, D/2] (rope_cos_sin) -> [B, T, H, D] with
//   out[..., :D/2] = x1 * cos - x2 * sin,  out[..., D/2:] = x2 * cos + x1 * sin.
// interleaved (llama2.c / Meta layout: pairs (2i, 2i+1)) always takes the composite path. Fused when
// x, cos and sin are CPU float32 and cos/sin do not require grad.
torch::Tensor rope_bthd(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, bool interleaved);
torch::Tensor rope_bthd_composite(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                  bool interleaved);

}  // namespace rmkit::model
