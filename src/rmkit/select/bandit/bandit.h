// The bandit layer of LASeR (issue #15): choosing one of K arms (e.g. reward models) per round from
// an optional context vector, learning from the one revealed reward. Torch-free.
//
// Every algorithm implements Bandit: select(context) -> arm, update(arm, context, reward), the
// per-arm scores of the last select (UCB value, posterior sample, probability or mean — whatever the
// algorithm maximised or sampled from) and JSON save/load of its full state, RNG included, so that a
// reloaded bandit makes the same subsequent choices. make_bandit() builds one from a name + params.
//
// Collapse guard (all algorithms): with min_pulls_every = N > 0, when at round t (0-based, counting
// select calls) some arm was last pulled before round t - N (never pulled counts as round -1), the
// arm pulled least recently (lowest index on ties) is chosen instead of the algorithm's choice. The
// algorithm's own choice is still computed (scores filled, random draws consumed) first.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/select/bandit/context.h"

namespace rmkit::select {

struct BanditParams {
  size_t arms = 0;              // K >= 1
  size_t dim = 0;               // context dimension d (linucb, thompson); context-free ones ignore contexts
  double alpha = 0.1;           // linucb: exploration weight
  double lambda = 1.0;          // linucb, thompson: ridge prior A_k = lambda I
  double v = 1.0;               // thompson: posterior scale
  double gamma = 0.1;           // exp3: exploration mix, in (0, 1]
  double epsilon = 0.1;         // epsilon-greedy: exploration probability, in [0, 1]
  uint64_t seed = 0;            // thompson, exp3, epsilon-greedy, random
  uint64_t min_pulls_every = 0; // collapse guard (0 = off)

  nlohmann::json to_json() const;
  static BanditParams from_json(const nlohmann::json& j);  // FormatError on a malformed object
};

class Bandit {
 public:
  explicit Bandit(const BanditParams& p);  // ConfigError on bad params
  virtual ~Bandit() = default;
  Bandit(const Bandit&) = delete;
  Bandit& operator=(const Bandit&) = delete;

  virtual std::string name() const = 0;
  virtual bool contextual() const = 0;  // true: select/update need a context of dim() values

  // The arm to pull. Contextual bandits need context.size() == dim() (ShapeError otherwise).
  size_t select(const Context& context);
  // Learns from the reward of `arm` (ShapeError on a bad arm or context, NumericError on a
  // non-finite reward or, for exp3, one outside [0, 1]).
  void update(size_t arm, const Context& context, double reward);

  // Per-arm scores computed by the last select (empty before the first). UCB1 scores of untried
  // arms are +infinity.
  const std::vector<double>& scores() const { return scores_; }
  // Pulls per arm (select calls that chose it) and whether the last select was forced by the guard.
  const std::vector<uint64_t>& counts() const { return counts_; }
  bool last_forced() const { return forced_; }
  uint64_t rounds() const { return round_; }
  size_t arms() const { return params_.arms; }
  size_t dim() const { return params_.dim; }
  const BanditParams& params() const { return params_; }

  // {"algo", "params", "guard": {"round", "counts", "last_pull"}, "model": {...}}
  nlohmann::json save() const;
  // Restores a state saved by the same algorithm with the same arms and dim (FormatError otherwise);
  // the saved params replace this bandit's.
  void load(const nlohmann::json& state);

 protected:
  virtual size_t choose(const Context& context) = 0;  // fills scores_
  virtual void learn(size_t arm, const Context& context, double reward) = 0;
  virtual nlohmann::json save_model() const = 0;
  virtual void load_model(const nlohmann::json& model) = 0;

  BanditParams params_;
  std::vector<double> scores_;

 private:
  void check_context(const Context& c, const char* what) const;

  std::vector<uint64_t> counts_;
  std::vector<int64_t> last_pull_;
  uint64_t round_ = 0;
  bool forced_ = false;
};

// linucb, thompson, exp3, epsilon-greedy, ucb1, random.
const std::vector<std::string>& bandit_names();
// ConfigError on an unknown name or bad params.
std::unique_ptr<Bandit> make_bandit(const std::string& name, const BanditParams& p);
// A bandit rebuilt from save()'s output (algo and params from the state).
std::unique_ptr<Bandit> restore_bandit(const nlohmann::json& state);

// argmax with ties to the lowest index (NaN never wins).
size_t argmax_lowest(const std::vector<double>& v);

}  // namespace rmkit::select
