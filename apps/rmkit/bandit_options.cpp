#include "bandit_options.h"

#include "rmkit/core/error.h"

namespace rmkit::cli {

select::BanditParams bandit_params_from(const Options& o) {
  select::BanditParams p;
  p.alpha = o.number("alpha");
  p.lambda = o.number("lambda");
  p.v = o.number("v");
  p.gamma = o.number("gamma");
  p.epsilon = o.number("epsilon");
  p.seed = static_cast<uint64_t>(o.integer("seed"));
  p.min_pulls_every = static_cast<uint64_t>(o.integer("min-pulls-every"));
  return p;
}

select::NormalizerParams normalizer_params_from(const Options& o) {
  select::NormalizerParams np;
  np.low_percentile = o.number("norm-low");
  np.high_percentile = o.number("norm-high");
  np.min_history = static_cast<size_t>(o.integer("norm-min-history"));
  np.fallback = o.number("norm-fallback");
  if (np.low_percentile > np.high_percentile)
    throw UsageError("--norm-low " + o.str("norm-low") + " is above --norm-high " + o.str("norm-high"));
  return np;
}

}  // namespace rmkit::cli
