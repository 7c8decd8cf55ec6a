// The bandit and reward-normaliser parameters as `rmkit bandit replay` and `rmkit laser` read them
// from their option tables (alpha, lambda, v, gamma, epsilon, seed, min-pulls-every; norm-low,
// norm-high, norm-min-history, norm-fallback).
#pragma once
#include "rmkit/core/options.h"
#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/normalizer.h"

namespace rmkit::cli {

// arms and dim are left to the caller.
select::BanditParams bandit_params_from(const Options& o);
// UsageError when --norm-low is above --norm-high.
select::NormalizerParams normalizer_params_from(const Options& o);

}  // namespace rmkit::cli
