// Loads a reward model (or a DPO policy/reference pair) once and scores whole data files, returning
// each input row with its rewards added — the rows `rmkit score` writes and `rmkit eval` evaluates.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/data/readers.h"
#include "rmkit/eval/scorer.h"

namespace rmkit::eval {

struct ScoreJob {
  std::string model;             // reward model dir (or base LM: a fresh head, with a warning)
  std::string tokenizer;         // override / required for llama2.c .bin
  std::string policy, reference; // DPO implicit reward instead of `model`
  std::string chat_template = "auto";
  std::string format = "auto";
  bool skip_bad = false;
  // Rows that cannot be scored (empty side, chosen == rejected, disagreeing transcripts, with
  // skip_bad malformed rows) stay in ScoredFile::rows with null rewards and a `skipped` reason, so
  // the output aligns with the input (`rmkit score`); false leaves them out (`rmkit eval`).
  bool keep_skipped = false;
  // opts.max_length 0 = the model's context (max_position_embeddings). A larger value warns, or
  // with `strict` is a UsageError.
  bool strict = false;
  ScoreOptions opts;
};

struct ScoredFile {
  std::vector<nlohmann::json> rows;  // input row + reward_chosen/reward_rejected (or reward); null
                                     // rewards and "skipped" for rows that cannot be scored
  std::vector<size_t> lines;         // each row's line in the input file (1-based), for messages
  data::ReadStats stats;              // stats.kept = the rows scored
  size_t truncated = 0;
  bool singles = false;              // rows were single responses ({prompt, response})
};

class RowScorer {
 public:
  explicit RowScorer(const ScoreJob& job);
  ~RowScorer();
  // Pair files: every format read_prefs knows. Single-response files: rows with `response`
  // (and `prompt` as a string or a message list) and no `chosen`.
  ScoredFile score_file(const std::string& path);
  std::string describe() const;  // "reward model DIR (template X)"
  int64_t max_length() const;    // the truncation length in use (the model's context by default)

 private:
  void resolve_max_length(int64_t context, const std::string& model);
  ScoredFile score_file_impl(const std::string& path);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when the first non-empty row of a .jsonl(.gz) file is a single-response row.
bool is_single_response_file(const std::string& path);

}  // namespace rmkit::eval
