#include "rmkit/distill/pipeline.h"

#include <iostream>

#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/distill/parse.h"
#include "rmkit/distill/stages.h"

namespace rmkit::distill {

using json = nlohmann::json;

namespace {

json sampling_json(const SamplingSpec& s) {
  return {{"temperature", s.temperature}, {"top_p", s.top_p}, {"top_k", s.top_k}, {"max_tokens", s.max_tokens}};
}

void write_stage(const std::string& workdir, const std::string& name, const std::vector<DistillItem>& items) {
  std::string out;
  for (const auto& it : items) out += it.to_json().dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  write_file_atomic(join_path(join_path(workdir, "stages"), name + ".jsonl"), out);
}

int64_t alive_count(const std::vector<DistillItem>& items) {
  int64_t n = 0;
  for (const auto& it : items) n += it.alive();
  return n;
}

json prompt_json(const text::Conversation& c) {
  json p = json::array();
  for (const auto& m : c) p.push_back({{"role", m.role}, {"content", m.content}});
  return p;
}

// The calls a stage made: the runner's totals now minus those at the stage's start (a stage may
// call run() several times, e.g. judge + tie re-grade, or none, e.g. filter).
CallTotals calls_since(const CallTotals& now, const CallTotals& before) {
  CallTotals d;
  d.sent = now.sent - before.sent;
  d.hits = now.hits - before.hits;
  d.retries = now.retries - before.retries;
  d.tokens_in = now.tokens_in - before.tokens_in;
  d.tokens_out = now.tokens_out - before.tokens_out;
  auto diff = [](const std::map<std::string, int64_t>& a, const std::map<std::string, int64_t>& b) {
    std::map<std::string, int64_t> m;
    for (const auto& [k, v] : a) {
      auto it = b.find(k);
      const int64_t x = v - (it == b.end() ? 0 : it->second);
      if (x) m[k] = x;
    }
    return m;
  };
  d.failures = diff(now.failures, before.failures);
  d.retried = diff(now.retried, before.retried);
  return d;
}

}  // namespace

json stage_settings(const DistillConfig& cfg, const PromptSet& prompts, const std::string& input_digest) {
  json s;
  s["input"] = {{"digest", input_digest}, {"limit", cfg.limit}};
  s["candidates"] = {{"policies", cfg.policy_models},
                     {"samples_per_policy", cfg.samples_per_policy},
                     {"sampling", sampling_json(cfg.candidate_sampling)},
                     {"seed", cfg.seed}};
  s["judge"] = {{"teacher", cfg.teacher_model},
                {"sampling", sampling_json(cfg.judge_sampling)},
                {"orders", cfg.orders},
                {"regrade_ties", cfg.regrade_ties},
                {"agree_with_labels", cfg.agree_with_labels},
                {"prompt", sha256_hex(prompts.judge.text() + '\x1e' + prompts.tie_note.text()).substr(0, 16)}};
  s["teacher_response"] = {{"sampling", sampling_json(cfg.teacher_sampling)}};
  s["refine"] = {{"sampling", sampling_json(cfg.refine_sampling)},
                 {"max_edit_ratio", cfg.max_edit_ratio},
                 {"prompt", sha256_hex(prompts.refine.text()).substr(0, 16)}};
  s["rescore"] = {{"sampling", sampling_json(cfg.rescore_sampling)},
                  {"calibration_fallback", cfg.calibration_fallback ? json(*cfg.calibration_fallback) : json(nullptr)},
                  {"prompt", sha256_hex(prompts.rescore.text()).substr(0, 16)}};
  s["build"] = {{"mode", cfg.mode}, {"min_margin", cfg.min_margin}, {"keep_original_pairs", cfg.keep_original_pairs}};
  return s;
}

std::vector<std::string> changed_settings(const json& recorded, const json& current) {
  std::vector<std::string> out;
  for (auto st = current.begin(); st != current.end(); ++st) {
    const json old = recorded.contains(st.key()) ? recorded[st.key()] : json::object();
    for (auto k = st.value().begin(); k != st.value().end(); ++k) {
      const json was = old.contains(k.key()) ? old[k.key()] : json(nullptr);
      if (was != k.value()) out.push_back(st.key() + "." + k.key() + ": " + was.dump() + " -> " + k.value().dump());
    }
  }
  return out;
}

std::string build_rows(const std::vector<DistillItem>& items, const DistillConfig& cfg, const PromptSet& prompts,
                       int64_t* rows) {
  const json settings = {{"mode", cfg.mode},
                         {"orders", cfg.orders},
                         {"min_margin", cfg.min_margin},
                         {"max_edit_ratio", cfg.max_edit_ratio},
                         {"regrade_ties", cfg.regrade_ties},
                         {"seed", cfg.seed},
                         {"prompts", prompts.digest()}};
  std::string out;
  *rows = 0;
  auto emit = [&](const DistillItem& it, const std::string& suffix, const std::string& chosen,
                  const std::string& rejected, const char* label_source, bool scores, double sc, double sr) {
    json meta = {{"teacher", cfg.teacher_model}, {"source_id", it.id}, {"settings", settings}};
    if (scores) {
      meta["score_chosen"] = sc;
      meta["score_rejected"] = sr;
    }
    json row = {{"id", it.id + suffix},
                {"source", it.source.empty() ? "rmkit-distill" : it.source},
                {"category", it.category},
                {"subset", it.subset},
                {"prompt", prompt_json(it.prompt)},
                {"chosen", chosen},
                {"rejected", rejected},
                {"label_source", label_source},
                {"meta", meta}};
    if (!cfg.policy_models.empty()) row["meta"]["policies"] = cfg.policy_models;
    if (std::string(label_source) == "teacher-refined") {
      row["teacher_response"] = it.teacher_response;
      row["meta"]["edit_ratio"] = it.edit_ratio;
      if (it.calibration_fallback_used) row["meta"]["calibration_fallback"] = true;
    }
    out += row.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    ++*rows;
  };
  for (const auto& it : items) {
    const bool judged = !it.chosen.empty() && (it.alive() || cfg.mode == "refined");
    if (cfg.mode == "binary") {
      if (it.alive()) emit(it, "#judged", it.chosen, it.rejected, "teacher-binary", false, 0, 0);
    } else if (cfg.mode == "scored") {
      if (it.alive()) emit(it, "#judged", it.chosen, it.rejected, "teacher-scored", true, it.score_chosen, it.score_rejected);
    } else {
      // refined: the judged original pair (when asked) whatever became of its refinement, unless
      // the judge itself dropped it
      if (cfg.keep_original_pairs && judged && it.dropped != "disagrees_with_label")
        emit(it, "#judged", it.chosen, it.rejected, "teacher-scored", true, it.score_chosen, it.score_rejected);
      if (it.alive()) emit(it, "#refined", it.refined, it.rejected, "teacher-refined", true, it.score_refined, it.score_rejected);
    }
  }
  return out;
}

DistillSummary run_distill(const DistillConfig& cfg, const DistillClients& clients, CallRunner& runner,
                           const PromptSet& prompts) {
  if (!clients.teacher) throw UsageError("no teacher: give --teacher-url and --teacher-model, or --teacher DIR");
  if (cfg.mode != "refined" && cfg.mode != "scored" && cfg.mode != "binary")
    throw UsageError("--mode: expected refined, scored or binary, got '" + cfg.mode + "'");
  make_dirs(join_path(cfg.workdir, "stages"));

  // manifest: the settings each stage depends on
  const std::string input_digest = fnv1a_hex(read_file(cfg.input));
  const json settings = stage_settings(cfg, prompts, input_digest);
  const std::string manifest_path = join_path(cfg.workdir, "manifest.json");
  if (path_exists(manifest_path)) {
    auto recorded = json::parse(read_file(manifest_path), nullptr, false);
    if (recorded.is_discarded() || !recorded.is_object() || !recorded.contains("settings"))
      throw FormatError(manifest_path + ": not a distill manifest (expected {\"settings\": ...}); use another --workdir");
    auto changed = changed_settings(recorded["settings"], settings);
    if (!changed.empty() && !cfg.restage) {
      std::string list;
      for (const auto& c : changed) list += (list.empty() ? "" : "; ") + c;
      throw UsageError("--workdir " + cfg.workdir + " holds a run with other settings (" + list +
                       "); pass --restage to recompute the affected stages (cached calls are reused, changed ones are "
                       "sent) or use another --workdir");
    }
  }
  write_file_atomic(manifest_path, json{{"settings", settings}, {"version", 1}}.dump(2) + "\n");
  MetricsLog metrics(join_path(cfg.workdir, "metrics.jsonl"));

  DistillSummary sum;
  std::vector<DistillItem> items = read_distill_input(cfg.input, cfg.limit);
  sum.items = static_cast<int64_t>(items.size());
  std::cerr << "distill: " << items.size() << " input rows from " << cfg.input << ", mode " << cfg.mode << ", teacher "
            << clients.teacher->describe() << "\n";

  CallTotals before = runner.totals();  // at the current stage's start
  auto record = [&](const std::string& stage, int64_t in) {
    const int64_t out = alive_count(items);
    const CallTotals calls = calls_since(runner.totals(), before);
    before = runner.totals();
    json j = {{"stage", stage}, {"alive_in", in}, {"alive_out", out}, {"calls", calls.to_json()}};
    sum.stages.push_back(j);
    metrics.write(j);
    write_stage(cfg.workdir, std::to_string(sum.stages.size()) + "_" + stage, items);
    std::cerr << "distill: " << stage << ": " << in << " -> " << out << " items (" << calls.sent << " calls sent, "
              << calls.hits << " cached)\n";
  };
  std::vector<size_t> owner;

  // 1. candidates
  int64_t in = alive_count(items);
  if (clients.policies.empty()) {
    candidates_from_pairs(items, cfg);
  } else {
    if (cfg.policy_models.size() != clients.policies.size()) throw UsageError("one model name per --policy is needed");
    auto reqs = candidate_requests(items, cfg, clients.policies.size(), &owner);
    std::vector<std::vector<CallOutcome>> outs;
    for (size_t k = 0; k < clients.policies.size(); ++k)
      outs.push_back(runner.run("candidates[" + cfg.policy_models[k] + "]", *clients.policies[k], reqs[k]));
    apply_candidates(items, cfg, outs, owner, clients.policies.size());
  }
  record("candidates", in);

  // 2. judge (+ tie re-grade)
  in = alive_count(items);
  auto outs = runner.run("judge", *clients.teacher, judge_requests(items, cfg, prompts, false, &owner));
  apply_judge(items, cfg, outs, owner, false);
  if (cfg.regrade_ties) {
    auto reqs = judge_requests(items, cfg, prompts, true, &owner);
    outs = runner.run("judge-regrade", *clients.teacher, reqs);
    apply_judge(items, cfg, outs, owner, true);
  }
  record("judge", in);

  if (cfg.mode == "refined") {
    in = alive_count(items);
    outs = runner.run("teacher-response", *clients.teacher, teacher_requests(items, cfg, &owner));
    apply_teacher(items, outs, owner);
    record("teacher_response", in);

    in = alive_count(items);
    outs = runner.run("refine", *clients.teacher, refine_requests(items, cfg, prompts, &owner));
    apply_refine(items, cfg, outs, owner);
    record("refine", in);

    in = alive_count(items);
    outs = runner.run("rescore", *clients.teacher, rescore_requests(items, cfg, prompts, &owner));
    apply_rescore(items, cfg, outs, owner);
    record("rescore", in);

    in = alive_count(items);
    apply_filter(items, cfg);
    record("filter", in);
  }

  const std::string rows = build_rows(items, cfg, prompts, &sum.rows_written);
  write_file_atomic(cfg.output, rows);
  for (const auto& it : items)
    if (!it.alive()) ++sum.dropped[it.dropped];
  json s = {{"items", sum.items},
            {"rows_written", sum.rows_written},
            {"dropped", sum.dropped},
            {"calls", runner.totals().to_json()},
            {"output", cfg.output}};
  write_file_atomic(join_path(cfg.workdir, "summary.json"), s.dump(2) + "\n");
  return sum;
}

}  // namespace rmkit::distill
