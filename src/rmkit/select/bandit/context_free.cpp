#include "rmkit/select/bandit/context_free.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "rmkit/core/error.h"

namespace rmkit::select {

namespace {
// sums / counts of a sample-mean model, checked against the arm count
void load_means(const nlohmann::json& m, size_t arms, std::vector<double>& sums, std::vector<uint64_t>& n) {
  auto s = m.at("sums").get<std::vector<double>>();
  auto c = m.at("n").get<std::vector<uint64_t>>();
  if (s.size() != arms || c.size() != arms) throw FormatError("bandit state: sums and n need one value per arm");
  sums = std::move(s);
  n = std::move(c);
}
}  // namespace

Exp3::Exp3(const BanditParams& p) : Bandit(p), log_w_(p.arms, 0.0), rng_(p.seed) {}

std::vector<double> Exp3::probabilities() const {
  const size_t k = params_.arms;
  const double mx = *std::max_element(log_w_.begin(), log_w_.end());
  std::vector<double> p(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += (p[i] = std::exp(log_w_[i] - mx));
  for (size_t i = 0; i < k; ++i) p[i] = (1.0 - params_.gamma) * p[i] / sum + params_.gamma / static_cast<double>(k);
  return p;
}

size_t Exp3::choose(const Context&) {
  scores_ = probabilities();
  const double u = rng_.uniform();
  double cum = 0;
  for (size_t i = 0; i < scores_.size(); ++i) {
    cum += scores_[i];
    if (u < cum) return i;
  }
  return scores_.size() - 1;
}

void Exp3::learn(size_t arm, const Context&, double reward) {
  if (reward < 0 || reward > 1)
    throw NumericError("exp3: reward " + std::to_string(reward) + " outside [0, 1] (normalise the rewards)");
  const double p = probabilities()[arm];
  log_w_[arm] += params_.gamma * (reward / p) / static_cast<double>(params_.arms);
}

nlohmann::json Exp3::save_model() const { return {{"log_weights", log_w_}, {"rng_state", rng_.state()}}; }

void Exp3::load_model(const nlohmann::json& m) {
  auto lw = m.at("log_weights").get<std::vector<double>>();
  if (lw.size() != params_.arms) throw FormatError("bandit state: log_weights needs one value per arm");
  rng_.set_state(m.at("rng_state").get<uint64_t>());
  log_w_ = std::move(lw);
}

EpsilonGreedy::EpsilonGreedy(const BanditParams& p) : Bandit(p), sums_(p.arms, 0.0), n_(p.arms, 0), rng_(p.seed) {}

size_t EpsilonGreedy::choose(const Context&) {
  scores_.resize(params_.arms);
  for (size_t k = 0; k < params_.arms; ++k) scores_[k] = n_[k] ? sums_[k] / static_cast<double>(n_[k]) : 0.0;
  if (rng_.uniform() < params_.epsilon) return rng_.index(params_.arms);
  return argmax_lowest(scores_);
}

void EpsilonGreedy::learn(size_t arm, const Context&, double reward) {
  sums_[arm] += reward;
  ++n_[arm];
}

nlohmann::json EpsilonGreedy::save_model() const { return {{"sums", sums_}, {"n", n_}, {"rng_state", rng_.state()}}; }

void EpsilonGreedy::load_model(const nlohmann::json& m) {
  const auto st = m.at("rng_state").get<uint64_t>();
  load_means(m, params_.arms, sums_, n_);
  rng_.set_state(st);
}

Ucb1::Ucb1(const BanditParams& p) : Bandit(p), sums_(p.arms, 0.0), n_(p.arms, 0) {}

size_t Ucb1::choose(const Context&) {
  uint64_t t = 0;
  for (uint64_t c : n_) t += c;
  scores_.resize(params_.arms);
  for (size_t k = 0; k < params_.arms; ++k) {
    if (n_[k] == 0) {
      scores_[k] = std::numeric_limits<double>::infinity();
      continue;
    }
    const double n = static_cast<double>(n_[k]);
    scores_[k] = sums_[k] / n + std::sqrt(2.0 * std::log(static_cast<double>(t)) / n);
  }
  return argmax_lowest(scores_);
}

void Ucb1::learn(size_t arm, const Context&, double reward) {
  sums_[arm] += reward;
  ++n_[arm];
}

nlohmann::json Ucb1::save_model() const { return {{"sums", sums_}, {"n", n_}}; }
void Ucb1::load_model(const nlohmann::json& m) { load_means(m, params_.arms, sums_, n_); }

RandomArm::RandomArm(const BanditParams& p) : Bandit(p), rng_(p.seed) {}

size_t RandomArm::choose(const Context&) {
  scores_.assign(params_.arms, 1.0 / static_cast<double>(params_.arms));
  return rng_.index(params_.arms);
}

}  // namespace rmkit::select
