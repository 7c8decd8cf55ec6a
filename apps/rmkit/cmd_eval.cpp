// rmkit eval: accuracy (with Wilson intervals), RewardBench and RM-Bench scoring, length bias and
// calibration, written to OUT/eval.json and a self-contained OUT/report.html.
#include <iostream>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/eval/metrics/metrics.h"
#include "rmkit/eval/metrics/report.h"
#include "rmkit/eval/metrics/score_reader.h"
#include "rmkit/model/runtime.h"
#include "dist_options.h"
#include "score_options.h"

namespace rmkit::cli {
namespace {

// Strips .gz / .jsonl / .json from a file's base name: "llmbar.jsonl.gz" -> "llmbar".
std::string stem(const std::string& path) {
  std::string n = file_name(path);
  for (const char* ext : {".gz", ".jsonl", ".json"})
    if (n.size() > std::string(ext).size() && n.compare(n.size() - std::string(ext).size(), std::string::npos, ext) == 0)
      n.resize(n.size() - std::string(ext).size());
  return n;
}

int run_eval(const Options& o) {
  const std::string out_dir = o.str("output");
  make_dirs(out_dir);
  std::vector<eval::ScoredPair> pairs;
  bool primary = true;
  if (o.has("scores")) {
    if (o.has("data")) throw UsageError("give either --scores (rewards already computed) or --data with a model");
    for (const auto& p : o.list("scores")) {
      auto v = eval::read_score_file(p);
      pairs.insert(pairs.end(), v.begin(), v.end());
    }
  } else {
    if (!o.has("data")) throw UsageError("missing --data FILE... (or --scores FILE...)");
    primary = init_dist_from_options(o);  // WORLD_SIZE > 1: rows are sharded, rank 0 writes
    eval::ScoreJob job = score_job_from(o);
    if (!primary) job.opts.progress = false;
    eval::RowScorer scorer(job);
    std::cerr << "evaluating " << scorer.describe() << ", max length " << scorer.max_length() << " tokens\n";
    data::ReadStats totals;
    for (const auto& path : o.list("data")) {
      eval::ScoredFile f = scorer.score_file(path);
      data::add_read_stats(&totals, f.stats);
      if (f.singles) throw UsageError(path + ": eval needs preference pairs (chosen/rejected), not single responses");
      const std::string name = stem(path);
      std::string rows;
      for (size_t i = 0; i < f.rows.size(); ++i) {
        pairs.push_back(eval::scored_pair_from_json(f.rows[i], name, path + ":" + std::to_string(f.lines[i])));
        rows += f.rows[i].dump() + "\n";
      }
      // the scores, so the same numbers can be re-evaluated with --scores
      if (primary) write_file_atomic(join_path(out_dir, "scores_" + name + ".jsonl"), rows);
      std::cerr << path << ": " << f.rows.size() << " pairs" << describe_read_stats(f) << "\n";
    }
    if (pairs.empty()) {
      const auto d = o.list("data");
      throw ConfigError(data::no_usable_pairs_message(totals, d.size() == 1 ? d[0] : std::to_string(d.size()) + " --data files"));
    }
  }
  if (!primary) return 0;
  if (pairs.empty()) throw ConfigError("no usable pairs in the --scores files (every row was skipped or there are none)");
  nlohmann::json ev = eval::compute_eval(pairs);
  write_file_atomic(join_path(out_dir, "eval.json"), ev.dump(2) + "\n");
  eval::ReportOptions ro;
  ro.subtitle = o.has("model") ? o.str("model") : (o.has("policy") ? o.str("policy") : "scores");
  if (o.has("metrics")) ro.metrics_jsonl = o.str("metrics");
  eval::write_report(join_path(out_dir, "report.html"), ev, pairs, ro);
  const auto& acc = ev["accuracy"]["overall"];
  std::cout << "pairs " << ev["n_pairs"] << "  accuracy " << acc["acc"].get<double>() << "  (95% CI "
            << acc["ci_low"].get<double>() << "-" << acc["ci_high"].get<double>() << ")\n";
  for (auto it = ev["accuracy"]["by_file"].begin(); it != ev["accuracy"]["by_file"].end(); ++it)
    std::cout << "  " << it.key() << ": " << it.value()["acc"].get<double>() << " (n=" << it.value()["n"] << ")\n";
  std::cout << "wrote " << join_path(out_dir, "eval.json") << " and " << join_path(out_dir, "report.html") << "\n";
  return 0;
}

std::vector<OptionSpec> eval_specs() {
  auto specs = common_score_specs();
  specs.insert(specs.begin(), {
      {"data", OptKind::String, "", "preference files to score with --model (or --policy/--reference)", false, true},
      {"scores", OptKind::String, "", "score files written by `rmkit score` (rewards already computed)", false, true},
      {"output", OptKind::String, "", "output directory for eval.json, report.html and scores_*.jsonl", true},
      {"metrics", OptKind::String, "", "training metrics.jsonl to plot in the report"},
  });
  return with_dist_options(specs);
}

CommandRegistrar reg({"eval", "evaluate a reward model: accuracy, RewardBench, RM-Bench, length bias, calibration",
                      eval_specs(), {}, run_eval, true});

}  // namespace
}  // namespace rmkit::cli
