// rmkit score: rewards for every row of preference (or single-response) files.
#include <filesystem>
#include <iostream>
#include <memory>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/eval/score_job.h"
#include "rmkit/model/runtime.h"
#include "dist_options.h"
#include "score_options.h"

namespace rmkit::cli {
namespace {

int run_score(const Options& o) {
  const bool primary = init_dist_from_options(o);  // WORLD_SIZE > 1: rows are sharded, rank 0 writes
  const std::string output = o.str("output");
  for (const auto& path : o.list("data")) {
    std::error_code ec;
    if (path == output || std::filesystem::equivalent(path, output, ec))
      throw UsageError("--output " + output + " is also an input (--data " + path +
                       "); scores go to a new file, the input is never overwritten");
  }
  eval::ScoreJob job = score_job_from(o);
  job.keep_skipped = true;  // every input row is written, in order
  if (!primary) job.opts.progress = false;
  eval::RowScorer scorer(job);
  std::cerr << "scoring with " << scorer.describe() << ", max length " << scorer.max_length() << " tokens\n";
  for (const auto& stale : remove_stale_temps(output)) std::cerr << "removed a stale temp file " << stale << "\n";
  std::unique_ptr<AtomicFileWriter> out;
  if (primary) out = std::make_unique<AtomicFileWriter>(output);
  size_t n = 0, scored = 0;
  data::ReadStats totals;
  for (const auto& path : o.list("data")) {
    eval::ScoredFile f = scorer.score_file(path);
    if (out)
      for (const auto& row : f.rows) out->write(row.dump() + "\n");
    n += f.rows.size();
    scored += f.stats.kept;
    data::add_read_stats(&totals, f.stats);
    std::cerr << path << ": " << f.stats.kept << (f.singles ? " responses" : " pairs") << " scored"
              << describe_read_stats(f) << (f.rows.size() > f.stats.kept ? " (written with null rewards and a "
                                                                           "\"skipped\" reason)" : "")
              << "\n";
  }
  if (scored == 0) {
    const auto& d = o.list("data");
    throw ConfigError(data::no_usable_pairs_message(totals, d.size() == 1 ? d[0] : std::to_string(d.size()) + " --data files"));
  }
  if (!out) return 0;
  out->commit();
  std::cerr << "wrote " << n << " rows (" << scored << " scored) to " << output << "\n";
  return 0;
}

std::vector<OptionSpec> score_specs() {
  auto specs = common_score_specs();
  specs.insert(specs.begin(), {
      {"data", OptKind::String, "", "preference files (.jsonl/.jsonl.gz/.json; any format read_prefs knows) or "
                                    "single-response files ({prompt, response} rows)", true, true},
      {"output", OptKind::String, "", "output .jsonl: each input row plus reward_chosen/reward_rejected (or reward)", true},
  });
  return with_dist_options(specs);
}

CommandRegistrar reg({"score", "score preference pairs or responses with a reward model", score_specs(), {},
                      run_score, true});

}  // namespace
}  // namespace rmkit::cli
