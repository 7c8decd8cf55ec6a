// Incremental detokenisation for streaming: text released as tokens arrive, never splitting a
// UTF-8 character, holding back a tail that could still grow into a stop string, and cutting the
// text before the first stop string found (stops match decoded text across token boundaries).
// The text is decode(last prompt tokens + output) minus decode(last prompt tokens), so a
// SentencePiece first piece keeps its leading space as it does inside the full text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rmkit/text/tokenizer.h"

namespace rmkit::serve {

class StreamText {
 public:
  StreamText(const text::Tokenizer& tok, const std::vector<int32_t>& prompt, std::vector<std::string> stops);
  // Adds one output token; returns the text it releases. *stopped: a stop string now appears (the
  // released text ends right before it; push no more).
  std::string push(int32_t id, bool* stopped);
  // At the end: releases what was held back (up to a stop string if one matched).
  std::string flush();
  const std::string& released() const { return released_; }

 private:
  std::string full() const;
  const text::Tokenizer& tok_;
  std::vector<int32_t> ctx_, ids_;
  std::string ctx_text_;
  std::vector<std::string> stops_;
  size_t max_stop_ = 0;
  std::string released_;
  bool stopped_ = false;
};

// Bytes at the end of s that start an incomplete UTF-8 sequence (0 when s ends cleanly).
size_t incomplete_utf8_tail(const std::string& s);

}  // namespace rmkit::serve
