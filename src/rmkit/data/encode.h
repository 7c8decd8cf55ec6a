// Turning preference pairs into token ids: chat template, BOS/EOS, truncation.
//
// Layout. Each side is tokenized as one text, T = template.render_prompt(prompt) +
// template.render_response(reply) (+ EOS for the "plain" template, whose replies carry no
// end-of-turn text), with [BOS] in front. prompt_ids is the longest token prefix that
// encode(render_prompt(prompt)) shares with both sides' encodings; chosen_ids / rejected_ids are
// the rest. So prompt_ids + chosen_ids == [BOS] + encode(T_chosen) exactly, whatever the tokenizer
// does at the boundary (SentencePiece's dummy-prefix space, merges across it). BOS is added only
// when the tokenizer has one and the template's text does not already start with it; text is
// encoded with parse_special so template markers become their special ids.
//
// Truncation (max_length > 0 bounds both prompt+chosen and prompt+rejected; R = the longer
// response, A = max_length - |BOS|):
//   1. If it fits, nothing changes.
//   2. Drop whole turns, oldest first: a turn starts at the first non-system message or at a user
//      message. A leading system message and the final user turn (with anything after it) are
//      never dropped. Stop as soon as it fits.
//   3. Still too long, with T = tokens of the final user turn onward (its role header included):
//      a. T + R <= A: drop the oldest prompt tokens after BOS (the system message, cut from its
//         start); the final user turn and both responses stay whole.
//      b. otherwise each response is cut at its end to rb = max(A - T, min(R, A / 4)) tokens (a
//         response always keeps at least a quarter of the budget), and the prompt keeps its last
//         A - rb tokens (the whole final turn when A - T >= A / 4).
// A pair is counted as truncated when any of 2-3 applied. max_length must leave room for at least
// two tokens after BOS (UsageError otherwise). max_length = 0 disables truncation.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rmkit/data/pairs.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::data {

struct EncodedPair {
  std::vector<int32_t> prompt_ids, chosen_ids, rejected_ids;
  bool truncated = false;
  size_t index = 0;  // position of the pair in the input (set by encode_pairs)

  size_t chosen_length() const { return prompt_ids.size() + chosen_ids.size(); }
  size_t rejected_length() const { return prompt_ids.size() + rejected_ids.size(); }
  // The padded length a batch needs for this pair (longer of the two sequences).
  size_t length() const { return std::max(chosen_length(), rejected_length()); }
};

struct EncodedSingle {
  std::vector<int32_t> prompt_ids, response_ids;
  bool truncated = false;
  size_t index = 0;
  size_t length() const { return prompt_ids.size() + response_ids.size(); }
};

struct EncodeStats {
  size_t pairs = 0, truncated = 0;
};

// Throws FormatError template_problem() when `tmpl` cannot render the pair's prompt.
EncodedPair encode_pair(const PrefPair& pair, const text::Tokenizer& tok,
                        const text::ChatTemplate& tmpl, size_t max_length);

// Why `tmpl` cannot render the pair's prompt, located: "FILE:LINE: field 'prompt[I].role': role
// 'tool' is not supported by chat template 'plain' (expected system, user or assistant)"; "" when
// it can.
std::string template_problem(const PrefPair& pair, const text::ChatTemplate& tmpl);

// A pair whose prompt `tmpl` cannot render is a malformed row, found once the template is known
// (after reading): FormatError template_problem(); with skip_bad it is skipped instead, counted in
// *stats (skipped_bad + 1, kept - 1, first_errors) and removed from *pairs, or with keep_dropped
// left in place with PrefPair::skipped = "malformed row: ...". Pairs already skipped are left
// alone. Returns how many were skipped.
size_t skip_unrenderable(std::vector<PrefPair>* pairs, const text::ChatTemplate& tmpl, bool skip_bad,
                         bool keep_dropped, ReadStats* stats);

// Encodes every pair (index = position) and counts truncations.
std::vector<EncodedPair> encode_pairs(const std::vector<PrefPair>& pairs, const text::Tokenizer& tok,
                                      const text::ChatTemplate& tmpl, size_t max_length,
                                      EncodeStats* stats = nullptr);

// One (conversation, reply) for scoring, with the same layout and truncation rule.
EncodedSingle encode_single(const text::Conversation& conv, const std::string& reply,
                            const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                            size_t max_length);

// length() of each encoded pair, for the batchers.
std::vector<size_t> pair_lengths(const std::vector<EncodedPair>& enc);

}  // namespace rmkit::data
