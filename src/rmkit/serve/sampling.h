// Token selection for the generation engine, one sequence at a time on CPU doubles, so a
// sequence's choice never depends on what else is in the batch:
//   1. repetition_penalty (HF): logits of ids seen in prompt or output are divided by p when
//      positive, multiplied when negative;
//   2. frequency / presence penalties (OpenAI): logit -= count * frequency + (count > 0) * presence,
//      over output ids;
//   3. temperature 0 -> argmax (the first maximum); else logits / temperature, top-k (keep the k
//      largest), softmax, top-p (keep the smallest most-probable set whose mass reaches p), min-p
//      (drop p < min_p * max p), then one uniform draw from the sequence's own mt19937_64 over the
//      kept ids in id order (model/generate.cpp's rule, so a seed means the same thing).
// Log-probs are the model's raw log-softmax (before penalties and temperature), as vLLM reports.
#pragma once
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rmkit::serve {

struct SamplingParams {
  int64_t max_tokens = 16;          // new tokens (capped by the context)
  // max_tokens was not given by the client (chat's default, "up to the context"): the engine also
  // caps it at what the KV-cache budget holds for n samples, instead of refusing the request
  bool max_tokens_default = false;
  double temperature = 1.0;         // 0 = greedy
  double top_p = 1.0;
  int64_t top_k = 0;                // 0 = off
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  double frequency_penalty = 0.0, presence_penalty = 0.0;
  std::optional<uint64_t> seed;     // sample i of a request uses seed + i
  std::vector<std::string> stop;    // matched on decoded text, excluded from the output
  std::vector<int32_t> stop_ids;    // in addition to the tokenizer's stop ids unless ignore_eos
  bool ignore_eos = false;
  int64_t n = 1;
  int64_t logprobs = -1;            // -1: none; k >= 0: the chosen token's log-prob + top k
  bool prompt_logprobs = false;     // log-probs of the prompt tokens too (completions' echo)

  // Throws HttpError 400 naming the parameter.
  void validate(int64_t vocab) const;
};

struct TokenLogprob {
  int32_t id = 0;
  double logprob = 0;
  std::vector<std::pair<int32_t, double>> top;  // best first
};

// Raw log-softmax of `logits` at `id`, with the top-k alternatives.
TokenLogprob token_logprob(const float* logits, int64_t vocab, int32_t id, int64_t top_k);

// Applies the penalties and picks the next id (see above). `counts`: output id -> occurrences;
// `seen`: every id of prompt + output (for repetition_penalty).
int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& p,
                     const std::unordered_map<int32_t, int64_t>& counts, const std::vector<char>& seen,
                     std::mt19937_64& rng);

}  // namespace rmkit::serve
