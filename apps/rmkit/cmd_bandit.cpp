// rmkit bandit replay: a recorded stream of contexts and per-arm rewards through one of the LASeR
// bandits (issue #15), one JSON line per round; --save-state / --load-state stop and resume it.
// Torch-free (rmkit_bandit) apart from linking into the one binary.
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "bandit_options.h"
#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/select/bandit/replay.h"

namespace rmkit::cli {
namespace {

using select::Bandit;
using select::ReplayConfig;
using select::RewardNormalizer;

std::vector<Command>& bandit_verbs() {
  static std::vector<Command> v;
  return v;
}

nlohmann::json read_state(const std::string& path) {
  if (!path_exists(path)) throw IoError(path + ": no such file");
  try {
    nlohmann::json j = nlohmann::json::parse(read_file(path));
    if (!j.is_object() || j.value("format", "") != "rmkit-bandit-replay")
      throw FormatError(path + ": not an rmkit bandit replay state (no \"format\": \"rmkit-bandit-replay\")");
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": invalid JSON: " + e.what());
  }
}

int run_replay(const Options& o) {
  const std::string algo = o.str("algo");
  ReplayConfig cfg;
  cfg.contexts_path = o.has("contexts") ? o.str("contexts") : "";
  cfg.rewards_path = o.str("rewards");
  cfg.max_rounds = static_cast<uint64_t>(o.integer("rounds"));

  std::unique_ptr<Bandit> bandit;
  RewardNormalizer norm;
  if (o.has("load-state")) {
    // the algorithm, its parameters, the normaliser and the context options all come from the state
    const std::string path = o.str("load-state");
    const nlohmann::json st = read_state(path);
    try {
      bandit = select::restore_bandit(st.at("bandit"));
      norm.load(st.at("normalizer"));
      cfg.start_round = st.at("round").get<uint64_t>();
      cfg.raw_rewards = st.at("raw_rewards").get<bool>();
      cfg.transform = select::ContextTransform::from_json(st.at("transform"));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(path + ": " + e.what());
    } catch (const FormatError& e) {
      throw FormatError(path + ": " + e.what());
    }
    if (bandit->name() != algo)
      throw UsageError("--algo " + algo + ", but " + path + " holds a " + bandit->name() + " state");
    if (o.flag("raw-rewards") != cfg.raw_rewards)
      throw UsageError(std::string("--raw-rewards ") + (o.flag("raw-rewards") ? "given" : "not given") + ", but " +
                       path + " was saved " + (cfg.raw_rewards ? "with" : "without") + " it");
  } else {
    cfg.raw_rewards = o.flag("raw-rewards");
    cfg.transform.project_dim = static_cast<size_t>(o.integer("project-dim"));
    cfg.transform.project_seed = static_cast<uint64_t>(o.integer("project-seed"));
    cfg.transform.l2_normalize = o.flag("l2-normalize");
    norm = RewardNormalizer(normalizer_params_from(o));

    select::BanditParams p = bandit_params_from(o);
    p.arms = select::first_row_size(cfg.rewards_path, "rewards (one per arm)");
    const bool contextual = algo == "linucb" || algo == "thompson";
    if (contextual && cfg.contexts_path.empty()) throw UsageError("--algo " + algo + " needs --contexts");
    if (contextual)
      p.dim = cfg.transform.project_dim ? cfg.transform.project_dim
                                        : select::first_row_size(cfg.contexts_path, "context values");
    bandit = select::make_bandit(algo, p);
  }

  const uint64_t last = select::run_replay(*bandit, norm, cfg, [](const select::ReplayRound& r) {
    std::cout << r.to_json().dump() << "\n";
  });
  std::cout.flush();
  if (o.has("save-state"))
    write_file_atomic(o.str("save-state"), select::replay_state(*bandit, norm, cfg, last).dump() + "\n");
  return 0;
}

const std::vector<OptionSpec> kReplayOptions = {
    {"algo", OptKind::String, "", "bandit: linucb, thompson, exp3, epsilon-greedy, ucb1 or random", true, false,
     "linucb|thompson|exp3|epsilon-greedy|ucb1|random"},
    {"contexts", OptKind::String, "", "JSONL (.gz ok): line t = round t's context, a JSON array of numbers (linucb, thompson; ignored by the others)"},
    {"rewards", OptKind::String, "", "JSONL (.gz ok): line t = the raw reward of every arm at round t, a JSON array of K numbers", true},
    {"raw-rewards", OptKind::Flag, "", "give the bandit the raw rewards (default: through the percentile normaliser)"},
    {"rounds", OptKind::Int, "0", "stop after this many rounds (0 = at the end of the stream)", false, false, "[0,)"},
    {"alpha", OptKind::Float, "0.1", "linucb: exploration weight of sqrt(c^T A^-1 c)", false, false, "[0,)"},
    {"lambda", OptKind::Float, "1", "linucb, thompson: ridge prior A = lambda I", false, false, "(0,)"},
    {"v", OptKind::Float, "1", "thompson: posterior scale (theta~ ~ N(theta, v^2 A^-1))", false, false, "[0,)"},
    {"gamma", OptKind::Float, "0.1", "exp3: exploration mix (rewards must lie in [0,1])", false, false, "(0,1]"},
    {"epsilon", OptKind::Float, "0.1", "epsilon-greedy: exploration probability", false, false, "[0,1]"},
    {"seed", OptKind::Int, "0", "thompson, exp3, epsilon-greedy, random: SplitMix64 seed", false, false, "[0,)"},
    {"norm-low", OptKind::Float, "20", "normaliser: low percentile of the reward history (maps to 0)", false, false, "[0,100]"},
    {"norm-high", OptKind::Float, "80", "normaliser: high percentile (maps to 1)", false, false, "[0,100]"},
    {"norm-min-history", OptKind::Int, "20", "normaliser: history length (counting the new reward) before mapping", false, false, "[1,)"},
    {"norm-fallback", OptKind::Float, "0.5", "normaliser: value before min-history and when the percentiles are equal"},
    {"min-pulls-every", OptKind::Int, "0", "collapse guard: pull an arm not pulled in the last N rounds (0 = off)", false, false, "[0,)"},
    {"project-dim", OptKind::Int, "0", "random projection of the contexts to this dimension (0 = off)", false, false, "[0,)"},
    {"project-seed", OptKind::Int, "0", "seed of the random projection", false, false, "[0,)"},
    {"l2-normalize", OptKind::Flag, "", "L2-normalise the contexts (after the projection)"},
    {"save-state", OptKind::String, "", "write the bandit, normaliser and round count here at the end"},
    {"load-state", OptKind::String, "", "resume from a saved state: its algorithm, parameters and options apply, and replay continues at the next line"},
};

CommandRegistrar reg({"bandit", "LASeR bandits over reward models: replay", {}, {}, [](const Options&) { return 2; }, false,
                      &bandit_verbs()});

struct VerbRegistrar {
  explicit VerbRegistrar(Command c) { bandit_verbs().push_back(std::move(c)); }
};
VerbRegistrar replay_verb({"replay",
                           "replay a recorded stream (contexts + per-arm rewards) through a bandit; one JSON line per round",
                           kReplayOptions,
                           {},
                           run_replay});

}  // namespace
}  // namespace rmkit::cli
