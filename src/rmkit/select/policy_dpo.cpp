#include "rmkit/select/policy_dpo.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>

#include "rmkit/train/autocast.h"
#include "rmkit/train/logprobs.h"
#include "rmkit/train/losses.h"

namespace rmkit::select {
namespace {

// ids/mask [R, T] (right padded) for prompt + each response; resp marks response tokens.
void layout(const std::vector<int32_t>& prompt, const std::vector<const std::vector<int32_t>*>& resp, torch::Tensor* ids,
            torch::Tensor* attn, torch::Tensor* rmask) {
  int64_t T = 1;
  for (const auto* r : resp) T = std::max<int64_t>(T, static_cast<int64_t>(prompt.size() + r->size()));
  const int64_t R = static_cast<int64_t>(resp.size());
  std::vector<int64_t> id(static_cast<size_t>(R * T), 0), am(id.size(), 0), rm(id.size(), 0);
  for (int64_t i = 0; i < R; ++i) {
    int64_t t = 0;
    for (int32_t v : prompt) {
      id[i * T + t] = v;
      am[i * T + t++] = 1;
    }
    for (int32_t v : *resp[static_cast<size_t>(i)]) {
      id[i * T + t] = v;
      am[i * T + t] = 1;
      rm[i * T + t++] = 1;
    }
  }
  *ids = torch::tensor(id, torch::kLong).view({R, T});
  *attn = torch::tensor(am, torch::kLong).view({R, T});
  *rmask = torch::tensor(rm, torch::kLong).view({R, T});
}

}  // namespace

DpoStepResult accumulate_dpo(model::CausalLMImpl& policy, model::CausalLMImpl& reference,
                             const std::vector<PromptPairs>& batch, double beta, double nll_weight, bool bf16) {
  DpoStepResult res;
  for (const auto& p : batch) res.pairs += static_cast<int64_t>(p.pairs.size());
  res.prompt_loss.assign(batch.size(), std::numeric_limits<double>::quiet_NaN());
  if (res.pairs == 0) return res;
  for (size_t b = 0; b < batch.size(); ++b) {
    const auto& p = batch[b];
    if (p.pairs.empty()) continue;
    // the distinct samples these pairs use
    std::map<size_t, int64_t> row;
    std::vector<const std::vector<int32_t>*> seqs;
    for (const auto& pr : p.pairs)
      for (size_t s : {pr.chosen, pr.rejected})
        if (!row.count(s)) {
          row[s] = static_cast<int64_t>(seqs.size());
          seqs.push_back(&p.responses[s]);
        }
    torch::Tensor ids, attn, rmask;
    layout(p.prompt, seqs, &ids, &attn, &rmask);
    res.tokens += attn.sum().item<int64_t>();
    model::ForwardInput in;
    in.input_ids = ids;
    in.attention_mask = attn;
    torch::Tensor ref_sum;
    {
      torch::NoGradGuard ng;
      train::CpuAutocast ac(bf16);
      ref_sum = train::sequence_logprob_sum(reference.forward(in), ids, rmask).to(torch::kFloat);
    }
    torch::Tensor logits;
    {
      train::CpuAutocast ac(bf16);
      logits = policy.forward(in);
    }
    torch::Tensor tok = train::token_logprobs(logits, ids, rmask).to(torch::kFloat);  // [R, T]
    torch::Tensor w = train::target_mask(rmask, torch::kFloat);
    torch::Tensor sum = tok.sum(1);
    torch::Tensor mean = sum / w.sum(1).clamp_min(1.0);
    std::vector<int64_t> wi, li;
    for (const auto& pr : p.pairs) {
      wi.push_back(row[pr.chosen]);
      li.push_back(row[pr.rejected]);
    }
    auto wt = torch::tensor(wi, torch::kLong), lt = torch::tensor(li, torch::kLong);
    torch::Tensor per;
    torch::Tensor dpo = train::dpo_loss(sum.index_select(0, wt), sum.index_select(0, lt), ref_sum.index_select(0, wt),
                                        ref_sum.index_select(0, lt), beta, &per);
    torch::Tensor nll = -mean.index_select(0, wt).mean();
    torch::Tensor loss = dpo + nll_weight * nll;
    const double share = static_cast<double>(p.pairs.size()) / static_cast<double>(res.pairs);
    (loss * share).backward();
    {
      torch::NoGradGuard ng;
      auto h = (sum.index_select(0, wt) - ref_sum.index_select(0, wt)) - (sum.index_select(0, lt) - ref_sum.index_select(0, lt));
      res.margin += share * (beta * h).mean().item<double>();
      res.accuracy += share * (h > 0).to(torch::kFloat).mean().item<double>();
    }
    res.prompt_loss[b] = loss.item<double>();
    res.loss += share * res.prompt_loss[b];
    res.dpo += share * dpo.item<double>();
    res.nll += share * nll.item<double>();
  }
  return res;
}

}  // namespace rmkit::select
