// The contextual bandits: disjoint LinUCB and linear Thompson sampling, each arm k a ridge
// regression with A_k = lambda I + sum c c^T and b_k = sum r c over the rounds it was pulled.
// A_k^{-1} is kept directly (float64, row-major d x d) and updated by Sherman–Morrison in O(d^2);
// A_k itself is never formed.
#pragma once
#include <vector>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/rng.h"

namespace rmkit::select {

class RidgeArms {
 public:
  RidgeArms(size_t arms, size_t dim, double lambda);
  // u = A_k^{-1} c (c and u hold dim values).
  void solve(size_t k, const double* c, double* u) const;
  // A_k += c c^T, b_k += r c, given u = A_k^{-1} c: A^{-1} -= (u u^T) / (1 + c.u), computed as
  // (u_i u_j) / den for every (i, j) so that A^{-1} stays exactly symmetric.
  void add(size_t k, const double* c, const double* u, double r);
  const double* a_inv(size_t k) const { return a_inv_.data() + k * dim_ * dim_; }
  const double* b(size_t k) const { return b_.data() + k * dim_; }
  size_t dim() const { return dim_; }

  nlohmann::json save() const;  // {"a_inv": [K flat row-major arrays], "b": [K arrays]}
  void load(const nlohmann::json& j);

 private:
  size_t arms_, dim_;
  std::vector<double> a_inv_, b_;
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
  std::vector<double> u_;      // A_k^{-1} c of the last select, K x d (reused by update)
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
