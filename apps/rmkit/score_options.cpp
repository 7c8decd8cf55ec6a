#include "score_options.h"

namespace rmkit::cli {

std::vector<OptionSpec> common_score_specs() {
  return {
      {"model", OptKind::String, "", "reward model directory (rmkit train output or HF *ForSequenceClassification)"},
      {"tokenizer", OptKind::String, "", "tokenizer path (needed for llama2.c .bin models)"},
      {"policy", OptKind::String, "", "DPO policy model: evaluate sum log pi - sum log pi_ref as the reward"},
      {"reference", OptKind::String, "", "DPO reference model (with --policy)"},
      {"format", OptKind::String, "auto", "input format: auto|normalized|trl|hh|rm-bench|rewardbench", false, false,
       "auto|normalized|trl|hh|rm-bench|rewardbench"},
      {"skip-bad", OptKind::Flag, "", "skip (and count) malformed rows instead of stopping"},
      {"chat-template", OptKind::String, "auto", "auto | llama3|chatml|llama2|mistral|gemma|plain | a format with {role} and {content}"},
      {"batch-size", OptKind::Int, "16", "sequences per forward pass", false, false, "[1,)"},
      {"max-tokens", OptKind::Int, "16384", "padded tokens per forward pass (0 = no limit)", false, false, "[0,)"},
      {"max-length", OptKind::Int, "0", "truncate each sequence to this many tokens, oldest prompt turns first (0 = the model's context)", false, false, "[0,)"},
      {"strict", OptKind::Flag, "", "refuse (instead of warning about) a --max-length beyond the model's context"},
      {"bf16", OptKind::Flag, "", "bfloat16 CPU autocast"},
      {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)", false, false, "[0,4*cores]"},
  };
}

eval::ScoreJob score_job_from(const Options& o) {
  eval::ScoreJob job;
  if (o.has("model")) job.model = o.str("model");
  if (o.has("tokenizer")) job.tokenizer = o.str("tokenizer");
  if (o.has("policy")) job.policy = o.str("policy");
  if (o.has("reference")) job.reference = o.str("reference");
  job.format = o.str("format");
  job.skip_bad = o.flag("skip-bad");
  job.chat_template = o.str("chat-template");
  job.opts.batch_size = o.integer("batch-size");
  job.opts.max_tokens = o.integer("max-tokens");
  job.opts.max_length = o.integer("max-length");
  job.opts.bf16 = o.flag("bf16");
  job.strict = o.flag("strict");
  return job;
}

std::string describe_read_stats(const eval::ScoredFile& f) {
  std::string s;
  auto add = [&](size_t n, const char* what) {
    if (n) s += ", " + std::to_string(n) + " " + what;
  };
  add(f.stats.skipped_bad, "skipped (bad rows)");
  add(f.stats.dropped_identical, "dropped (chosen == rejected)");
  add(f.stats.dropped_empty, "dropped (empty side)");
  add(f.stats.dropped_mismatched, "dropped (transcripts disagree)");
  add(f.truncated, "truncated");
  return s;
}

}  // namespace rmkit::cli
