// The GPT-2 family: learned positions, pre-LayerNorm, fused qkv Conv1D, GELU (tanh) MLP, LM head
// tied to wte. Module tree (named_parameters() are the HF names):
//   transformer.wte, transformer.wpe, transformer.h.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2,
//   mlp.c_fc, mlp.c_proj}, transformer.ln_f.
#pragma once
#include "rmkit/model/blocks.h"
#include "rmkit/model/lora_layer.h"

namespace rmkit::model {

class GPT2AttentionImpl : public torch::nn::Module {
 public:
  explicit GPT2AttentionImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer);  // [B,T,C]
  Conv1D c_attn{nullptr}, c_proj{nullptr};
  std::shared_ptr<LoraAdapter> c_attn_lora, c_proj_lora;  // lora.h; null = none

 private:
  int64_t n_heads_, head_dim_;
};
TORCH_MODULE(GPT2Attention);

class GPT2MLPImpl : public torch::nn::Module {
 public:
  explicit GPT2MLPImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);
  Conv1D c_fc{nullptr}, c_proj{nullptr};
  std::shared_ptr<LoraAdapter> c_fc_lora, c_proj_lora;  // lora.h; null = none

 private:
  std::string act_;
};
TORCH_MODULE(GPT2MLP);

class GPT2BlockImpl : public torch::nn::Module {
 public:
  explicit GPT2BlockImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  GPT2Attention attn{nullptr};
  GPT2MLP mlp{nullptr};
};
TORCH_MODULE(GPT2Block);

// The "transformer." backbone.
class GPT2BackboneImpl : public torch::nn::Module {
 public:
  explicit GPT2BackboneImpl(const ModelConfig& cfg);
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
};
TORCH_MODULE(GPT2Backbone);

class GPT2LMHeadModel : public CausalLMImpl {
 public:
  explicit GPT2LMHeadModel(const ModelConfig& cfg);
  torch::Tensor forward_hidden(const ForwardInput& in) override;
  torch::Tensor lm_logits(const torch::Tensor& hidden) override;  // tied to wte
  torch::Tensor embedding_weight() override { return transformer->wte->weight; }
  // attn.c_attn (targets q, k, v: the fused qkv), attn.c_proj (o), mlp.c_fc (up), mlp.c_proj (down)
  std::vector<ProjectionRef> projections() override;

  GPT2Backbone transformer{nullptr};
};

}  // namespace rmkit::model
