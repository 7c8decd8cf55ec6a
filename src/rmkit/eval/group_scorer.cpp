#include "rmkit/eval/group_scorer.h"

#include <torch/torch.h>

#include <string>

#include "rmkit/core/error.h"
#include "rmkit/train/autocast.h"

namespace rmkit::eval {

int64_t group_tokens(const ScoreGroup& g) {
  int64_t n = static_cast<int64_t>(g.prompt.size());
  for (const auto& r : g.responses) n += static_cast<int64_t>(r.size());
  return n;
}

std::vector<double> score_groups(train::RewardModelImpl& rm, const std::vector<const ScoreGroup*>& groups,
                                 bool bf16) {
  int64_t N = 0, M = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const ScoreGroup& g = *groups[gi];
    if (g.responses.empty()) throw ShapeError("score_groups: group " + std::to_string(gi) + " has no response");
    for (size_t k = 0; k < g.responses.size(); ++k)
      if (g.prompt.empty() && g.responses[k].empty())
        throw ShapeError("score_groups: group " + std::to_string(gi) + " response " + std::to_string(k) +
                         " has no token (empty prompt and response)");
    N += group_tokens(g);
    M += static_cast<int64_t>(g.responses.size());
  }
  if (M == 0) return {};
  const auto L = torch::kLong;
  auto ids_t = torch::empty({1, N}, L);
  model::PackedLayout layout;
  layout.positions = torch::empty({N}, L);
  auto read_t = torch::empty({M}, L);  // packed position of each response's reward token
  auto ids = ids_t.accessor<int64_t, 2>();
  auto pos = layout.positions.accessor<int64_t, 1>();
  auto read = read_t.accessor<int64_t, 1>();
  int64_t at = 0, m = 0;
  auto put = [&](const std::vector<int32_t>& toks, int64_t first_pos) {
    for (size_t t = 0; t < toks.size(); ++t, ++at) {
      ids[0][at] = toks[t];
      pos[at] = first_pos + static_cast<int64_t>(t);
    }
  };
  for (const ScoreGroup* gp : groups) {
    const ScoreGroup& g = *gp;
    const int64_t start = at, p = static_cast<int64_t>(g.prompt.size());
    const int64_t r0 = static_cast<int64_t>(g.responses[0].size());
    if (p + r0 > 0) layout.segments.push_back({start, p + r0, 0, 0});
    put(g.prompt, 0);
    put(g.responses[0], p);
    read[m++] = r0 > 0 ? at - 1 : start + p - 1;
    for (size_t k = 1; k < g.responses.size(); ++k) {
      const auto& r = g.responses[k];
      if (!r.empty()) layout.segments.push_back({at, static_cast<int64_t>(r.size()), start, p});
      put(r, p);
      read[m++] = !r.empty() ? at - 1 : start + p - 1;
    }
  }
  rm.eval();
  c10::InferenceMode guard;
  train::CpuAutocast autocast(bf16);
  model::ForwardInput in;
  in.input_ids = ids_t;
  in.packed = &layout;
  torch::Tensor hidden = rm.backbone().forward_hidden(in);             // [1, N, H]
  torch::Tensor pooled = hidden.squeeze(0).index_select(0, read_t);    // [M, H]
  torch::Tensor rewards = rm.score(pooled).to(torch::kDouble).contiguous();  // [M]
  auto ra = rewards.accessor<double, 1>();
  std::vector<double> out(static_cast<size_t>(M));
  for (int64_t i = 0; i < M; ++i) out[static_cast<size_t>(i)] = ra[i];
  return out;
}

}  // namespace rmkit::eval
