// The data-presence score of arXiv 2505.10775: the length-normalised log-likelihood of a document's
// first N tokens under a base LM,
//   presence(doc) = (1 / m') * sum_{i=1..m'} log p(t_i | t_<i),   m' = min(N, m),
// where t_1..t_m are the document's tokens (no special tokens). When the tokenizer has a BOS token
// it is the context of t_1 and all m' tokens count; without one, t_1 is the context and
// t_2..t_m' count (m' - 1 tokens). N is capped at the model's max_position_embeddings - 1. Rows
// are scored in length-sorted batches (padding does not change a score).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rmkit/model/causal_lm.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::basemodel {

struct PresenceOptions {
  int64_t max_tokens = 2048;   // N
  int64_t batch_size = 8;      // documents per forward
  bool progress = true;
};

struct PresenceDoc {
  size_t index = 0;            // row in the corpus (0-based)
  std::string group;
  int64_t tokens = 0;          // tokens scored (0: skipped, too short)
  bool truncated = false;      // the document had more than N tokens
  double presence = 0;
};

struct PresenceResult {
  std::vector<PresenceDoc> docs;
  std::map<std::string, std::pair<double, size_t>> groups;  // group -> (mean presence, documents)
  double mean = 0;             // over every scored document
  size_t scored = 0, skipped = 0;
  int64_t max_tokens = 0;      // N actually used
};

PresenceResult presence_scores(model::CausalLMImpl& lm, const text::Tokenizer& tok,
                               const std::vector<std::string>& texts, const std::vector<std::string>& groups,
                               const PresenceOptions& opts);

}  // namespace rmkit::basemodel
