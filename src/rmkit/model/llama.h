// The llama family: Llama 2/3, Mistral, Qwen2 (q/k/v bias), Qwen3 (per-head q/k RMSNorm).
// Module tree (so named_parameters() are the HF names):
//   model.embed_tokens, model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
//   self_attn.{q,k}_norm, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head.
// lm_head is absent when tie_word_embeddings (the embedding is the LM head) and when num_labels > 0
// (a sequence-classification backbone, as HF's *ForSequenceClassification has no lm_head).
#pragma once
#include "rmkit/model/blocks.h"
#include "rmkit/model/lora_layer.h"

namespace rmkit::model {

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const ModelConfig& cfg);
  // x [B, T, C] -> [B, T, C]
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only
  std::shared_ptr<LoraAdapter> q_lora, k_lora, v_lora, o_lora;  // lora.h; null = none

 private:
  int64_t n_heads_, n_kv_heads_, head_dim_;
  bool interleaved_;
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // down(act(gate(x)) * up(x))
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::shared_ptr<LoraAdapter> gate_lora, up_lora, down_lora;  // lora.h; null = none

 private:
  std::string act_;
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer);
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// The "model." backbone.
class LlamaBackboneImpl : public torch::nn::Module {
 public:
  explicit LlamaBackboneImpl(const ModelConfig& cfg);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaBackbone);

class LlamaForCausalLM : public CausalLMImpl {
 public:
  explicit LlamaForCausalLM(const ModelConfig& cfg);
  torch::Tensor forward_hidden(const ForwardInput& in) override;
  torch::Tensor lm_logits(const torch::Tensor& hidden) override;
  torch::Tensor embedding_weight() override { return model->embed_tokens->weight; }
  std::vector<ProjectionRef> projections() override;  // q, k, v, o, gate, up, down per layer

  LlamaBackbone model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tied or num_labels > 0

 private:
  torch::Tensor inv_freq_;  // [head_dim/2] float64
};

}  // namespace rmkit::model
