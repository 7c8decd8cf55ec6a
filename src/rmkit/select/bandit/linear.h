// The contextual bandits: disjoint LinUCB and linear Thompson sampling, each arm k a ridge
// regression with A_k = lambda I + sum c c^T and b_k = sum r c over the rounds it was pulled.
// Two exact representations of A_k^{-1} (float64), chosen by the dimension:
//   dense (d < kLowRankMinDim): A_k^{-1} itself, row-major d x d, updated by Sherman–Morrison in O(d^2);
//   low rank (d >= kLowRankMinDim): the arm's t contexts X (t x d) and M = (lambda I_t + X X^T)^{-1}
//     (t x t), so that by Woodbury A^{-1} c = (c - X^T M X c) / lambda: O(t d + t^2) per solve and
//     per update (M grows by a block inverse). At d = 4096 a decision over K arms reads K t d values
//     instead of the 1 GiB of dense inverses (K = 8), for t up to about d. A select + update reads
//     X once: add() reuses the g = X c of the last ucb_terms_all when the context is the same, and
//     p = X b is recomputed in the next select's pass (same dot products, so the same bits as
//     computing them at update time). Large selects
//     split the arms over up to kMaxSelectThreads threads (the pass is memory-bound).
// A low-rank arm whose history reaches dense_rows() rows (by default the smallest t with
// t (t + d) >= d^2, about 0.62 d) turns dense: its A^{-1} = (I - X^T M X) / lambda is formed once
// and Sherman–Morrison continues from there. Past that point the low-rank solve (t d + t^2) and
// update (t^2, and M's t^2 memory) would cost more than the dense d^2, without bound.
#pragma once
#include <vector>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/rng.h"

namespace rmkit::select {

class RidgeArms {
 public:
  static constexpr size_t kLowRankMinDim = 512;
  // low_rank: -1 = by the dimension (see above), 0 = dense, 1 = low rank (tests compare the two).
  // dense_rows: rows at which a low-rank arm turns dense (0 = default_dense_rows(dim)).
  RidgeArms(size_t arms, size_t dim, double lambda, int low_rank = -1, size_t dense_rows = 0);
  static size_t default_dense_rows(size_t dim);
  // u = A_k^{-1} c (c and u hold dim values).
  void solve(size_t k, const double* c, double* u) const;
  // A_k += c c^T, b_k += r c, given u = A_k^{-1} c. Dense: A^{-1} -= (u u^T) / (1 + c.u), computed
  // as (u_i u_j) / den for every (i, j) so that A^{-1} stays exactly symmetric. Low rank: c joins X
  // and M grows by the block inverse (u unused).
  // Low rank: when c is the context of the last ucb_terms_all, its X_k c is reused (no pass over X).
  void add(size_t k, const double* c, const double* u, double r);
  bool low_rank() const { return low_rank_; }
  // Arm k holds a dense A^{-1} (always in dense form; in low-rank form once it turned dense).
  bool arm_dense(size_t k) const { return !low_rank_ || !dense_[k].empty(); }
  size_t dense_rows() const { return dense_rows_; }
  // c.theta_k = b_k^T A_k^{-1} c and c^T A_k^{-1} c. Low rank: one pass over X (g = X c, and p = X b
  // when an update made it stale) and (c.b - p^T M g) / lambda, (c.c - g^T M g) / lambda; `g_out`
  // receives g. Dense arm: via solve, and `g_out` receives u = A_k^{-1} c. Arms may be computed
  // concurrently (each touches only its own data).
  void ucb_terms(size_t k, const double* c, double* c_theta, double* c_ainv_c, std::vector<double>* g_out = nullptr) const;
  // All arms' terms; low rank with K t d >= kParallelValues runs arms on several threads, and keeps
  // c and every arm's X c for the next add().
  static constexpr size_t kMaxSelectThreads = 4;
  static constexpr size_t kParallelValues = size_t{1} << 21;
  void ucb_terms_all(const double* c, double* c_theta, double* c_ainv_c) const;
  // A_k^{-1} of a dense arm, row-major d x d (nullptr while the arm is low rank).
  const double* a_inv(size_t k) const {
    if (!low_rank_) return a_inv_.data() + k * dim_ * dim_;
    return dense_[k].empty() ? nullptr : dense_[k].data();
  }
  const double* b(size_t k) const { return b_.data() + k * dim_; }
  size_t dim() const { return dim_; }

  // Dense: {"a_inv": [K flat row-major arrays], "b": [K arrays]}; low rank: {"x": [K flat t x d
  // arrays], "b": [...]} (M is rebuilt by re-adding the rows in order: the same floats), plus
  // "a_inv": [K arrays, empty for low-rank arms] once an arm turned dense (its x is then empty).
  // x and a_inv are packed (packed_array.h); load also reads them as plain number arrays.
  nlohmann::json save() const;
  void load(const nlohmann::json& j);

 private:
  void add_low_rank(size_t k, const double* c, const std::vector<double>* g);
  void make_dense(size_t k);  // low-rank arm k -> dense A^{-1}; frees X, M, p
  size_t arms_, dim_;
  double lambda_;
  bool low_rank_;
  size_t dense_rows_;
  std::vector<double> a_inv_, b_;
  std::vector<std::vector<double>> dense_;  // low rank: per arm, A^{-1} once it turned dense
  std::vector<std::vector<double>> x_, m_;  // low rank: per arm X (t x d) and M (t x t), row-major
  // low rank: per arm X b, recomputed whole (not patched, so a reloaded state gives the same bits)
  // in the first select after an update
  mutable std::vector<std::vector<double>> p_;
  mutable std::vector<char> p_stale_;
  // low rank: the last ucb_terms_all's context and X_k c per arm (a dense arm: A_k^{-1} c), valid
  // until the next add/load
  mutable std::vector<double> sel_c_;
  mutable std::vector<std::vector<double>> sel_g_;
  mutable bool sel_valid_ = false;
};

// argmax_k c.theta_k + alpha sqrt(c^T A_k^{-1} c), theta_k = A_k^{-1} b_k (Li et al. 2010, disjoint
// model); scores = the UCB values. update(j, c, r): A_j += c c^T, b_j += r c.
class LinUcb : public Bandit {
 public:
  explicit LinUcb(const BanditParams& p);
  std::string name() const override { return "linucb"; }
  bool contextual() const override { return true; }
  // Components of the last select's scores: c.theta_k and alpha sqrt(c^T A_k^{-1} c).
  const std::vector<double>& exploitation() const { return exploit_; }
  const std::vector<double>& exploration() const { return bonus_; }
  const RidgeArms& model() const { return ridge_; }

 protected:
  size_t choose(const Context& c) override;
  void learn(size_t arm, const Context& c, double reward) override;
  nlohmann::json save_model() const override { return ridge_.save(); }
  void load_model(const nlohmann::json& m) override;

 private:
  RidgeArms ridge_;
  std::vector<double> exploit_, bonus_;
  std::vector<double> u_;      // A_k^{-1} c of the last select, K x d (reused by update; dense)
  Context last_context_;
  bool u_valid_ = false;
};

// Linear Thompson sampling: theta~_k ~ N(theta_k, v^2 A_k^{-1}), choose argmax_k c.theta~_k.
// Only c.theta~_k enters the choice, and c.theta~_k ~ N(c.theta_k, v^2 c^T A_k^{-1} c) exactly, so it
// is drawn directly: score_k = c.theta_k + v sqrt(c^T A_k^{-1} c) z_k, with z_0, z_1, ..., z_{K-1} the
// next K SplitMix64 normals (rng.h; one per arm, in arm order, every select). Same distribution
// of choices as sampling the full d-dimensional theta~_k, in O(d^2) per arm instead of a Cholesky
// factorisation (O(d^3)) per arm and round.
class LinearThompson : public Bandit {
 public:
  explicit LinearThompson(const BanditParams& p);
  std::string name() const override { return "thompson"; }
  bool contextual() const override { return true; }
  const RidgeArms& model() const { return ridge_; }

 protected:
  size_t choose(const Context& c) override;
  void learn(size_t arm, const Context& c, double reward) override;
  nlohmann::json save_model() const override;
  void load_model(const nlohmann::json& m) override;

 private:
  RidgeArms ridge_;
  SplitMix64 rng_;
  std::vector<double> u_;
};

}  // namespace rmkit::select
