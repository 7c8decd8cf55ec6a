// Context utilities for the linear bandits (torch-free): L2 normalisation, a seeded Gaussian random
// projection to d' dimensions, and the mean of a batch of contexts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rmkit::select {

using Context = std::vector<double>;

// sum_i x[i] y[i], vectorised (`omp simd` reduction: the library is compiled with -fopenmp-simd,
// which needs no OpenMP runtime); the inner loop of LinUCB, Thompson and the projection.
double dot(const double* x, const double* y, size_t n);

// x / ||x||_2; a zero vector is returned unchanged.
Context l2_normalize(Context x);

// Element-wise mean of equally long contexts. Throws ShapeError on an empty batch or a length
// mismatch (naming the row).
Context batch_mean(const std::vector<Context>& batch);

// y = P x with P an out_dim x in_dim matrix of N(0, 1) / sqrt(out_dim) entries. P is generated from
// `seed` alone: SplitMix64(seed).normal() (rng.h) drawn in row-major order, P[0][0], P[0][1], ...,
// P[0][in_dim-1], P[1][0], ... — so the same (seed, in_dim, out_dim) gives the same P everywhere.
class RandomProjection {
 public:
  RandomProjection(uint64_t seed, size_t in_dim, size_t out_dim);
  Context apply(const Context& x) const;  // ShapeError when x.size() != in_dim
  size_t in_dim() const { return in_dim_; }
  size_t out_dim() const { return out_dim_; }
  const std::vector<double>& matrix() const { return p_; }

 private:
  size_t in_dim_, out_dim_;
  std::vector<double> p_;  // row-major out_dim x in_dim
};

}  // namespace rmkit::select
