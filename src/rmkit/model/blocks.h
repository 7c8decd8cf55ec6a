// Building blocks shared by the model families (llama.cpp / gemma.cpp style): norms, GPT-2's
// Conv1D, rotary embeddings in both layouts, the attention core with masks and KV cache, and
// activations. Family files (llama.cpp, gpt2.cpp) own the projections so that parameter names stay
// the Hugging Face ones.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "rmkit/model/causal_lm.h"
#include "rmkit/model/config.h"

namespace rmkit::model {

// RMSNorm over the last dim, computed in float32 as HF's LlamaRMSNorm: w * (x / rms(x)).
// Parameter: "weight" [dim].
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // [..., dim] -> [..., dim]
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// GPT-2's Conv1D (a linear layer with the weight stored transposed): y = x W + b.
// Parameters: "weight" [in, out], "bias" [out].
class Conv1DImpl : public torch::nn::Module {
 public:
  Conv1DImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);  // [..., in] -> [..., out]
  torch::Tensor weight, bias;
};
TORCH_MODULE(Conv1D);

// Inverse RoPE frequencies [head_dim/2] (float64): theta^(-2i/d), then rope_scaling ("linear":
// divided by factor; "llama3": HF's _compute_llama3_parameters frequency smoothing).
torch::Tensor rope_inv_freq(const ModelConfig& cfg);

// cos/sin tables for positions [B, T] (int64): each [B, 1, T, head_dim/2] in `dtype`.
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                     torch::ScalarType dtype);

// Rotates x [B, H, T, D] by the angles in cos/sin [B, 1, T, D/2].
// interleaved: pairs (x[2i], x[2i+1]) (llama2.c / Meta); else (x[i], x[i + D/2]) (HF).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                         bool interleaved);

// What every layer of one forward pass shares: positions, the attention mask, RoPE tables and the
// cache. Built once per forward by make_attention_context.
struct AttentionContext {
  int64_t batch = 0, steps = 0;  // B, T (new tokens this pass)
  int64_t past = 0;              // cached tokens before this pass
  torch::Tensor positions;       // [B, T] int64
  torch::Tensor mask;            // additive [B, 1, T, past+T] (0 / -inf), or undefined
  bool is_causal = false;        // no explicit mask needed: kernel-side causal masking (T == S)
  torch::Tensor cos, sin;        // [B, 1, T, D/2] (RoPE families only)
  KVCache* cache = nullptr;
  // Packed batches (ForwardInput::packed): B = 1 and one attention call per query chunk
  // (copied from the layout: checkpointed blocks recompute after the input is gone).
  struct Chunk {
    int64_t segment = 0;           // index into `segments`
    int64_t begin = 0, end = 0;    // query tokens [begin, end) of the segment (relative)
    torch::Tensor mask;            // additive [1, 1, end-begin, prefix_length + end], or undefined
    bool is_causal = false;        // the chunk is the whole unprefixed segment: kernel-side causal
  };
  bool packed = false;
  std::vector<PackedSegment> segments;
  std::vector<Chunk> chunks;       // in row order
  std::vector<SeqKV*> seq_kv;      // per segment (ForwardInput::seq_kv); chunks unused then
};

// Validates input shapes and derives positions and the combined causal + key-padding mask.
// Positions, when not given, are cumsum(attention_mask) - 1 (clamped >= 0) over the past + new
// tokens, so a left-padded sequence gets the same positions as the unpadded one. Every query row
// always attends at least to its own key, so rows of padding tokens stay finite.
AttentionContext make_attention_context(const ForwardInput& in, torch::ScalarType dtype);

// Attention core. q [B, H, T, D]; k, v [B, Hkv, T, D] (after RoPE). Appends k/v to ctx.cache at
// `layer`, repeats kv heads for GQA/MQA and returns [B, T, H*D]. A packed context runs one
// attention per segment over its own (and its prefix's) keys.
torch::Tensor attend(const torch::Tensor& q, torch::Tensor k, torch::Tensor v, const AttentionContext& ctx,
                     int64_t layer);

// silu | swish | gelu_new / gelu_pytorch_tanh / gelu_fast (tanh approximation) | gelu (erf) | relu.
torch::Tensor activation(const torch::Tensor& x, const std::string& act);

// Initialisation used by create_model: matrices ~ N(0, std), biases 0, 1-D weights (norms) 1.
void init_parameters(torch::nn::Module& m, double std = 0.02);

}  // namespace rmkit::model
