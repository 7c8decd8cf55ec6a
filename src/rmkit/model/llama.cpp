#include "rmkit/model/llama.h"

#include "rmkit/core/error.h"
#include "rmkit/model/activation_checkpoint.h"
#include "rmkit/model/decode_gemm.h"
#include "rmkit/model/fused_ops.h"

namespace rmkit::model {

namespace {
torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}
// x W^T + b through decode_gemm.h (the oneDNN path for decode steps, torch's linear otherwise)
torch::Tensor proj(const torch::nn::Linear& l, const torch::Tensor& x) { return dense(x, l->weight, l->bias); }
}  // namespace

LlamaAttentionImpl::LlamaAttentionImpl(const ModelConfig& cfg)
    : n_heads_(cfg.num_attention_heads),
      n_kv_heads_(cfg.num_key_value_heads),
      head_dim_(cfg.head_dim),
      interleaved_(cfg.rope_interleaved) {
  q_proj = register_module("q_proj", make_linear(cfg.hidden_size, cfg.q_dim(), cfg.attention_bias));
  k_proj = register_module("k_proj", make_linear(cfg.hidden_size, cfg.kv_dim(), cfg.attention_bias));
  v_proj = register_module("v_proj", make_linear(cfg.hidden_size, cfg.kv_dim(), cfg.attention_bias));
  o_proj = register_module("o_proj", make_linear(cfg.q_dim(), cfg.hidden_size, false));
  if (cfg.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(cfg.head_dim, cfg.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(cfg.head_dim, cfg.rms_norm_eps));
  }
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  const bool tr = is_training();
  auto q = with_lora(proj(q_proj, x), q_lora, x, tr).view({B, T, n_heads_, head_dim_});     // [B, T, H, D]
  auto k = with_lora(proj(k_proj, x), k_lora, x, tr).view({B, T, n_kv_heads_, head_dim_});  // [B, T, Hkv, D]
  auto v = with_lora(proj(v_proj, x), v_lora, x, tr).view({B, T, n_kv_heads_, head_dim_});
  if (q_norm) {  // Qwen3: RMSNorm over head_dim, before RoPE
    q = q_norm(q);
    k = k_norm(k);
  }
  q = rope_bthd(q, ctx.cos, ctx.sin, interleaved_).transpose(1, 2);  // [B, H, T, D]
  k = rope_bthd(k, ctx.cos, ctx.sin, interleaved_).transpose(1, 2);  // [B, Hkv, T, D]
  auto y = attend(q, k, v.transpose(1, 2), ctx, layer);              // [B, T, H*D]
  return with_lora(proj(o_proj, y), o_lora, y, tr);  // [B, T, C]
}

LlamaMLPImpl::LlamaMLPImpl(const ModelConfig& cfg) : act_(cfg.hidden_act) {
  gate_proj = register_module("gate_proj", make_linear(cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias));
  up_proj = register_module("up_proj", make_linear(cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias));
  down_proj = register_module("down_proj", make_linear(cfg.intermediate_size, cfg.hidden_size, cfg.mlp_bias));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x) {
  if (!gate_lora && !up_lora && !down_lora) return proj(down_proj, activation(proj(gate_proj, x), act_) * proj(up_proj, x));
  const bool tr = is_training();
  auto h = activation(with_lora(proj(gate_proj, x), gate_lora, x, tr), act_) * with_lora(proj(up_proj, x), up_lora, x, tr);  // [B, T, I]
  return with_lora(proj(down_proj, h), down_lora, h, tr);  // [B, T, C]
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const ModelConfig& cfg) {
  self_attn = register_module("self_attn", LlamaAttention(cfg));
  mlp = register_module("mlp", LlamaMLP(cfg));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer) {
  auto h = x + self_attn(input_layernorm(x), ctx, layer);  // [B, T, C]
  return h + mlp(post_attention_layernorm(h));
}

LlamaBackboneImpl::LlamaBackboneImpl(const ModelConfig& cfg) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(cfg));
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

LlamaForCausalLM::LlamaForCausalLM(const ModelConfig& cfg) : CausalLMImpl(cfg) {
  cfg_.validate("model config");
  model = register_module("model", LlamaBackbone(cfg));
  if (!cfg.tie_word_embeddings && cfg.num_labels == 0)
    lm_head = register_module("lm_head", make_linear(cfg.hidden_size, cfg.vocab_size, false));
  inv_freq_ = rope_inv_freq(cfg);
}

torch::Tensor LlamaForCausalLM::forward_hidden(const ForwardInput& in) {
  auto x = model->embed_tokens(in.input_ids);  // [B, T, C]
  auto ctx = make_attention_context(in, x.scalar_type());
  std::tie(ctx.cos, ctx.sin) = rope_cos_sin(inv_freq_, ctx.positions, x.scalar_type());  // [B, 1, T, D/2]
  const bool ckpt = activation_checkpointing_ && torch::GradMode::is_enabled() && !in.cache;
  // the recompute in backward runs after this function returns: the blocks share a copy of ctx
  auto shared_ctx = ckpt ? std::make_shared<const AttentionContext>(ctx) : nullptr;
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers->ptr<LlamaDecoderLayerImpl>(i);
    const auto li = static_cast<int64_t>(i);
    if (ckpt)
      x = checkpoint_block([layer, shared_ctx, li](const torch::Tensor& h) { return layer->forward(h, *shared_ctx, li); },
                           x, layer->parameters());  // [B, T, C]
    else
      x = layer->forward(x, ctx, li);  // [B, T, C]
  }
  return model->norm(x);
}

std::vector<ProjectionRef> LlamaForCausalLM::projections() {
  std::vector<ProjectionRef> out;
  auto add = [&](const std::string& layer, const char* path, const char* short_name, torch::nn::Linear& l,
                 std::shared_ptr<LoraAdapter>& slot) {
    const std::string name = std::string(path) + "_proj";
    out.push_back({layer + name, name.substr(name.find('.') + 1), {short_name}, l.get(), l->weight, false, &slot});
  };
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers->ptr<LlamaDecoderLayerImpl>(i);
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto& a = *layer->self_attn;
    auto& m = *layer->mlp;
    add(p, "self_attn.q", "q", a.q_proj, a.q_lora);
    add(p, "self_attn.k", "k", a.k_proj, a.k_lora);
    add(p, "self_attn.v", "v", a.v_proj, a.v_lora);
    add(p, "self_attn.o", "o", a.o_proj, a.o_lora);
    add(p, "mlp.gate", "gate", m.gate_proj, m.gate_lora);
    add(p, "mlp.up", "up", m.up_proj, m.up_lora);
    add(p, "mlp.down", "down", m.down_proj, m.down_lora);
  }
  return out;
}

torch::Tensor LlamaForCausalLM::lm_logits(const torch::Tensor& hidden) {
  if (lm_head) return proj(lm_head, hidden);  // [B, T, V]
  if (!cfg_.tie_word_embeddings)
    throw ConfigError("lm_logits: this model has no LM head (num_labels = " + std::to_string(cfg_.num_labels) + ")");
  return dense(hidden, model->embed_tokens->weight);  // tied: [B, T, V]
}

}  // namespace rmkit::model
