// The context-free bandits (contexts are accepted and ignored): Exp3, epsilon-greedy, UCB1 and a
// uniformly random reference. Their random draws come from SplitMix64 (rng.h), seeded by
// params.seed, in the order documented on each class.
#pragma once
#include <vector>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/rng.h"

namespace rmkit::select {

// Exp3 (Auer et al. 2002), rewards in [0, 1]. Weights are kept as logarithms (lw_i = log w_i, all 0
// at the start) so that they never overflow:
//   p_i = (1 - gamma) exp(lw_i - max lw) / sum_k exp(lw_k - max lw) + gamma / K   (= the w form)
// select: one u = uniform(); the arm is the first i with u < p_0 + ... + p_i (the last arm if
// rounding leaves none); scores = p. update(j, r): lw_j += gamma (r / p_j) / K, with p computed from
// the current weights.
class Exp3 : public Bandit {
 public:
  explicit Exp3(const BanditParams& p);
  std::string name() const override { return "exp3"; }
  bool contextual() const override { return false; }
  std::vector<double> probabilities() const;
  const std::vector<double>& log_weights() const { return log_w_; }

 protected:
  size_t choose(const Context& c) override;
  void learn(size_t arm, const Context& c, double reward) override;
  nlohmann::json save_model() const override;
  void load_model(const nlohmann::json& m) override;

 private:
  std::vector<double> log_w_;
  SplitMix64 rng_;
};

// Per-arm sample means (0 before the first reward). select: u = uniform(); if u < epsilon, the arm
// is index(K) (a second draw), else argmax mean (lowest index on ties); scores = the means.
class EpsilonGreedy : public Bandit {
 public:
  explicit EpsilonGreedy(const BanditParams& p);
  std::string name() const override { return "epsilon-greedy"; }
  bool contextual() const override { return false; }

 protected:
  size_t choose(const Context& c) override;
  void learn(size_t arm, const Context& c, double reward) override;
  nlohmann::json save_model() const override;
  void load_model(const nlohmann::json& m) override;

 private:
  std::vector<double> sums_;
  std::vector<uint64_t> n_;
  SplitMix64 rng_;
};

// UCB1 (Auer et al. 2002): every arm once (lowest untried index first; score +inf), then
// argmax mean_k + sqrt(2 ln t / n_k), t = rewards seen so far. Deterministic.
class Ucb1 : public Bandit {
 public:
  explicit Ucb1(const BanditParams& p);
  std::string name() const override { return "ucb1"; }
  bool contextual() const override { return false; }

 protected:
  size_t choose(const Context& c) override;
  void learn(size_t arm, const Context& c, double reward) override;
  nlohmann::json save_model() const override;
  void load_model(const nlohmann::json& m) override;

 private:
  std::vector<double> sums_;
  std::vector<uint64_t> n_;
};

// Uniformly random arm: index(K) per select; scores all 1/K.
class RandomArm : public Bandit {
 public:
  explicit RandomArm(const BanditParams& p);
  std::string name() const override { return "random"; }
  bool contextual() const override { return false; }

 protected:
  size_t choose(const Context& c) override;
  void learn(size_t, const Context&, double) override {}
  nlohmann::json save_model() const override { return {{"rng_state", rng_.state()}}; }
  void load_model(const nlohmann::json& m) override { rng_.set_state(m.at("rng_state").get<uint64_t>()); }

 private:
  SplitMix64 rng_;
};

}  // namespace rmkit::select
