// RM-Distiller's teacher pipeline (`rmkit distill`): candidates -> judge (both presentation
// orders) -> teacher response -> minimal-edit refinement -> self-calibrated re-score -> filter
// and build. See docs/distill.md for the method and every option.
//
// Resume: every call goes through the SQLite call cache (call_cache.h), and each stage is a
// deterministic function of the input, the settings and the cached replies, so re-running the
// same command recomputes the stages from the cache and sends only the calls that never got an
// answer. The work directory's manifest records the settings each stage depends on; a changed
// setting is reported (and only recomputed with `restage`), never silently mixed in. Stage
// results (WORKDIR/stages/*.jsonl) and the output are written atomically.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/distill/call_runner.h"
#include "rmkit/distill/chat_types.h"
#include "rmkit/distill/distill_item.h"
#include "rmkit/distill/prompts.h"

namespace rmkit::distill {

struct DistillConfig {
  std::string input, workdir, output;
  std::string mode = "refined";         // refined | scored | binary
  int64_t limit = 0;                    // first N input rows (0 = all)
  uint64_t seed = 0;
  // 1. candidates
  std::vector<std::string> policy_models;  // one per policy client
  int samples_per_policy = 0;              // 0 = 1 with >= 2 policies, else 2
  SamplingSpec candidate_sampling{0.7, 0.8, 20, 1024};
  // 2. judge
  std::string teacher_model;
  SamplingSpec judge_sampling{0.0, 1.0, 0, 64};
  int orders = 2;
  bool regrade_ties = false;
  bool agree_with_labels = false;
  // 3. teacher response (sampled as the candidates)
  SamplingSpec teacher_sampling{0.7, 0.8, 20, 1024};
  // 4. refine
  SamplingSpec refine_sampling{0.0, 1.0, 0, 2048};
  double max_edit_ratio = 0.5;
  // 5. re-score
  SamplingSpec rescore_sampling{0.0, 1.0, 0, 16};
  std::optional<double> calibration_fallback;
  // 6. build
  double min_margin = 1.0;
  bool keep_original_pairs = false;
  bool restage = false;                 // accept changed settings (recompute affected stages)
};

struct DistillClients {
  ChatClient* teacher = nullptr;
  std::vector<ChatClient*> policies;  // empty: the input's own pairs are the candidates
};

struct DistillSummary {
  int64_t items = 0, rows_written = 0;
  std::map<std::string, int64_t> dropped;  // by reason
  nlohmann::json stages = nlohmann::json::array();  // per stage: alive in/out, calls
};

// The settings each stage depends on, as recorded in WORKDIR/manifest.json.
nlohmann::json stage_settings(const DistillConfig& cfg, const PromptSet& prompts, const std::string& input_digest);
// Compares `recorded` with `current` (both stage_settings()); returns "stage.key: old -> new" lines.
std::vector<std::string> changed_settings(const nlohmann::json& recorded, const nlohmann::json& current);

// Runs every stage and writes cfg.output. Throws BudgetReached / CallError (state kept), UsageError
// for changed settings without `restage`.
DistillSummary run_distill(const DistillConfig& cfg, const DistillClients& clients, CallRunner& runner,
                           const PromptSet& prompts);

// The training rows for the built pairs (exposed for tests): one JSON line each, input order.
std::string build_rows(const std::vector<DistillItem>& items, const DistillConfig& cfg, const PromptSet& prompts,
                       int64_t* rows);

}  // namespace rmkit::distill
