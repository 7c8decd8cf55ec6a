// Reading preference data files into PrefPair.
//
// Files: `.jsonl` (one JSON object a line; blank lines ignored), `.jsonl.gz`, and `.json` / `.json.gz`
// holding one JSON array of objects. For arrays, "line" means the 1-based element number.
//
// Formats (`format`, or "auto": detected from the keys of the first row that parses as an object):
//   normalized   {id, source, category, subset, prompt:[{role,content}], chosen, rejected,
//                 label_source, meta}; scores in meta.score_chosen/score_rejected, RM-Bench
//                 styles in meta.chosen_style/rejected_style. Detected: prompt is a list, chosen a
//                 string, and the row has `meta`, `label_source` or `category`.
//   trl          prompt (string | message list | absent), chosen and rejected (string | message
//                 list). A message-list reply that repeats the prompt has the shared prefix removed;
//                 its last message (must be the assistant's) is the reply and messages between the
//                 prompt and the reply extend the prompt. chosen and rejected must agree on them.
//   hh           {chosen, rejected} HH-RLHF transcripts "\n\nHuman: ...\n\nAssistant: ...": the text
//                 after the last "\n\nAssistant:" is the reply, earlier turns the prompt (one space
//                 after each "Human:"/"Assistant:" marker is dropped). Detected: no `prompt` key and
//                 chosen contains "\n\nAssistant:".
//   rm-bench     {id, subset, prompt (string), chosen:[3], rejected:[3]} expanded to 9 pairs
//                 (chosen_style i, rejected_style j, id "rmbench-<domain>-<id>-c<i>r<j>"); the
//                 domain (chat, code, safety-refuse, safety-response) comes from the file name or
//                 the subset and goes into `category`. Detected: chosen is a list of strings.
//   rewardbench  {prompt (string), chosen, rejected, subset[, id]}. Detected: string prompt plus
//                 `subset`. (A string prompt without `subset` is trl.)
// Optional fields in every format, top level or under `meta` / `metadata`: score_chosen,
// score_rejected, margin, teacher_response, attributes (number array), chosen_style,
// rejected_style.
//
// A malformed row throws FormatError "FILE:LINE: <problem>" (e.g. "FILE:17: field 'chosen':
// expected a string or a message list"); with skip_bad it is skipped and counted instead. Pairs
// with an empty (whitespace-only) side, then pairs with chosen == rejected, are dropped and
// counted; nothing is dropped silently.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "rmkit/data/pairs.h"

namespace rmkit::data {

struct ReadOptions {
  std::string format = "auto";
  bool skip_bad = false;
  bool keep_raw = true;  // false: leave PrefPair::raw null (saves memory when training)
  // true: rows that yield no usable pair (empty side, chosen == rejected, disagreeing transcripts,
  // and with skip_bad malformed rows) come back too, in input order, with PrefPair::skipped set
  // (`rmkit score` writes every input row). They are counted in ReadStats as before, not in kept.
  bool keep_dropped = false;
};

std::vector<PrefPair> read_prefs(const std::string& path, const std::string& format = "auto",
                                 bool skip_bad = false, ReadStats* stats = nullptr);
std::vector<PrefPair> read_prefs(const std::string& path, const ReadOptions& opts,
                                 ReadStats* stats = nullptr);

// The one message for "no usable pairs" (train, score and eval alike): how many rows were read and
// why each group was dropped, e.g. "no usable pairs in a.jsonl: 3 rows read; 3 pairs dropped as
// chosen == rejected". `where` names the input(s).
std::string no_usable_pairs_message(const ReadStats& totals, const std::string& where);
// Adds b's counts into a (first_errors up to 10, formats joined).
void add_read_stats(ReadStats* a, const ReadStats& b);

// The formats accepted by `format` (without "auto").
const std::vector<std::string>& pref_formats();

// Detected format of one row, or "" when its keys fit none.
std::string detect_format(const nlohmann::json& row);

// Parses one row of a known format. Throws FormatError with the problem (no file:line prefix).
// `file` is used for default ids and the RM-Bench domain. Returns the pairs (1, or 9 for
// rm-bench) before empty/identical filtering; sets *mismatched when chosen and rejected imply
// different prompts (then nothing is returned).
std::vector<PrefPair> parse_row(const nlohmann::json& row, const std::string& format,
                                const std::string& file, size_t line, bool* mismatched);

// Splits an HH-RLHF transcript into prompt turns and the final assistant reply. Throws
// FormatError naming `field` when there is no "\n\nAssistant:" turn.
void split_hh_transcript(const std::string& text, const std::string& field,
                         text::Conversation* prompt, std::string* reply);

}  // namespace rmkit::data
