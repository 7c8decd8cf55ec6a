#include "rmkit/select/bandit/bandit.h"

#include <cmath>

#include "rmkit/core/error.h"
#include "rmkit/select/bandit/context_free.h"
#include "rmkit/select/bandit/linear.h"

namespace rmkit::select {

nlohmann::json BanditParams::to_json() const {
  return {{"arms", arms},   {"dim", dim},         {"alpha", alpha}, {"lambda", lambda},
          {"v", v},         {"gamma", gamma},     {"epsilon", epsilon}, {"seed", seed},
          {"min_pulls_every", min_pulls_every}};
}

BanditParams BanditParams::from_json(const nlohmann::json& j) {
  try {
    BanditParams p;
    p.arms = j.at("arms").get<size_t>();
    p.dim = j.at("dim").get<size_t>();
    p.alpha = j.at("alpha").get<double>();
    p.lambda = j.at("lambda").get<double>();
    p.v = j.at("v").get<double>();
    p.gamma = j.at("gamma").get<double>();
    p.epsilon = j.at("epsilon").get<double>();
    p.seed = j.at("seed").get<uint64_t>();
    p.min_pulls_every = j.at("min_pulls_every").get<uint64_t>();
    return p;
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("bandit state: params: ") + e.what());
  }
}

namespace {
void check_params(const BanditParams& p) {
  auto bad = [](const std::string& what) { throw ConfigError("bandit: " + what); };
  if (p.arms < 1) bad("need at least one arm");
  if (!std::isfinite(p.alpha) || p.alpha < 0) bad("alpha must be finite and >= 0");
  if (!std::isfinite(p.lambda) || p.lambda <= 0) bad("lambda must be finite and > 0");
  if (!std::isfinite(p.v) || p.v < 0) bad("v must be finite and >= 0");
  if (!(p.gamma > 0 && p.gamma <= 1)) bad("gamma must be in (0, 1]");
  if (!(p.epsilon >= 0 && p.epsilon <= 1)) bad("epsilon must be in [0, 1]");
}
}  // namespace

size_t argmax_lowest(const std::vector<double>& v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best] || (std::isnan(v[best]) && !std::isnan(v[i]))) best = i;
  return best;
}

Bandit::Bandit(const BanditParams& p)
    : params_(p), counts_(p.arms, 0), last_pull_(p.arms, -1) {
  check_params(p);
}

void Bandit::check_context(const Context& c, const char* what) const {
  if (!contextual()) return;
  if (c.size() != params_.dim)
    throw ShapeError(name() + " " + what + ": context has " + std::to_string(c.size()) + " values, expected " +
                     std::to_string(params_.dim));
  // one NaN or inf learned would poison A_k^{-1} (and every later score of that arm) for good
  for (size_t i = 0; i < c.size(); ++i)
    if (!std::isfinite(c[i]))
      throw NumericError(name() + " " + what + ": context value " + std::to_string(i) + " is not finite");
}

size_t Bandit::select(const Context& context) {
  check_context(context, "select");
  size_t arm = choose(context);
  forced_ = false;
  if (params_.min_pulls_every > 0) {
    const auto t = static_cast<int64_t>(round_), n = static_cast<int64_t>(params_.min_pulls_every);
    size_t oldest = 0;
    for (size_t k = 1; k < last_pull_.size(); ++k)
      if (last_pull_[k] < last_pull_[oldest]) oldest = k;
    if (t - last_pull_[oldest] > n && oldest != arm) {
      arm = oldest;
      forced_ = true;
    }
  }
  ++counts_[arm];
  last_pull_[arm] = static_cast<int64_t>(round_);
  ++round_;
  return arm;
}

void Bandit::update(size_t arm, const Context& context, double reward) {
  if (arm >= params_.arms)
    throw ShapeError(name() + " update: arm " + std::to_string(arm) + " out of range (" +
                     std::to_string(params_.arms) + " arms)");
  check_context(context, "update");
  if (!std::isfinite(reward)) throw NumericError(name() + " update: reward is not finite");
  learn(arm, context, reward);
}

nlohmann::json Bandit::save() const {
  return {{"algo", name()},
          {"params", params_.to_json()},
          {"guard", {{"round", round_}, {"counts", counts_}, {"last_pull", last_pull_}}},
          {"model", save_model()}};
}

void Bandit::load(const nlohmann::json& state) {
  try {
    const std::string algo = state.at("algo").get<std::string>();
    if (algo != name()) throw FormatError("bandit state: saved by '" + algo + "', not '" + name() + "'");
    BanditParams p = BanditParams::from_json(state.at("params"));
    if (p.arms != params_.arms || (contextual() && p.dim != params_.dim))
      throw FormatError("bandit state: " + std::to_string(p.arms) + " arms, dim " + std::to_string(p.dim) +
                        "; expected " + std::to_string(params_.arms) + " arms, dim " + std::to_string(params_.dim));
    check_params(p);
    const auto& g = state.at("guard");
    auto counts = g.at("counts").get<std::vector<uint64_t>>();
    auto last = g.at("last_pull").get<std::vector<int64_t>>();
    if (counts.size() != p.arms || last.size() != p.arms)
      throw FormatError("bandit state: guard arrays do not have one value per arm");
    const auto round = g.at("round").get<uint64_t>();
    const BanditParams old = params_;
    params_ = p;  // load_model builds its model from the saved params
    try {
      load_model(state.at("model"));
    } catch (...) {
      params_ = old;
      throw;
    }
    counts_ = std::move(counts);
    last_pull_ = std::move(last);
    round_ = round;
    forced_ = false;
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("bandit state: ") + e.what());
  }
}

const std::vector<std::string>& bandit_names() {
  static const std::vector<std::string> names = {"linucb", "thompson", "exp3", "epsilon-greedy", "ucb1", "random"};
  return names;
}

std::unique_ptr<Bandit> make_bandit(const std::string& name, const BanditParams& p) {
  if (name == "linucb") return std::make_unique<LinUcb>(p);
  if (name == "thompson") return std::make_unique<LinearThompson>(p);
  if (name == "exp3") return std::make_unique<Exp3>(p);
  if (name == "epsilon-greedy") return std::make_unique<EpsilonGreedy>(p);
  if (name == "ucb1") return std::make_unique<Ucb1>(p);
  if (name == "random") return std::make_unique<RandomArm>(p);
  throw ConfigError("unknown bandit '" + name + "' (linucb, thompson, exp3, epsilon-greedy, ucb1, random)");
}

std::unique_ptr<Bandit> restore_bandit(const nlohmann::json& state) {
  std::string algo;
  BanditParams p;
  try {
    algo = state.at("algo").get<std::string>();
    p = BanditParams::from_json(state.at("params"));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(std::string("bandit state: ") + e.what());
  }
  std::unique_ptr<Bandit> b;
  try {
    b = make_bandit(algo, p);
  } catch (const ConfigError& e) {
    throw FormatError(std::string("bandit state: ") + e.what());
  }
  b->load(state);
  return b;
}

}  // namespace rmkit::select
