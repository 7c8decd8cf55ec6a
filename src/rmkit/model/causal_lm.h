// The interface every model family implements (llama.cpp-style: one file per family, built from
// the shared blocks in blocks.h). Parameter names ARE the Hugging Face tensor names
// ("model.layers.0.self_attn.q_proj.weight", "transformer.h.0.attn.c_attn.weight", ...), so a
// safetensors state dict maps onto named_parameters() one to one; tensor_names.h holds the only
// name-translation table (llama2.c legacy order -> HF names).
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rmkit/model/config.h"

namespace rmkit::model {

using TensorMap = std::map<std::string, torch::Tensor>;

struct LoraAdapter;  // lora_layer.h

// A linear projection of a model family that LoRA may adapt (lora.h). The family lists them in
// projections(); its forward reads *slot and adds the adapter's output when one is attached.
struct ProjectionRef {
  std::string name;                      // module name: "model.layers.0.self_attn.q_proj"
  std::string suffix;                    // PEFT target_modules entry: "q_proj", "attn.c_attn"
  std::vector<std::string> short_names;  // --lora targets it answers to: {"q"}; GPT-2 c_attn {"q","k","v"}
  torch::nn::Module* module = nullptr;   // where lora_A / lora_B are registered (PEFT's names)
  torch::Tensor weight;                  // [out, in]; [in, out] when fan_in_fan_out (GPT-2 Conv1D)
  bool fan_in_fan_out = false;
  std::shared_ptr<LoraAdapter>* slot = nullptr;  // null adapter = the plain projection
};

// Per-layer key/value cache for incremental decoding. k[i], v[i]: [B, n_kv_heads, T_cached, head_dim].
struct KVCache {
  std::vector<torch::Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  void clear() { k.clear(); v.clear(); }
};

// One sequence of a packed (padding-free) batch. A packed forward takes input_ids [1, N]: the
// sequences of a batch laid end to end in one row. Tokens [start, start + length) attend causally
// to each other and, when prefix_length > 0, to every token of [prefix_start, prefix_start +
// prefix_length), a shared prompt placed earlier in the row (each prompt runs once; its replies
// continue from it). Linear layers see only real tokens; attention runs per segment.
struct PackedSegment {
  int64_t start = 0, length = 0;
  int64_t prefix_start = 0, prefix_length = 0;
};

struct PackedLayout {
  std::vector<PackedSegment> segments;  // in row order, covering [0, N) exactly, length >= 1 each
  torch::Tensor positions;              // [N] int64: position ids (restart per sequence; a reply
                                        // continues from its prefix's length)
  // Causal chunking: a segment longer than this runs its queries in chunks of this many tokens,
  // each against only the keys it may see (prefix + own tokens up to the chunk's end), so the
  // masked upper triangle is mostly never computed (L^2 (k+1)/(2k) score entries for k chunks
  // instead of L^2). 0 = one attention per segment. Same result either way.
  int64_t attention_chunk = 256;
};

// Per-sequence KV storage for continuous batching (serve/engine.h). k[l], v[l]: [Hkv, capacity, D]
// per layer, of which the first `length` tokens are valid; appends write in place (no copy of the
// history). A sequence may also read a shared, read-only `prefix` (the prompt of n samples): its
// keys come first, positions continue after it. One level only: a prefix has no prefix.
struct SeqKV {
  std::vector<torch::Tensor> k, v;
  int64_t length = 0;
  std::shared_ptr<const SeqKV> prefix;

  int64_t prefix_length() const { return prefix ? prefix->length : 0; }
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(1); }
  // Grows (doubling) so that `tokens` fit; keeps the valid part.
  void reserve(int64_t tokens, const ModelConfig& cfg, torch::ScalarType dtype = torch::kFloat32);
  int64_t bytes() const;  // allocated bytes (capacity, not length)
  // Bytes one token takes in every layer's k and v.
  static int64_t bytes_per_token(const ModelConfig& cfg, torch::ScalarType dtype = torch::kFloat32);
};

// Inputs to one forward pass.
struct ForwardInput {
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor attention_mask;  // [B, T_past + T] (1 = real token, 0 = pad); undefined = all ones
  // Position ids [B, T]; undefined = derived from attention_mask (cumsum - 1, so left padding works),
  // offset by the cache length.
  torch::Tensor position_ids;
  KVCache* cache = nullptr;      // when set: attends to cached k/v and appends this step's k/v
  // When set: input_ids is [1, N] laid out as described by `packed` (attention_mask, position_ids
  // and cache must be unset). Must stay alive for the call only.
  const PackedLayout* packed = nullptr;
  // With `packed`: one SeqKV per segment. Each segment's tokens attend to its SeqKV's prefix, its
  // cached tokens and causally to themselves, and are appended to it (the caller advances
  // `length` after the pass and reserves capacity before). Segments must not use the in-row
  // prefix_start/prefix_length then. Inference only (no autograd through the cache).
  const std::vector<SeqKV*>* seq_kv = nullptr;
};

class CausalLMImpl : public torch::nn::Module {
 public:
  explicit CausalLMImpl(ModelConfig cfg) : cfg_(std::move(cfg)) {}
  ~CausalLMImpl() override = default;

  // Final hidden states after the last norm: [B, T, hidden].
  virtual torch::Tensor forward_hidden(const ForwardInput& in) = 0;
  // LM head on hidden states: [B, T, hidden] -> [B, T, vocab].
  virtual torch::Tensor lm_logits(const torch::Tensor& hidden) = 0;
  torch::Tensor forward(const ForwardInput& in) { return lm_logits(forward_hidden(in)); }

  // Input embedding matrix [vocab, hidden] (shared with the LM head when tied).
  virtual torch::Tensor embedding_weight() = 0;

  const ModelConfig& config() const { return cfg_; }

  // Every projection LoRA may adapt, in module order (lora.h). Empty for families without support.
  virtual std::vector<ProjectionRef> projections() { return {}; }

  // Activation (gradient) checkpointing: when on, a training forward (grad mode on, no KV cache)
  // keeps only each decoder block's input and recomputes the block in backward
  // (activation_checkpoint.h). Loss and gradients are unchanged; inference and the cache path
  // ignore the flag.
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  bool activation_checkpointing() const { return activation_checkpointing_; }

 protected:
  ModelConfig cfg_;
  bool activation_checkpointing_ = false;
};

using CausalLMPtr = std::shared_ptr<CausalLMImpl>;

}  // namespace rmkit::model
