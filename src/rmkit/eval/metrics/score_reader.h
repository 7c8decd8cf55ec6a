// Reader for score files as `rmkit score` writes them: one JSON object per line, the normalized
// preference row {id, source, category, subset, prompt, chosen, rejected, meta{...}} plus numeric
// `reward_chosen` / `reward_rejected`. Plain or .gz.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/eval/metrics/scored_pair.h"

namespace rmkit::eval {

// Number of Unicode code points in a UTF-8 string (invalid bytes count one each).
size_t utf8_length(const std::string& s);

// Converts one parsed row. `where` ("FILE:LINE") prefixes error messages; `file` becomes
// ScoredPair::file. Lengths are code points of the final replies: reply_length_chosen /
// reply_length_rejected when the row has them (rmkit score adds them to transcript rows, e.g.
// HH-RLHF, whose chosen/rejected hold the whole conversation), else of chosen/rejected (a message
// list's contents are summed). RM-Bench rows (source "RM-Bench" or meta.chosen_style present) get styles and
// domain = category. Throws rmkit::FormatError.
ScoredPair scored_pair_from_json(const nlohmann::json& row, const std::string& file,
                                 const std::string& where);

// Reads every non-empty line of `path`. Throws IoError (unreadable) or FormatError "FILE:LINE: ...".
std::vector<ScoredPair> read_score_file(const std::string& path);

}  // namespace rmkit::eval
