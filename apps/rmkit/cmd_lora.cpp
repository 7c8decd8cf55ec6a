// rmkit lora merge --base DIR --adapter DIR --output DIR: folds a PEFT LoRA adapter
// (adapter_config.json + adapter_model.safetensors, model/lora.h) into its base model's weights
// and writes a full Hugging Face directory (atomically, as save_pretrained), so the merged model
// runs anywhere the base does, without adapters.
#include <iostream>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/lora.h"
#include "rmkit/model/runtime.h"

namespace rmkit::cli {
namespace {

std::vector<Command>& lora_verbs() {
  static std::vector<Command> v;
  return v;
}

int run_merge(const Options& o) {
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  const std::string base = o.str("base"), adapter = o.str("adapter"), output = o.str("output");
  auto lm = model::load_pretrained(base, o.has("tokenizer") ? o.str("tokenizer") : "");
  model::LoraConfig cfg;
  const auto summary = model::load_lora(adapter, *lm.model, &cfg);
  const auto merged = model::merge_lora(*lm.model);
  model::save_pretrained(output, lm.config, *lm.model, lm.tokenizer.get(), lm.extra_tensors, o.str("dtype"));
  std::string targets;
  for (const auto& t : summary.target_modules) targets += (targets.empty() ? "" : ",") + t;
  std::cerr << "rmkit lora merge: merged " << merged.size() << " adapters (r=" << cfg.r << ", alpha=" << cfg.alpha
            << ", scale " << cfg.scale() << ", target_modules " << targets << ", " << summary.adapter_parameters
            << " adapter parameters) from " << adapter << " into " << base << "; wrote " << output << "\n";
  return 0;
}

struct LoraVerb {
  explicit LoraVerb(Command c) { lora_verbs().push_back(std::move(c)); }
};

LoraVerb merge_reg({
    "merge",
    "fold a PEFT LoRA adapter into its base model and write a full HF checkpoint",
    {
        {"base", OptKind::String, "", "base model (HF directory or llama2.c .bin) the adapter was trained on", true},
        {"adapter", OptKind::String, "", "adapter directory (adapter_config.json + adapter_model.safetensors)", true},
        {"output", OptKind::String, "", "output directory (replaced atomically)", true},
        {"tokenizer", OptKind::String, "", "tokenizer to save with it (default: the base directory's)"},
        {"dtype", OptKind::String, "float32", "saved dtype", false, false, "float32|float16|bfloat16"},
        {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
    },
    {},
    run_merge,
});

CommandRegistrar reg({"lora", "LoRA adapters (PEFT layout): merge", {}, {}, [](const Options&) { return 2; }, false,
                      &lora_verbs()});

}  // namespace
}  // namespace rmkit::cli
