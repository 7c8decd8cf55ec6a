#include "rmkit/basemodel/presence.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "rmkit/core/progress.h"
#include "rmkit/train/logprobs.h"

namespace rmkit::basemodel {

PresenceResult presence_scores(model::CausalLMImpl& lm, const text::Tokenizer& tok,
                               const std::vector<std::string>& texts, const std::vector<std::string>& groups,
                               const PresenceOptions& opts) {
  PresenceResult r;
  const int64_t limit = lm.config().max_position_embeddings > 1 ? lm.config().max_position_embeddings - 1 : opts.max_tokens;
  r.max_tokens = std::max<int64_t>(1, std::min(opts.max_tokens, limit));
  const int32_t bos = tok.bos_id();
  // sequence fed to the model: [BOS] + first N tokens, or the first N tokens
  std::vector<std::vector<int32_t>> seqs(texts.size());
  r.docs.resize(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto ids = tok.encode(texts[i], false, false);
    PresenceDoc& d = r.docs[i];
    d.index = i;
    d.group = i < groups.size() ? groups[i] : "";
    d.truncated = static_cast<int64_t>(ids.size()) > r.max_tokens;
    if (d.truncated) ids.resize(static_cast<size_t>(r.max_tokens));
    if (bos >= 0) ids.insert(ids.begin(), bos);
    if (ids.size() >= 2) seqs[i] = std::move(ids);
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < seqs.size(); ++i)
    if (!seqs[i].empty()) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return seqs[a].size() > seqs[b].size(); });
  const int64_t pad = tok.pad_id() >= 0 ? tok.pad_id() : (tok.eos_id() >= 0 ? tok.eos_id() : 0);
  lm.eval();
  c10::InferenceMode guard;
  Progress progress("presence", static_cast<int64_t>(order.size()), opts.progress ? Progress::Mode::Auto : Progress::Mode::Off);
  const size_t bs = static_cast<size_t>(std::max<int64_t>(1, opts.batch_size));
  for (size_t start = 0; start < order.size(); start += bs) {
    const size_t end = std::min(order.size(), start + bs);
    const int64_t B = static_cast<int64_t>(end - start);
    const int64_t T = static_cast<int64_t>(seqs[order[start]].size());
    auto ids = torch::full({B, T}, pad, torch::kLong);
    auto mask = torch::zeros({B, T}, torch::kLong);
    auto ia = ids.accessor<int64_t, 2>();
    auto ma = mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = seqs[order[start + static_cast<size_t>(b)]];
      for (size_t t = 0; t < s.size(); ++t) ia[b][static_cast<int64_t>(t)] = s[t], ma[b][static_cast<int64_t>(t)] = 1;
    }
    model::ForwardInput in;
    in.input_ids = ids;
    in.attention_mask = mask;
    // every real token after the first counts (token_logprobs ignores position 0)
    auto mean = train::sequence_logprob_mean(lm.forward(in), ids, mask).to(torch::kDouble).contiguous();
    auto count = mask.sum(1) - 1;
    for (int64_t b = 0; b < B; ++b) {
      PresenceDoc& d = r.docs[order[start + static_cast<size_t>(b)]];
      d.presence = mean[b].item<double>();
      d.tokens = count[b].item<int64_t>();
    }
    progress.update(static_cast<int64_t>(end));
  }
  progress.finish();
  std::map<std::string, std::pair<double, size_t>> sums;
  double total = 0;
  for (const auto& d : r.docs) {
    if (d.tokens == 0) {
      ++r.skipped;
      continue;
    }
    ++r.scored;
    total += d.presence;
    sums[d.group].first += d.presence;
    sums[d.group].second += 1;
  }
  for (auto& [g, v] : sums) r.groups[g] = {v.first / static_cast<double>(v.second), v.second};
  r.mean = r.scored ? total / static_cast<double>(r.scored) : 0;
  return r;
}

}  // namespace rmkit::basemodel
