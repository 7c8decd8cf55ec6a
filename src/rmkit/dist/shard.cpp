#include "rmkit/dist/shard.h"

#include <torch/torch.h>

#include "rmkit/dist/process_group.h"

namespace rmkit::dist {

std::vector<std::vector<double>> shard_items(size_t n, size_t cols, size_t n_scalars, const ShardFn& fn,
                                             std::vector<double>* scalars, const std::string& what) {
  auto g = default_group();
  const size_t W = g ? static_cast<size_t>(g->size()) : 1, r = g ? static_cast<size_t>(g->rank()) : 0;
  std::vector<size_t> mine;
  for (size_t i = r; i < n; i += W) mine.push_back(i);
  std::vector<double> sc(n_scalars, 0.0);
  auto part = fn(mine, &sc);
  if (part.size() != cols) throw DistError(what + ": expected " + std::to_string(cols) + " result columns");
  for (const auto& c : part)
    if (c.size() != mine.size()) throw DistError(what + ": a result column does not match the items");
  if (W == 1) {
    if (scalars) *scalars = sc;
    return part;
  }
  // [cols * n + n_scalars] zeros, this rank's values in its slots, summed over ranks
  auto t = torch::zeros({static_cast<int64_t>(cols * n + n_scalars)}, torch::kDouble);
  auto a = t.accessor<double, 1>();
  for (size_t c = 0; c < cols; ++c)
    for (size_t k = 0; k < mine.size(); ++k) a[static_cast<int64_t>(c * n + mine[k])] = part[c][k];
  for (size_t s = 0; s < n_scalars; ++s) a[static_cast<int64_t>(cols * n + s)] = sc[s];
  g->allreduce_sum(t, what);
  std::vector<std::vector<double>> out(cols, std::vector<double>(n));
  for (size_t c = 0; c < cols; ++c)
    for (size_t i = 0; i < n; ++i) out[c][i] = a[static_cast<int64_t>(c * n + i)];
  if (scalars) {
    scalars->assign(n_scalars, 0.0);
    for (size_t s = 0; s < n_scalars; ++s) (*scalars)[s] = a[static_cast<int64_t>(cols * n + s)];
  }
  return out;
}

}  // namespace rmkit::dist
