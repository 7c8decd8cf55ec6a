// rmkit generate --model PATH [--prompt STR | --input F.jsonl] [--n N]: generation through the
// continuous-batching engine (src/rmkit/serve/engine.h). One prompt with n = 1 prints only the
// generated text; --input writes each row back with its completions (JSONL, to --output or stdout).
#include <algorithm>
#include <iostream>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/runtime.h"
#include "rmkit/serve/engine.h"
#include "rmkit/serve/http_error.h"
#include "rmkit/text/chat_template.h"

namespace rmkit::cli {
namespace {

serve::SamplingParams params_from(const Options& o) {
  serve::SamplingParams p;
  p.max_tokens = o.integer("max-new-tokens");
  p.temperature = o.number("temperature");
  p.top_k = o.integer("top-k");
  p.top_p = o.number("top-p");
  p.min_p = o.number("min-p");
  p.repetition_penalty = o.number("repetition-penalty");
  p.seed = static_cast<uint64_t>(o.integer("seed"));
  p.n = o.integer("n");
  for (const auto& s : o.list("stop"))
    if (!s.empty()) p.stop.push_back(s);
  if (p.max_tokens < 0) throw UsageError("--max-new-tokens must be >= 0");
  if (p.temperature < 0) throw UsageError("--temperature must be >= 0");
  if (p.top_k < 0) throw UsageError("--top-k must be >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
  if (p.n < 1 || p.n > 256) throw UsageError("--n must be in [1, 256]");
  try {
    p.validate(1 << 30);
  } catch (const serve::HttpError& e) {
    throw UsageError("--" + e.param + ": " + e.message);
  }
  return p;
}

int run_generate(const Options& o) {
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  auto lm = model::load_pretrained(o.str("model"), o.has("tokenizer") ? o.str("tokenizer") : "");
  if (!lm.tokenizer) throw UsageError("no tokenizer found for " + o.str("model") + " (pass --tokenizer PATH)");
  std::shared_ptr<text::Tokenizer> tok(std::move(lm.tokenizer));
  if (tok->vocab_size() > lm.config.vocab_size)
    throw ConfigError(o.str("model") + ": the tokenizer has " + std::to_string(tok->vocab_size()) +
                      " tokens but the model's embedding has " + std::to_string(lm.config.vocab_size) +
                      " rows; use the tokenizer the model was trained with");
  const bool parse_special = o.flag("parse-special");
  const serve::SamplingParams base = params_from(o);
  if (o.given("prompt") && o.given("input")) throw UsageError("give --prompt or --input, not both");

  // prompts: the single --prompt, or one per --input row ({"prompt": str | messages})
  std::vector<nlohmann::json> rows;
  std::vector<std::vector<int32_t>> prompts;
  const auto tmpl = text::ChatTemplate::resolve(o.str("chat-template"), lm.config.model_type, *tok);
  auto encode_text = [&](const std::string& s) {
    auto ids = tok->encode(s, /*add_special=*/true, parse_special);
    if (ids.empty()) {
      if (tok->bos_id() < 0) throw UsageError("empty prompt and the tokenizer has no BOS token");
      ids.push_back(tok->bos_id());
    }
    return ids;
  };
  if (o.given("input")) {
    const std::string in = o.str("input");
    for_each_line(in, [&](const std::string& line, size_t no) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) return true;
      auto j = nlohmann::json::parse(line, nullptr, false);
      const std::string where = in + ":" + std::to_string(no);
      if (j.is_discarded() || !j.is_object()) throw FormatError(where + ": expected a JSON object");
      if (!j.contains("prompt")) throw FormatError(where + ": field 'prompt': missing");
      const auto& p = j["prompt"];
      if (p.is_string()) {
        prompts.push_back(encode_text(p.get<std::string>()));
      } else if (p.is_array()) {
        text::Conversation conv;
        for (const auto& m : p) {
          if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
              !m["content"].is_string())
            throw FormatError(where + ": field 'prompt': expected a string or [{role, content}...]");
          conv.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
        }
        prompts.push_back(tmpl.encode_prompt(*tok, conv));
      } else {
        throw FormatError(where + ": field 'prompt': expected a string or a message list");
      }
      rows.push_back(std::move(j));
      return true;
    });
    if (prompts.empty()) throw UsageError("--input " + in + ": no rows");
  } else {
    prompts.push_back(encode_text(o.given("prompt") ? o.str("prompt") : ""));
  }

  // The model's trained context bounds prompt + continuation: the engine stops there; an explicit
  // --max-new-tokens beyond it warns (refused under --strict).
  const int64_t context = lm.config.max_position_embeddings;
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());
  if (o.given("max-new-tokens") && context > 0 && base.max_tokens > context - static_cast<int64_t>(longest)) {
    const std::string m = "prompt (" + std::to_string(longest) + " tokens) + --max-new-tokens " +
                          std::to_string(base.max_tokens) + " exceeds the model's context of " + std::to_string(context) +
                          " positions; generation stops at the context";
    if (o.flag("strict")) throw UsageError(m + " (refused under --strict)");
    std::cerr << "warning: " << m << "\n";
  }
  serve::EngineConfig ec;
  ec.kv_cache_mb = o.integer("kv-cache-mb");
  ec.max_queue = 1 << 20;
  ec.max_running = o.integer("max-running");
  if (ec.kv_cache_mb <= 0 || ec.max_running <= 0) throw UsageError("--kv-cache-mb and --max-running must be > 0");
  serve::Engine engine(lm.model, tok, ec);
  std::vector<serve::SamplingParams> params(prompts.size(), base);
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].seed) params[i].seed = *base.seed + i * static_cast<uint64_t>(base.n);  // distinct per row
  std::vector<std::vector<serve::Completion>> outs;
  try {
    outs = engine.generate_many(prompts, params);
  } catch (const serve::HttpError& e) {
    throw UsageError(e.message);
  }
  engine.stop();

  if (!o.given("input") && base.n == 1) {
    const std::string& text = outs[0][0].text;
    std::cout << text;
    if (text.empty() || text.back() != '\n') std::cout << "\n";
    std::cout.flush();
    return 0;
  }
  std::string out;
  for (size_t i = 0; i < outs.size(); ++i) {
    nlohmann::json row = rows.empty() ? nlohmann::json{{"prompt", o.str("prompt")}} : rows[i];
    nlohmann::json texts = nlohmann::json::array(), reasons = nlohmann::json::array();
    for (const auto& c : outs[i]) {
      texts.push_back(c.text);
      reasons.push_back(c.finish_reason);
    }
    row["completions"] = texts;
    row["finish_reasons"] = reasons;
    out += row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (o.given("output")) write_file_atomic(o.str("output"), out);
  else std::cout << out << std::flush;
  return 0;
}

CommandRegistrar reg({
    "generate",
    "generate text from a model directory or llama2.c .bin (continuous batching)",
    {
        {"model", OptKind::String, "", "model directory or llama2.c .bin", true},
        {"tokenizer", OptKind::String, "", "tokenizer (required for a llama2.c .bin)"},
        {"prompt", OptKind::String, "", "prompt text (BOS is added as the tokenizer says)"},
        {"input", OptKind::String, "", "JSONL of {\"prompt\": str | messages} rows, written back with completions"},
        {"output", OptKind::String, "", "where --input results go (default stdout)"},
        {"n", OptKind::Int, "1", "samples per prompt (the prompt is computed once for all)", false, false, "[1,256]"},
        {"max-new-tokens", OptKind::Int, "256", "tokens to generate at most (generation stops at the model's context)", false, false, "[0,)"},
        {"temperature", OptKind::Float, "0", "sampling temperature (0 = greedy)", false, false, "[0,100]"},
        {"top-k", OptKind::Int, "0", "sample from the k most likely tokens (0 = off)", false, false, "[0,)"},
        {"top-p", OptKind::Float, "1", "nucleus sampling mass (1 = off)", false, false, "(0,1]"},
        {"min-p", OptKind::Float, "0", "drop tokens below min-p times the top probability (0 = off)", false, false, "[0,1]"},
        {"repetition-penalty", OptKind::Float, "1", "HF repetition penalty (1 = off)", false, false, "(0,100]"},
        {"stop", OptKind::String, "", "stop string (repeatable; excluded from the output)", false, true},
        {"seed", OptKind::Int, "0", "sampling seed (sample i of row r uses seed + r*n + i)", false, false, "[0,)"},
        {"chat-template", OptKind::String, "auto", "template for message-list prompts in --input"},
        {"parse-special", OptKind::Flag, "", "match special tokens in the prompt"},
        {"strict", OptKind::Flag, "", "refuse (instead of warning about) --max-new-tokens beyond the model's context"},
        {"kv-cache-mb", OptKind::Int, "4096", "KV-cache memory budget", false, false, "[1,)"},
        {"max-running", OptKind::Int, "64", "sequences decoding at once", false, false, "[1,4096]"},
        {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
    },
    {},
    run_generate,
});

}  // namespace
}  // namespace rmkit::cli
