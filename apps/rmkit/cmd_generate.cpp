// rmkit generate --model PATH [--prompt STR]: continues a prompt (BOS added as the tokenizer says)
// and prints only the generated text.
#include <algorithm>
#include <iostream>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/generate.h"
#include "rmkit/model/runtime.h"

namespace rmkit::cli {
namespace {

int run_generate(const Options& o) {
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  auto lm = model::load_pretrained(o.str("model"), o.has("tokenizer") ? o.str("tokenizer") : "");
  if (!lm.tokenizer)
    throw UsageError("no tokenizer found for " + o.str("model") + " (pass --tokenizer PATH)");
  const auto& tok = *lm.tokenizer;
  if (tok.vocab_size() > lm.config.vocab_size)
    throw ConfigError(o.str("model") + ": the tokenizer has " + std::to_string(tok.vocab_size()) +
                      " tokens but the model's embedding has " + std::to_string(lm.config.vocab_size) +
                      " rows; use the tokenizer the model was trained with");

  model::GenerationConfig gc;
  gc.max_new_tokens = o.integer("max-new-tokens");
  gc.temperature = o.number("temperature");
  gc.top_k = o.integer("top-k");
  gc.top_p = o.number("top-p");
  gc.seed = static_cast<uint64_t>(o.integer("seed"));
  gc.stop_ids = tok.stop_ids();
  gc.pad_id = tok.pad_id() >= 0 ? tok.pad_id() : 0;

  const std::string prompt = o.given("prompt") ? o.str("prompt") : "";
  std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/o.flag("parse-special"));
  if (ids.empty()) {
    // Tokenizers without BOS: an empty prompt has nothing to condition on.
    if (tok.bos_id() < 0) throw UsageError("empty prompt and the tokenizer has no BOS token");
    ids.push_back(tok.bos_id());
  }
  // The model's trained context bounds prompt + continuation: the default stops there; an explicit
  // --max-new-tokens beyond it warns (refused under --strict).
  const int64_t context = lm.config.max_position_embeddings;
  const int64_t room = context - static_cast<int64_t>(ids.size());
  if (context > 0 && gc.max_new_tokens > room) {
    if (!o.given("max-new-tokens")) {
      gc.max_new_tokens = std::max<int64_t>(0, room);
    } else {
      const std::string m = "prompt (" + std::to_string(ids.size()) + " tokens) + --max-new-tokens " +
                            std::to_string(gc.max_new_tokens) + " exceeds the model's context of " +
                            std::to_string(context) + " positions; tokens past it are outside what it was trained on";
      if (o.flag("strict")) throw UsageError(m + " (refused under --strict)");
      std::cerr << "warning: " << m << "\n";
    }
  }
  auto out = model::generate(*lm.model, {ids}, gc).at(0);

  // Decode prompt + continuation and print the part after the prompt's text, so the first
  // generated piece keeps its leading space (SentencePiece strips it at the start of a text).
  std::vector<int32_t> full = ids;
  full.insert(full.end(), out.begin(), out.end());
  const std::string prefix = tok.decode(ids, /*skip_special=*/true);
  const std::string all = tok.decode(full, /*skip_special=*/true);
  std::string text = all.compare(0, prefix.size(), prefix) == 0 ? all.substr(prefix.size())
                                                                  : tok.decode(out, true);
  std::cout << text;
  if (text.empty() || text.back() != '\n') std::cout << "\n";
  std::cout.flush();
  return 0;
}

CommandRegistrar reg({
    "generate",
    "generate text from a model directory or llama2.c .bin",
    {
        {"model", OptKind::String, "", "model directory or llama2.c .bin", true},
        {"tokenizer", OptKind::String, "", "tokenizer (required for a llama2.c .bin)"},
        {"prompt", OptKind::String, "", "prompt text (BOS is added as the tokenizer says)"},
        {"max-new-tokens", OptKind::Int, "256", "tokens to generate at most (the default stops at the model's context)", false, false, "[0,)"},
        {"temperature", OptKind::Float, "0", "sampling temperature (0 = greedy)", false, false, "[0,)"},
        {"top-k", OptKind::Int, "0", "sample from the k most likely tokens (0 = off)", false, false, "[0,)"},
        {"top-p", OptKind::Float, "1", "nucleus sampling mass (1 = off)", false, false, "(0,1]"},
        {"seed", OptKind::Int, "0", "sampling seed", false, false, "[0,)"},
        {"parse-special", OptKind::Flag, "", "match special tokens in the prompt"},
        {"strict", OptKind::Flag, "", "refuse (instead of warning about) --max-new-tokens beyond the model's context"},
        {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)", false, false, "[0,4*cores]"},
    },
    {},
    run_generate,
});

}  // namespace
}  // namespace rmkit::cli
