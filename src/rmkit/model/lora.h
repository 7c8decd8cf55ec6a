// LoRA (Hu et al. 2021, as Hugging Face PEFT implements it) on the projections of a CausalLM:
// attach_lora adds to each targeted projection W an adapter so that
//   y = W x + (alpha / r) * B A dropout(x),   A [r, in] ~ Kaiming-uniform (PEFT), B [out, r] = 0,
// and freezes every other parameter, so an optimiser built from the trainable parameters
// (train/optim.h split_param_groups, or lora_parameters) updates the adapters only.
// merge_lora folds B A * scale into W and removes the adapters. save_lora / load_lora use PEFT's
// on-disk layout (adapter_config.json + adapter_model.safetensors with names like
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), so adapters move between
// rmkit and Python PEFT. Adapter rows follow the base weights as loaded: a llama2.c .bin keeps q/k
// in interleaved RoPE order (checkpoint.h), an HF directory (e.g. `rmkit convert` output) in HF's.
//
// Every forward path goes through the family's projection modules (padded, packed, KV cache,
// the serve engine's per-sequence caches), so adapters apply everywhere; with none attached the
// forward is the plain one (one null check per projection).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "rmkit/model/causal_lm.h"

namespace rmkit::model {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 8.0;    // scale = alpha / r
  double dropout = 0.0;  // in [0, 1)
  // Short names q, k, v, o, gate, up, down (GPT-2: q/k/v = attn.c_attn, o = attn.c_proj,
  // up = mlp.c_fc, down = mlp.c_proj), or module-name suffixes ("q_proj", "mlp.c_fc",
  // "layers.0.self_attn.q_proj") matched as PEFT does (equal, or ending in "." + suffix).
  std::vector<std::string> targets = {"q", "v"};

  // "r=16,alpha=32,dropout=0.1,targets=q,v" (fields in any order, each at most once; omitted ones
  // keep the defaults; a bare name after targets= continues the target list). Throws UsageError
  // naming the bad field, e.g. "--lora: field 'r': expected an integer >= 1, got 'x'".
  static LoraConfig parse(const std::string& spec, const std::string& what = "--lora");
  std::string to_string() const;  // the parse() form
  double scale() const { return alpha / static_cast<double>(r); }
};

// What attach_lora / load_lora did.
struct LoraSummary {
  std::vector<std::string> modules;       // adapted module names, in model order
  std::vector<std::string> target_modules;  // PEFT target_modules (resolved suffixes), sorted
  int64_t adapter_parameters = 0;         // elements in all A and B
};

// Which projections cfg.targets select (the model is not changed); ConfigError when a target
// selects none. suffixes_only: every target is a module-name suffix, even "q" (PEFT's reading of
// target_modules; the short names are rmkit's --lora shorthand).
LoraSummary match_lora_targets(CausalLMImpl& model, const LoraConfig& cfg, bool suffixes_only = false);

// Adds adapters to every projection a target selects (ConfigError when a target selects none, or
// when the model already has adapters) and sets requires_grad = false on every other parameter.
// A is drawn from a CPU generator seeded with `seed` (same seed, same adapters); B is zero, so the
// model's outputs are unchanged until B is trained. Adapters take W's dtype and device.
LoraSummary attach_lora(CausalLMImpl& model, const LoraConfig& cfg, uint64_t seed = 0, bool suffixes_only = false);

bool has_lora(CausalLMImpl& model);

// The adapter parameters (A and B of every adapter) with their module names
// ("model.layers.0.self_attn.q_proj.lora_A.weight"), for the optimiser.
std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(CausalLMImpl& model);

// W += scale * B A for every adapter (Conv1D: its transpose), then removes the adapters. Returns
// the merged module names. Parameters keep their requires_grad flags (the base stays frozen).
std::vector<std::string> merge_lora(CausalLMImpl& model);

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (PEFT layout) atomically
// (temp dir + rename). ConfigError when the model has no adapters.
void save_lora(const std::string& dir, CausalLMImpl& model, const LoraConfig& cfg,
               const std::string& base_model_name_or_path);

// Reads a PEFT LoRA directory, attaches its adapters to `model` (as attach_lora) and loads their
// weights; every missing, unexpected or mis-shaped tensor is reported in one ShapeError. Options
// rmkit does not implement (use_dora, use_rslora, bias != "none", rank/alpha patterns, a regex
// target_modules) are a ConfigError. `cfg_out`, when set, receives the adapter's config.
LoraSummary load_lora(const std::string& dir, CausalLMImpl& model, LoraConfig* cfg_out = nullptr);

// PEFT's tensor name of a model parameter name: "base_model.model." + name.
std::string peft_tensor_name(const std::string& param_name);

}  // namespace rmkit::model
