#include "rmkit/select/bandit/context.h"

#include <cmath>
#include <string>

#include "rmkit/core/error.h"
#include "rmkit/select/bandit/rng.h"

namespace rmkit::select {

double dot(const double* x, const double* y, size_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (size_t j = 0; j < n; ++j) s += x[j] * y[j];
  return s;
}

Context l2_normalize(Context x) {
  double ss = 0;
  for (double v : x) ss += v * v;
  if (ss > 0) {
    const double inv = 1.0 / std::sqrt(ss);
    for (double& v : x) v *= inv;
  }
  return x;
}

Context batch_mean(const std::vector<Context>& batch) {
  if (batch.empty()) throw ShapeError("batch_mean: empty batch");
  Context m(batch[0].size(), 0.0);
  for (size_t r = 0; r < batch.size(); ++r) {
    if (batch[r].size() != m.size())
      throw ShapeError("batch_mean: row " + std::to_string(r) + " has " + std::to_string(batch[r].size()) +
                       " values, expected " + std::to_string(m.size()));
    for (size_t i = 0; i < m.size(); ++i) m[i] += batch[r][i];
  }
  for (double& v : m) v /= static_cast<double>(batch.size());
  return m;
}

RandomProjection::RandomProjection(uint64_t seed, size_t in_dim, size_t out_dim)
    : in_dim_(in_dim), out_dim_(out_dim) {
  if (in_dim == 0 || out_dim == 0) throw ConfigError("random projection: dimensions must be positive");
  SplitMix64 rng(seed);
  const double scale = 1.0 / std::sqrt(static_cast<double>(out_dim));
  p_.resize(in_dim * out_dim);
  for (double& v : p_) v = rng.normal() * scale;
}

Context RandomProjection::apply(const Context& x) const {
  if (x.size() != in_dim_)
    throw ShapeError("random projection: context has " + std::to_string(x.size()) + " values, expected " +
                     std::to_string(in_dim_));
  Context y(out_dim_, 0.0);
  for (size_t i = 0; i < out_dim_; ++i) {
    y[i] = dot(p_.data() + i * in_dim_, x.data(), in_dim_);
  }
  return y;
}

}  // namespace rmkit::select
