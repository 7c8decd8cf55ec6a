// rmkit distill: RM-Distiller's teacher pipeline (src/rmkit/distill/pipeline.h) against any
// OpenAI-compatible teacher (vLLM, a hosted API, `rmkit serve`) or an in-process model.
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/distill/http_chat_client.h"
#include "rmkit/distill/local_chat_client.h"
#include "rmkit/distill/local_model_id.h"
#include "rmkit/distill/pipeline.h"
#include "rmkit/train/run_dir.h"
#include "rmkit/model/runtime.h"

namespace rmkit::cli {
namespace {

using namespace rmkit::distill;

bool is_url(const std::string& s) { return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0; }

SamplingSpec spec(double t, double p, int64_t k, int64_t max) { return SamplingSpec{t, p, k, max}; }

int run_distill_cmd(const Options& o) {
  if (o.given("write-prompts")) {
    PromptSet::write_defaults(o.str("write-prompts"));
    std::cerr << "distill: wrote the default prompts to " << o.str("write-prompts") << "\n";
    return 0;
  }
  for (const char* k : {"input", "workdir", "output"})
    if (!o.given(k)) throw UsageError(std::string("--") + k + " is required");
  const bool url_teacher = o.given("teacher-url"), dir_teacher = o.given("teacher");
  if (url_teacher == dir_teacher) throw UsageError("give the teacher as --teacher-url URL --teacher-model NAME or as --teacher DIR");
  if (url_teacher && !o.given("teacher-model")) throw UsageError("--teacher-url needs --teacher-model NAME");
  // Prompt files are checked before anything is loaded or sent.
  const PromptSet prompts = PromptSet::load(o.has("prompts") ? o.str("prompts") : "");

  DistillConfig cfg;
  cfg.input = o.str("input");
  cfg.workdir = o.str("workdir");
  cfg.output = o.str("output");
  cfg.mode = o.str("mode");
  cfg.limit = o.integer("limit");
  cfg.seed = static_cast<uint64_t>(o.integer("seed"));
  cfg.samples_per_policy = static_cast<int>(o.integer("samples-per-policy"));
  cfg.candidate_sampling = spec(o.number("temperature"), o.number("top-p"), o.integer("top-k"), o.integer("max-new-tokens"));
  cfg.teacher_sampling = cfg.candidate_sampling;
  cfg.judge_sampling = spec(0, 1, 0, o.integer("judge-max-tokens"));
  cfg.orders = static_cast<int>(o.integer("orders"));
  cfg.regrade_ties = o.flag("regrade-ties");
  cfg.agree_with_labels = o.flag("agree-with-labels");
  cfg.refine_sampling = spec(o.number("refine-temperature"), o.number("top-p"), o.integer("top-k"), o.integer("refine-max-tokens"));
  if (cfg.refine_sampling.temperature == 0) cfg.refine_sampling = spec(0, 1, 0, cfg.refine_sampling.max_tokens);
  cfg.max_edit_ratio = o.number("max-edit-ratio");
  cfg.rescore_sampling = spec(0, 1, 0, o.integer("rescore-max-tokens"));
  if (o.given("calibration-fallback")) cfg.calibration_fallback = o.number("calibration-fallback");
  cfg.min_margin = o.number("min-margin");
  cfg.keep_original_pairs = o.flag("keep-original-pairs");
  cfg.restage = o.flag("restage");
  if (!path_exists(cfg.input)) throw UsageError("--input " + cfg.input + ": no such file");

  // clients: URLs get an HTTP client, directories an in-process engine (one per directory)
  const char* key_env = std::getenv(o.str("api-key-env").c_str());
  HttpClientConfig hc;
  hc.api_key = key_env ? key_env : "";
  hc.timeout_s = o.number("timeout");
  hc.ca_cert_file = o.has("ca-cert") ? o.str("ca-cert") : "";
  std::vector<std::unique_ptr<ChatClient>> owned;
  std::map<std::string, ChatClient*> local;
  bool any_local = false;
  auto local_client = [&](const std::string& dir) {
    if (!local.count(dir)) {
      if (!any_local) model::configure_runtime(static_cast<int>(o.integer("threads")));
      any_local = true;
      owned.push_back(std::make_unique<LocalChatClient>(dir, o.has("tokenizer") ? o.str("tokenizer") : "",
                                                        o.str("chat-template"), o.integer("kv-cache-mb"), hc.timeout_s));
      local[dir] = owned.back().get();
    }
    return local[dir];
  };
  // a local model's name in cache keys and the manifest carries a digest of its files, tokenizer
  // and chat template: another checkpoint under the same name never reuses its replies
  auto local_id = [&](const std::string& path, const std::string& name) {
    return local_model_id(path, name, o.has("tokenizer") ? o.str("tokenizer") : "", o.str("chat-template"));
  };
  DistillClients clients;
  if (url_teacher) {
    hc.base_url = o.str("teacher-url");
    owned.push_back(std::make_unique<HttpChatClient>(hc));
    clients.teacher = owned.back().get();
    cfg.teacher_model = o.str("teacher-model");
  } else {
    clients.teacher = local_client(o.str("teacher"));
    cfg.teacher_model = local_id(o.str("teacher"), o.given("teacher-model") ? o.str("teacher-model") : "");
  }
  const auto policies = o.list("policy");
  const auto names = o.list("policy-model");
  if (names.size() > policies.size()) throw UsageError("more --policy-model names than --policy entries");
  for (size_t k = 0; k < policies.size(); ++k) {
    const std::string& p = policies[k];
    if (is_url(p)) {
      HttpClientConfig pc = hc;
      pc.base_url = p;
      auto c = std::make_unique<HttpChatClient>(pc);
      // naming the model avoids a /models request (a resumed run then sends nothing)
      cfg.policy_models.push_back(k < names.size() && !names[k].empty() ? names[k] : c->first_model_id());
      clients.policies.push_back(c.get());
      owned.push_back(std::move(c));
    } else {
      if (!is_directory(p) && !path_exists(p)) throw UsageError("--policy " + p + ": neither a URL nor a model directory");
      clients.policies.push_back(local_client(p));
      cfg.policy_models.push_back(local_id(p, k < names.size() ? names[k] : ""));
    }
  }

  RunnerConfig rc;
  rc.concurrency = static_cast<int>(o.integer("concurrency"));
  rc.max_retries = static_cast<int>(o.integer("max-retries"));
  rc.backoff_base_s = o.number("backoff-base");
  rc.backoff_max_s = o.number("backoff-max");
  rc.max_calls = o.integer("max-calls");
  rc.max_tokens = o.integer("max-tokens");
  rc.price_in = o.number("price-in");
  rc.price_out = o.number("price-out");
  rc.jitter_seed = cfg.seed;
  rc.progress = !o.flag("quiet");
  // one run per work directory (two would send the same calls twice and race on the stage files),
  // and the temps of writes a killed run left behind go
  const train::RunLock lock(cfg.workdir);
  for (const std::string& dir : {cfg.workdir, join_path(cfg.workdir, "stages")})
    for (const auto& stale : remove_stale_temps_in(dir)) std::cerr << "distill: removed a stale temp file " << stale << "\n";
  for (const auto& stale : remove_stale_temps(cfg.output)) std::cerr << "distill: removed a stale temp file " << stale << "\n";
  CallCache cache(join_path(cfg.workdir, "calls.sqlite"));
  CallRunner runner(cache, rc);
  DistillSummary sum = run_distill(cfg, clients, runner, prompts);
  std::string dropped;
  for (const auto& [k, v] : sum.dropped) dropped += (dropped.empty() ? "" : ", ") + k + " " + std::to_string(v);
  const auto& t = runner.totals();
  std::cerr << "distill: wrote " << sum.rows_written << " rows to " << cfg.output << " from " << sum.items
            << " input rows; dropped: " << (dropped.empty() ? "none" : dropped) << "; calls sent " << t.sent
            << ", cached " << t.hits << ", tokens " << t.tokens_in << " in / " << t.tokens_out << " out";
  if (rc.price_in > 0 || rc.price_out > 0) std::cerr << ", cost $" << runner.cost(t);
  std::cerr << "\n";
  return 0;
}

CommandRegistrar reg({
    "distill",
    "turn a teacher LLM into reward-model training data (RM-Distiller: judge, refine, re-score)",
    {
        {"input", OptKind::String, "", "prompt rows {\"prompt\": str | messages} or pairs in any format train reads"},
        {"output", OptKind::String, "", "training rows (normalized JSONL; written atomically)"},
        {"workdir", OptKind::String, "", "call cache (SQLite), manifest and stage files; re-run to resume"},
        {"mode", OptKind::String, "refined", "refined (contrastive edits) | scored (judged pairs with scores) | binary (labels only)", false, false, "refined|scored|binary"},
        {"teacher-url", OptKind::String, "", "OpenAI-compatible base URL of the teacher, e.g. http://127.0.0.1:8000/v1"},
        {"teacher-model", OptKind::String, "", "the teacher's model name (required with --teacher-url)"},
        {"teacher", OptKind::String, "", "an in-process teacher: a causal LM directory or llama2.c .bin"},
        {"policy", OptKind::String, "", "a policy URL or model directory (repeatable); none: the input's pairs are the candidates", false, true},
        {"policy-model", OptKind::String, "", "model name of the i-th URL --policy (repeatable; default: asked from /models)", false, true},
        {"tokenizer", OptKind::String, "", "tokenizer for in-process models that need one (llama2.c .bin)"},
        {"chat-template", OptKind::String, "auto", "chat template of in-process models"},
        {"api-key-env", OptKind::String, "OPENAI_API_KEY", "environment variable holding the API key for URLs (never printed)"},
        {"ca-cert", OptKind::String, "", "CA bundle that verifies https URLs, instead of the system CAs (as curl --cacert)"},
        {"prompts", OptKind::String, "", "directory of replacement prompt files (judge.txt, tie_note.txt, refine.txt, rescore.txt)"},
        {"write-prompts", OptKind::String, "", "write the default prompt files into this directory and exit"},
        {"limit", OptKind::Int, "0", "use only the first N input rows (0 = all)", false, false, "[0,)"},
        {"seed", OptKind::Int, "0", "seed of candidate picks, presentation order and sampled calls", false, false, "[0,)"},
        {"samples-per-policy", OptKind::Int, "0", "samples from each policy (0 = 1 with >= 2 policies, else 2)", false, false, "[0,64]"},
        {"temperature", OptKind::Float, "0.7", "candidates and teacher response: temperature", false, false, "[0,100]"},
        {"top-p", OptKind::Float, "0.8", "candidates and teacher response: top_p", false, false, "(0,1]"},
        {"top-k", OptKind::Int, "20", "candidates and teacher response: top_k (0 = not sent)", false, false, "[0,)"},
        {"max-new-tokens", OptKind::Int, "1024", "candidates and teacher response: max_tokens", false, false, "[1,)"},
        {"judge-max-tokens", OptKind::Int, "64", "judge: max_tokens (greedy)", false, false, "[1,)"},
        {"orders", OptKind::Int, "2", "judge presentation orders: 2 = both, averaged; 1 = the reference code's one order", false, false, "[1,2]"},
        {"regrade-ties", OptKind::Flag, "", "re-ask tied judgments with the tie note (tie_note.txt)"},
        {"agree-with-labels", OptKind::Flag, "", "keep only input pairs whose label the teacher agrees with"},
        {"refine-temperature", OptKind::Float, "0", "refine: temperature (0 = greedy)", false, false, "[0,100]"},
        {"refine-max-tokens", OptKind::Int, "2048", "refine: max_tokens (reasoning + modified response)", false, false, "[1,)"},
        {"max-edit-ratio", OptKind::Float, "0.5", "drop refinements whose normalized edit distance to the rejected reply is above this", false, false, "[0,1]"},
        {"rescore-max-tokens", OptKind::Int, "16", "re-score: max_tokens (greedy)", false, false, "[1,)"},
        {"calibration-fallback", OptKind::Float, "", "score for an unparsable re-score (the reference code's 8.0; default: drop the pair)", false, false, "[1,10]"},
        {"min-margin", OptKind::Float, "1.0", "keep refined pairs whose score margin exceeds this", false, false, "[0,9]"},
        {"keep-original-pairs", OptKind::Flag, "", "refined mode: also write the judged original pairs with their scores"},
        {"restage", OptKind::Flag, "", "accept changed settings in an existing --workdir (affected stages are recomputed)"},
        {"concurrency", OptKind::Int, "16", "requests in flight", false, false, "[1,1024]"},
        {"max-retries", OptKind::Int, "6", "retries of a call on connection errors, timeouts, 429 and 5xx", false, false, "[0,100]"},
        {"timeout", OptKind::Float, "120", "seconds one call may take (connect and read)", false, false, "(0,86400]"},
        {"backoff-base", OptKind::Float, "0.5", "first retry backoff in seconds (doubling, full jitter)", false, false, "[0,3600]"},
        {"backoff-max", OptKind::Float, "30", "largest backoff, and the longest Retry-After honoured, in seconds", false, false, "[0,3600]"},
        {"max-calls", OptKind::Int, "0", "stop after this many new calls (0 = no limit; resumable)", false, false, "[0,)"},
        {"max-tokens", OptKind::Int, "0", "stop after this many new prompt + completion tokens (0 = no limit; resumable)", false, false, "[0,)"},
        {"price-in", OptKind::Float, "0", "price per million prompt tokens (shows cost and projection)", false, false, "[0,)"},
        {"price-out", OptKind::Float, "0", "price per million completion tokens", false, false, "[0,)"},
        {"kv-cache-mb", OptKind::Int, "2048", "in-process models: KV-cache budget", false, false, "[1,)"},
        {"threads", OptKind::Int, "0", "in-process models: intra-op threads (0 = physical cores)"},
        {"quiet", OptKind::Flag, "", "no progress lines"},
    },
    {},
    run_distill_cmd,
    /*print_config=*/true,
});

}  // namespace
}  // namespace rmkit::cli
