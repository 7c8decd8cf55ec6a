#include "rmkit/select/arm_policy.h"

#include <cmath>
#include <limits>

#include "rmkit/core/error.h"
#include "rmkit/select/bandit/context.h"

namespace rmkit::select {

ArmPolicy::ArmPolicy(const ArmPolicyConfig& cfg, const std::vector<std::string>& arm_names, size_t dim)
    : cfg_(cfg), names_(arm_names), counts_(arm_names.size(), 0) {
  if (names_.empty()) throw ConfigError("no reward models: give --rm NAME=SPEC at least once");
  const std::string& s = cfg_.strategy;
  if (s == "ensemble-mean" || s == "ensemble-agreement") {
    ensemble_ = true;
    return;
  }
  if (s == "sequential") return;
  if (s.rfind("fixed:", 0) == 0) {
    const std::string name = s.substr(6);
    for (size_t k = 0; k < names_.size(); ++k)
      if (names_[k] == name) {
        fixed_ = k;
        return;
      }
    throw ConfigError("--bandit " + s + ": no --rm named '" + name + "'");
  }
  bool known = false;
  for (const auto& b : bandit_names()) known |= b == s;
  if (!known)
    throw ConfigError("--bandit: expected linucb, thompson, exp3, epsilon-greedy, ucb1, random, fixed:NAME, sequential, "
                      "ensemble-mean or ensemble-agreement, got '" + s + "'");
  if (cfg_.project_dim > 0) projection_ = std::make_unique<RandomProjection>(cfg_.project_seed, dim, cfg_.project_dim);
  BanditParams p = cfg_.bandit;
  p.arms = names_.size();
  p.dim = cfg_.project_dim > 0 ? cfg_.project_dim : dim;
  bandit_ = make_bandit(s, p);
  normalizer_ = std::make_unique<RewardNormalizer>(cfg_.normalizer);
}

std::vector<double> ArmPolicy::prepare(const std::vector<double>& raw) const {
  Context c = projection_ ? projection_->apply(raw) : raw;
  if (cfg_.l2_normalize) c = l2_normalize(std::move(c));
  return c;
}

size_t ArmPolicy::choose(const std::vector<double>& raw_context, int64_t iteration) {
  if (ensemble_) throw Error("ArmPolicy::choose: ensembles score with every arm");
  size_t arm = fixed_;
  if (cfg_.strategy == "sequential") arm = static_cast<size_t>(iteration) % names_.size();
  else if (bandit_) arm = bandit_->select(prepare(raw_context));
  ++counts_[arm];
  return arm;
}

std::vector<double> ArmPolicy::last_scores() const { return bandit_ ? bandit_->scores() : std::vector<double>{}; }

double ArmPolicy::update(size_t arm, const std::vector<double>& raw_context, double raw_reward) {
  if (!bandit_) return std::numeric_limits<double>::quiet_NaN();
  const double r = normalizer_->normalize(raw_reward);
  bandit_->update(arm, prepare(raw_context), r);
  return r;
}

void ArmPolicy::set_greedy() {
  if (!bandit_) return;
  nlohmann::json st = bandit_->save();
  const std::string algo = st["algo"].get<std::string>();
  if (algo == "linucb") st["params"]["alpha"] = 0.0;         // c.theta alone
  else if (algo == "thompson") st["params"]["v"] = 0.0;      // the posterior mean, no sample spread
  else if (algo == "epsilon-greedy") st["params"]["epsilon"] = 0.0;
  st["params"]["min_pulls_every"] = 0;                       // no forced exploration either
  bandit_ = restore_bandit(st);
}

nlohmann::json ArmPolicy::save() const {
  nlohmann::json j = {{"strategy", cfg_.strategy}, {"arms", names_}, {"counts", counts_}};
  if (bandit_) {
    j["bandit"] = bandit_->save();
    j["normalizer"] = normalizer_->save();
  }
  return j;
}

void ArmPolicy::load(const nlohmann::json& j) {
  if (!j.is_object() || j.value("strategy", "") != cfg_.strategy)
    throw FormatError("bandit state: strategy '" + (j.is_object() ? j.value("strategy", "") : "") + "' does not match --bandit " +
                      cfg_.strategy);
  if (j["arms"].get<std::vector<std::string>>() != names_)
    throw FormatError("bandit state: its arms differ from the --rm names given (same names, same order)");
  counts_ = j["counts"].get<std::vector<uint64_t>>();
  if (bandit_) {
    bandit_->load(j["bandit"]);
    normalizer_->load(j["normalizer"]);
  }
}

const std::vector<uint64_t>& ArmPolicy::counts() const { return counts_; }

}  // namespace rmkit::select
