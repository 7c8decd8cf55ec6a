#include "rmkit/model/gpt2.h"

#include "rmkit/core/error.h"
#include "rmkit/model/activation_checkpoint.h"
#include "rmkit/model/decode_gemm.h"

namespace rmkit::model {

namespace {
torch::nn::LayerNorm layer_norm(const ModelConfig& cfg) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden_size}).eps(cfg.layer_norm_eps));
}
}  // namespace

GPT2AttentionImpl::GPT2AttentionImpl(const ModelConfig& cfg) : n_heads_(cfg.num_attention_heads), head_dim_(cfg.head_dim) {
  c_attn = register_module("c_attn", Conv1D(cfg.hidden_size, 3 * cfg.hidden_size));
  c_proj = register_module("c_proj", Conv1D(cfg.hidden_size, cfg.hidden_size));
}

torch::Tensor GPT2AttentionImpl::forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  const bool tr = is_training();
  auto qkv = with_lora(c_attn(x), c_attn_lora, x, tr).split(n_heads_ * head_dim_, -1);  // 3 x [B, T, C]
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, n_heads_, head_dim_}).transpose(1, 2); };
  auto y = attend(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), ctx, layer);  // [B, T, C]
  return with_lora(c_proj(y), c_proj_lora, y, tr);  // [B, T, C]
}

GPT2MLPImpl::GPT2MLPImpl(const ModelConfig& cfg) : act_(cfg.hidden_act) {
  c_fc = register_module("c_fc", Conv1D(cfg.hidden_size, cfg.intermediate_size));
  c_proj = register_module("c_proj", Conv1D(cfg.intermediate_size, cfg.hidden_size));
}

torch::Tensor GPT2MLPImpl::forward(const torch::Tensor& x) {
  if (!c_fc_lora && !c_proj_lora) return c_proj(activation(c_fc(x), act_));
  const bool tr = is_training();
  auto h = activation(with_lora(c_fc(x), c_fc_lora, x, tr), act_);  // [B, T, I]
  return with_lora(c_proj(h), c_proj_lora, h, tr);                  // [B, T, C]
}

GPT2BlockImpl::GPT2BlockImpl(const ModelConfig& cfg) {
  ln_1 = register_module("ln_1", layer_norm(cfg));
  attn = register_module("attn", GPT2Attention(cfg));
  ln_2 = register_module("ln_2", layer_norm(cfg));
  mlp = register_module("mlp", GPT2MLP(cfg));
}

torch::Tensor GPT2BlockImpl::forward(const torch::Tensor& x, const AttentionContext& ctx, int64_t layer) {
  auto h = x + attn(ln_1(x), ctx, layer);  // [B, T, C]
  return h + mlp(ln_2(h));
}

GPT2BackboneImpl::GPT2BackboneImpl(const ModelConfig& cfg) {
  wte = register_module("wte", torch::nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  wpe = register_module("wpe", torch::nn::Embedding(cfg.max_position_embeddings, cfg.hidden_size));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) h->push_back(GPT2Block(cfg));
  ln_f = register_module("ln_f", layer_norm(cfg));
}

GPT2LMHeadModel::GPT2LMHeadModel(const ModelConfig& cfg) : CausalLMImpl(cfg) {
  cfg_.validate("model config");
  transformer = register_module("transformer", GPT2Backbone(cfg));
}

torch::Tensor GPT2LMHeadModel::forward_hidden(const ForwardInput& in) {
  auto tok = transformer->wte(in.input_ids);  // [B, T, C]
  auto ctx = make_attention_context(in, tok.scalar_type());
  const int64_t max_pos = cfg_.max_position_embeddings;
  if (ctx.positions.max().item<int64_t>() >= max_pos)
    throw ShapeError("gpt2 forward: position " + std::to_string(ctx.positions.max().item<int64_t>()) +
                     " exceeds n_positions " + std::to_string(max_pos));
  auto x = tok + transformer->wpe(ctx.positions);  // [B, T, C]
  const bool ckpt = activation_checkpointing_ && torch::GradMode::is_enabled() && !in.cache;
  // the recompute in backward runs after this function returns: the blocks share a copy of ctx
  auto shared_ctx = ckpt ? std::make_shared<const AttentionContext>(ctx) : nullptr;
  for (size_t i = 0; i < transformer->h->size(); ++i) {
    auto block = transformer->h->ptr<GPT2BlockImpl>(i);
    const auto li = static_cast<int64_t>(i);
    if (ckpt)
      x = checkpoint_block([block, shared_ctx, li](const torch::Tensor& h) { return block->forward(h, *shared_ctx, li); },
                           x, block->parameters());  // [B, T, C]
    else
      x = block->forward(x, ctx, li);  // [B, T, C]
  }
  return transformer->ln_f(x);
}

std::vector<ProjectionRef> GPT2LMHeadModel::projections() {
  std::vector<ProjectionRef> out;
  auto add = [&](const std::string& block, const std::string& suffix, std::vector<std::string> short_names,
                 Conv1D& l, std::shared_ptr<LoraAdapter>& slot) {
    out.push_back({block + suffix, suffix, std::move(short_names), l.get(), l->weight, true, &slot});
  };
  for (size_t i = 0; i < transformer->h->size(); ++i) {
    auto block = transformer->h->ptr<GPT2BlockImpl>(i);
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    add(p, "attn.c_attn", {"q", "k", "v"}, block->attn->c_attn, block->attn->c_attn_lora);
    add(p, "attn.c_proj", {"o"}, block->attn->c_proj, block->attn->c_proj_lora);
    add(p, "mlp.c_fc", {"up"}, block->mlp->c_fc, block->mlp->c_fc_lora);
    add(p, "mlp.c_proj", {"down"}, block->mlp->c_proj, block->mlp->c_proj_lora);
  }
  return out;
}

torch::Tensor GPT2LMHeadModel::lm_logits(const torch::Tensor& hidden) {
  return dense(hidden, transformer->wte->weight);  // tied: [B, T, V]
}

}  // namespace rmkit::model
