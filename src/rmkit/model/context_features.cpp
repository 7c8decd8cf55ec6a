#include "rmkit/model/context_features.h"

#include <algorithm>
#include <numeric>

#include "rmkit/core/error.h"

namespace rmkit::model {

ContextMode parse_context_mode(const std::string& s) {
  if (s == "last-hidden") return ContextMode::LastHidden;
  if (s == "mean-hidden") return ContextMode::MeanHidden;
  if (s == "mean-embedding") return ContextMode::MeanEmbedding;
  throw UsageError("context mode: expected last-hidden, mean-hidden or mean-embedding, got '" + clip_text(s, 80) + "'");
}

std::string context_mode_name(ContextMode m) {
  switch (m) {
    case ContextMode::LastHidden: return "last-hidden";
    case ContextMode::MeanHidden: return "mean-hidden";
    case ContextMode::MeanEmbedding: return "mean-embedding";
  }
  return "?";
}

namespace {

// Restores the module's train/eval mode on scope exit.
class EvalScope {
 public:
  explicit EvalScope(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalScope() {
    if (was_training_) m_.train();
  }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  torch::nn::Module& m_;
  bool was_training_;
};

// Contexts of one right-padded batch: ids/mask [b, T], lengths [b] -> [b, hidden] float64.
torch::Tensor batch_rows(CausalLMImpl& model, const torch::Tensor& ids, const torch::Tensor& mask,
                         const torch::Tensor& lengths, ContextMode mode) {
  torch::Tensor h;  // [b, T, C]
  if (mode == ContextMode::MeanEmbedding) {
    h = torch::embedding(model.embedding_weight(), ids);
  } else {
    ForwardInput in;
    in.input_ids = ids;
    in.attention_mask = mask;  // right padding: positions 0..len-1, pads never seen by real tokens
    h = model.forward_hidden(in);
  }
  h = h.to(torch::kFloat64);
  if (mode == ContextMode::LastHidden) {
    auto last = (lengths - 1).view({-1, 1, 1}).expand({h.size(0), 1, h.size(2)});  // [b, 1, C]
    return h.gather(1, last).squeeze(1);                                             // [b, C]
  }
  auto m = mask.to(torch::kFloat64).unsqueeze(-1);                   // [b, T, 1]
  return (h * m).sum(1) / lengths.to(torch::kFloat64).unsqueeze(1);  // [b, C]
}

}  // namespace

torch::Tensor prompt_contexts(CausalLMImpl& model, const std::vector<std::vector<int64_t>>& prompts, ContextMode mode,
                              int64_t batch_size) {
  if (prompts.empty()) throw ShapeError("prompt_contexts: no prompts");
  if (batch_size < 1) throw UsageError("prompt_contexts: batch_size must be >= 1, got " + std::to_string(batch_size));
  const int64_t vocab = model.config().vocab_size;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw ShapeError("prompt_contexts: prompt " + std::to_string(i) + " has no tokens");
    for (int64_t t : prompts[i])
      if (t < 0 || t >= vocab)
        throw ShapeError("prompt_contexts: prompt " + std::to_string(i) + " has token id " + std::to_string(t) +
                         " outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  const int64_t C = model.config().hidden_size, n = static_cast<int64_t>(prompts.size());
  auto out = torch::empty({n, C}, torch::kFloat64);  // made outside inference mode: usable with autograd later
  c10::InferenceMode guard;
  EvalScope eval(model);
  const auto dev = model.embedding_weight().device();
  // longest first, so each batch pads little
  std::vector<size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompts[a].size() > prompts[b].size(); });
  for (int64_t b0 = 0; b0 < n; b0 += batch_size) {
    const int64_t b = std::min(batch_size, n - b0);
    const int64_t T = static_cast<int64_t>(prompts[order[b0]].size());
    auto ids = torch::zeros({b, T}, torch::kLong), mask = torch::zeros({b, T}, torch::kLong);
    auto lengths = torch::empty({b}, torch::kLong);
    auto ia = ids.accessor<int64_t, 2>();
    auto ma = mask.accessor<int64_t, 2>();
    auto la = lengths.accessor<int64_t, 1>();
    for (int64_t r = 0; r < b; ++r) {
      const auto& p = prompts[order[b0 + r]];
      for (size_t t = 0; t < p.size(); ++t) {
        ia[r][static_cast<int64_t>(t)] = p[t];
        ma[r][static_cast<int64_t>(t)] = 1;
      }
      la[r] = static_cast<int64_t>(p.size());
    }
    auto rows = batch_rows(model, ids.to(dev), mask.to(dev), lengths.to(dev), mode).to(torch::kCPU);  // [b, C]
    for (int64_t r = 0; r < b; ++r) out[static_cast<int64_t>(order[b0 + r])].copy_(rows[r]);
  }
  return out;
}

torch::Tensor batch_context(CausalLMImpl& model, const std::vector<std::vector<int64_t>>& prompts, ContextMode mode,
                            int64_t batch_size) {
  return prompt_contexts(model, prompts, mode, batch_size).mean(0);  // [hidden]
}

}  // namespace rmkit::model
