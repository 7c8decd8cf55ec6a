#include "rmkit/select/bandit/linear.h"

#include <algorithm>
#include <cmath>

#include "rmkit/core/error.h"

namespace rmkit::select {

RidgeArms::RidgeArms(size_t arms, size_t dim, double lambda)
    : arms_(arms), dim_(dim), a_inv_(arms * dim * dim, 0.0), b_(arms * dim, 0.0) {
  if (dim == 0) throw ConfigError("bandit: contextual bandits need a context dimension >= 1");
  for (size_t k = 0; k < arms; ++k)
    for (size_t i = 0; i < dim; ++i) a_inv_[k * dim * dim + i * dim + i] = 1.0 / lambda;
}

void RidgeArms::solve(size_t k, const double* c, double* u) const {
  const double* a = a_inv(k);
  for (size_t i = 0; i < dim_; ++i) u[i] = dot(a + i * dim_, c, dim_);
}

void RidgeArms::add(size_t k, const double* c, const double* u, double r) {
  const double inv_den = 1.0 / (1.0 + dot(c, u, dim_));
  double* a = a_inv_.data() + k * dim_ * dim_;
  for (size_t i = 0; i < dim_; ++i) {
    const double ui = u[i];
    double* row = a + i * dim_;
    for (size_t j = 0; j < dim_; ++j) row[j] -= (ui * u[j]) * inv_den;
  }
  double* bk = b_.data() + k * dim_;
  for (size_t i = 0; i < dim_; ++i) bk[i] += r * c[i];
}

nlohmann::json RidgeArms::save() const {
  nlohmann::json a = nlohmann::json::array(), b = nlohmann::json::array();
  for (size_t k = 0; k < arms_; ++k) {
    a.push_back(std::vector<double>(a_inv(k), a_inv(k) + dim_ * dim_));
    b.push_back(std::vector<double>(this->b(k), this->b(k) + dim_));
  }
  return {{"a_inv", std::move(a)}, {"b", std::move(b)}};
}

void RidgeArms::load(const nlohmann::json& j) {
  const auto& a = j.at("a_inv");
  const auto& b = j.at("b");
  if (!a.is_array() || !b.is_array() || a.size() != arms_ || b.size() != arms_)
    throw FormatError("bandit state: a_inv and b need one entry per arm");
  std::vector<double> na, nb;
  na.reserve(a_inv_.size());
  nb.reserve(b_.size());
  for (size_t k = 0; k < arms_; ++k) {
    auto ak = a[k].get<std::vector<double>>();
    auto bk = b[k].get<std::vector<double>>();
    if (ak.size() != dim_ * dim_ || bk.size() != dim_)
      throw FormatError("bandit state: arm " + std::to_string(k) + ": expected a " + std::to_string(dim_) + "x" +
                        std::to_string(dim_) + " a_inv and " + std::to_string(dim_) + " b values");
    na.insert(na.end(), ak.begin(), ak.end());
    nb.insert(nb.end(), bk.begin(), bk.end());
  }
  a_inv_ = std::move(na);
  b_ = std::move(nb);
}

LinUcb::LinUcb(const BanditParams& p)
    : Bandit(p), ridge_(p.arms, p.dim, p.lambda), exploit_(p.arms), bonus_(p.arms), u_(p.arms * p.dim) {}

size_t LinUcb::choose(const Context& c) {
  const size_t d = params_.dim;
  scores_.assign(params_.arms, 0.0);
  for (size_t k = 0; k < params_.arms; ++k) {
    double* u = u_.data() + k * d;
    ridge_.solve(k, c.data(), u);
    exploit_[k] = dot(u, ridge_.b(k), d);  // c.theta = c.A^{-1}b = (A^{-1}c).b, A^{-1} symmetric
    bonus_[k] = params_.alpha * std::sqrt(std::max(0.0, dot(c.data(), u, d)));
    scores_[k] = exploit_[k] + bonus_[k];
  }
  last_context_ = c;
  u_valid_ = true;
  return argmax_lowest(scores_);
}

void LinUcb::learn(size_t arm, const Context& c, double reward) {
  const size_t d = params_.dim;
  double* u = u_.data() + arm * d;
  if (!u_valid_ || c != last_context_) ridge_.solve(arm, c.data(), u);
  ridge_.add(arm, c.data(), u, reward);
  u_valid_ = false;
}

void LinUcb::load_model(const nlohmann::json& m) {
  RidgeArms r(params_.arms, params_.dim, params_.lambda);
  r.load(m);
  ridge_ = std::move(r);
  u_valid_ = false;
}

LinearThompson::LinearThompson(const BanditParams& p)
    : Bandit(p), ridge_(p.arms, p.dim, p.lambda), rng_(p.seed), u_(p.dim) {}

size_t LinearThompson::choose(const Context& c) {
  const size_t d = params_.dim;
  scores_.assign(params_.arms, 0.0);
  for (size_t k = 0; k < params_.arms; ++k) {
    ridge_.solve(k, c.data(), u_.data());
    const double mean = dot(u_.data(), ridge_.b(k), d);
    const double sd = params_.v * std::sqrt(std::max(0.0, dot(c.data(), u_.data(), d)));
    scores_[k] = mean + sd * rng_.normal();
  }
  return argmax_lowest(scores_);
}

void LinearThompson::learn(size_t arm, const Context& c, double reward) {
  ridge_.solve(arm, c.data(), u_.data());
  ridge_.add(arm, c.data(), u_.data(), reward);
}

nlohmann::json LinearThompson::save_model() const {
  nlohmann::json j = ridge_.save();
  j["rng_state"] = rng_.state();
  return j;
}

void LinearThompson::load_model(const nlohmann::json& m) {
  RidgeArms r(params_.arms, params_.dim, params_.lambda);
  r.load(m);
  rng_.set_state(m.at("rng_state").get<uint64_t>());
  ridge_ = std::move(r);
}

}  // namespace rmkit::select
