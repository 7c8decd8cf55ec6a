// Sharding of per-item work (rmkit score / rmkit eval) across the default group: rank r handles
// items r, r+W, r+2W, ... (interleaved, so long and short rows spread evenly) and every rank gets
// all items' results back in input order (a float64 all-reduce). One process: all items.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace rmkit::dist {

// fn(mine) returns `cols` columns with one value per item of `mine` (indices into 0..n-1), and may
// add to `scalars` (summed over ranks, e.g. a truncation count). Returns cols columns of n values.
using ShardFn = std::function<std::vector<std::vector<double>>(const std::vector<size_t>& mine,
                                                               std::vector<double>* scalars)>;
std::vector<std::vector<double>> shard_items(size_t n, size_t cols, size_t n_scalars, const ShardFn& fn,
                                             std::vector<double>* scalars, const std::string& what);

}  // namespace rmkit::dist
