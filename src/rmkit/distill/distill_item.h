// One prompt's way through the distillation stages (pipeline.h), and reading the input rows.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/text/message.h"

namespace rmkit::distill {

struct DistillItem {
  size_t index = 0;  // input order
  std::string id, source, category, subset;
  text::Conversation prompt;
  // A labelled pair from the input (pair rows): its chosen / rejected replies.
  bool labelled = false;
  std::string label_chosen, label_rejected;

  // 1. candidates: every policy sample; the two picked (A, B) in presentation order 1.
  std::vector<std::string> candidates;
  std::string a, b;
  // 2. judge: per-order scores and the averages; the winner becomes chosen.
  std::vector<double> judge_scores;  // [sA, sB] of order AB, then [sA, sB] of order BA when asked
  bool regraded = false;
  double score_a = 0, score_b = 0;
  std::string chosen, rejected;
  double score_chosen = 0, score_rejected = 0;
  // 3.-5. teacher response, refinement, self-calibrated re-score
  std::string teacher_response;
  std::string refine_request, refine_reply, refined;
  double edit_ratio = 0;
  double score_refined = 0;
  bool calibration_fallback_used = false;

  std::string dropped;  // "" while alive; else the stage's reason (counted in the summary)
  std::string dropped_detail;  // e.g. the server's message for a call error
  bool alive() const { return dropped.empty(); }

  // The item's state as one JSON object (stage files in the work directory).
  nlohmann::json to_json() const;
};

// Reads --input: pair rows in any format data/readers.h accepts (labelled pairs) or prompt rows
// {"prompt": str | [{role, content}...], "id"?, "category"?, "subset"?, "source"?}. `limit` > 0
// keeps the first `limit`. Throws FormatError "FILE:LINE: ..." on a bad row.
std::vector<DistillItem> read_distill_input(const std::string& path, int64_t limit = 0);

}  // namespace rmkit::distill
