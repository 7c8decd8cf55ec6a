// Reading a teacher's replies: judge scores, the refined response between its tags, and the
// normalized character edit distance between a rejected reply and its refinement. Torch-free.
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "rmkit/text/message.h"

namespace rmkit::distill {

// The first two scores of a judge reply ("8 6", "7.5 3\nBecause ...", "Assistant 1: 8\nAssistant
// 2: 6", "8/10 and 6/10"), both within [lo, hi]; nullopt when the reply has fewer than two or one of
// the first two is out of range (a parse failure: the pair is dropped, never scored 0). Numbers
// that are not scores are skipped: the label of "Assistant 1" / "Answer 2" / "Response 1" and the
// scale of "/10", "out of 10", "1-10", "1 to 10".
std::optional<std::pair<double, double>> parse_two_scores(const std::string& reply, double lo = 1, double hi = 10);
// The first score of a reply (the same skipping), within [lo, hi].
std::optional<double> parse_one_score(const std::string& reply, double lo = 1, double hi = 10);

// The text between "<Start of Modified Response>" and "<End of Modified Response>" (the end tag
// also as "</End of Modified Response>"), trimmed; the first start tag that has an end tag after
// it wins. nullopt without both tags.
std::optional<std::string> extract_modified_response(const std::string& reply);

// Levenshtein distance over Unicode code points (invalid UTF-8 bytes count as one unit each),
// divided by the longer length; 0 for two empty strings.
double normalized_edit_distance(const std::string& a, const std::string& b);
size_t edit_distance(const std::string& a, const std::string& b);

// The prompt conversation as one question text: a single user turn as it is; otherwise every turn
// as "Role: content" lines separated by blank lines.
std::string question_text(const text::Conversation& prompt);

// s without leading and trailing whitespace.
std::string trim_space(const std::string& s);

// "%g"-style short form of a score for prompts and keys ("7", "6.5").
std::string format_score(double s);

}  // namespace rmkit::distill
