// Preference pairs: one prompt conversation, a chosen and a rejected final assistant reply, plus
// whatever side information the source carries (scores, margin, teacher reply, attributes, RM-Bench
// style indices). Every reader in readers.h produces this one type.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "rmkit/text/message.h"

namespace rmkit::data {

struct PrefPair {
  std::string id;        // from the row; "<file name>:<line>" when the row has none
  std::string source;    // dataset / origin
  std::string category;  // coarse group (e.g. "chat-hard", "Harmlessness", RM-Bench domain)
  std::string subset;    // fine group (e.g. "llmbar-natural", RMB scenario "S1")
  text::Conversation prompt;  // everything before the final assistant turn (may be empty)
  std::string chosen, rejected;  // the final assistant replies
  std::optional<double> score_chosen, score_rejected, margin;
  std::string teacher_response;  // "" when absent
  std::vector<double> attributes;
  int chosen_style = -1, rejected_style = -1;  // RM-Bench style index (0 concise .. 2 markdown)
  nlohmann::json raw;  // the input row (for RM-Bench: the row with this pair's chosen/rejected)
  std::string file;    // where the row came from
  size_t line = 0;     // 1-based line (jsonl) or element number (json array)
  std::string skipped; // ReadOptions::keep_dropped: why this row yields no usable pair ("" = usable)
};

// What read_prefs saw. rows = kept + skipped_bad + dropped_identical + dropped_empty
// + dropped_mismatched when every row yields one pair (RM-Bench rows yield 9: there rows counts
// input rows and the other counters count pairs).
struct ReadStats {
  size_t rows = 0;                // non-blank input rows (jsonl lines / array elements)
  size_t kept = 0;                // pairs returned
  size_t skipped_bad = 0;         // malformed rows skipped with skip_bad = true
  size_t dropped_identical = 0;   // chosen == rejected (byte-exact)
  size_t dropped_empty = 0;       // chosen or rejected empty / whitespace only
  size_t dropped_mismatched = 0;  // HH / TRL rows whose chosen and rejected transcripts disagree
                                  // before the final reply (no shared prompt)
  std::vector<std::string> first_errors;  // up to 10 "FILE:LINE: problem" of skipped rows
  std::string format;             // the format used (after auto-detection)
};

// FNV-1a digest over every pair's id, prompt, chosen and rejected (order-sensitive), for run
// metadata: two runs report the same hash iff they trained on the same pairs in the same order.
std::string data_hash(const std::vector<PrefPair>& pairs);
// FNV-1a digest over every pair's annotations: scores, margin, attributes and teacher reply (what
// margin, distillation, regression and SFT losses train on), order-sensitive. Checked on resume
// beside data_hash: regenerated teacher scores are other training targets.
std::string annotation_hash(const std::vector<PrefPair>& pairs);

// The prompt as one string ("role\x1fcontent\x1e..."), used as a grouping key.
std::string prompt_key(const PrefPair& p);

}  // namespace rmkit::data
