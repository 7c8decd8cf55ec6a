#include "rmkit/select/bandit/replay.h"

#include <memory>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/select/bandit/context.h"

namespace rmkit::select {

nlohmann::json ContextTransform::to_json() const {
  return {{"project_dim", project_dim}, {"project_seed", project_seed}, {"l2_normalize", l2_normalize}};
}

ContextTransform ContextTransform::from_json(const nlohmann::json& j) {
  ContextTransform t;
  t.project_dim = j.at("project_dim").get<size_t>();
  t.project_seed = j.at("project_seed").get<uint64_t>();
  t.l2_normalize = j.at("l2_normalize").get<bool>();
  return t;
}

nlohmann::ordered_json ReplayRound::to_json() const {
  return {{"round", round}, {"arm", arm}, {"scores", scores}, {"reward", reward},
          {"normalized_reward", normalized_reward}};
}

namespace {

std::vector<double> parse_row(const std::string& line, const std::string& where, size_t expected,
                              const std::string& what) {
  if (line.find_first_not_of(" \t") == std::string::npos)
    throw FormatError(where + ": expected a JSON array of " + what + ", got an empty line");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(where + ": invalid JSON (expected an array of " + what + "): " + e.what());
  }
  if (!j.is_array()) throw FormatError(where + ": expected a JSON array of " + what + ", got " + j.type_name());
  if (j.empty()) throw FormatError(where + ": expected a JSON array of " + what + ", got an empty array");
  if (expected && j.size() != expected)
    throw FormatError(where + ": expected " + std::to_string(expected) + " " + what + ", got " +
                      std::to_string(j.size()));
  std::vector<double> v;
  v.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number())
      throw FormatError(where + ": value " + std::to_string(i) + ": expected a number, got " +
                        clip_text(j[i].dump(), 40));
    v.push_back(j[i].get<double>());
  }
  return v;
}

std::string where(const std::string& path, size_t line) { return path + ":" + std::to_string(line); }

}  // namespace

std::vector<std::vector<double>> read_number_rows(const std::string& path, size_t expected, const std::string& what) {
  if (!path_exists(path)) throw IoError(path + ": no such file");
  std::vector<std::vector<double>> rows;
  for_each_line(path, [&](const std::string& line, size_t no) {
    std::string w = what;
    if (!expected && no > 1) w += " (as on line 1)";
    rows.push_back(parse_row(line, where(path, no), expected ? expected : rows.empty() ? 0 : rows[0].size(), w));
    return true;
  });
  if (rows.empty()) throw FormatError(path + ": empty file (expected one JSON array per round)");
  return rows;
}

size_t first_row_size(const std::string& path, const std::string& what) {
  if (!path_exists(path)) throw IoError(path + ": no such file");
  size_t n = 0;
  for_each_line(path, [&](const std::string& line, size_t no) {
    n = parse_row(line, where(path, no), 0, what).size();
    return false;
  });
  if (n == 0) throw FormatError(path + ": empty file (expected one JSON array per round)");
  return n;
}

uint64_t run_replay(Bandit& bandit, RewardNormalizer& norm, const ReplayConfig& cfg,
                    const std::function<void(const ReplayRound&)>& emit) {
  const size_t arms = bandit.arms();
  const std::string arms_what = "rewards (one per arm: " + std::to_string(arms) + " arms)";
  const auto rewards = read_number_rows(cfg.rewards_path, arms, arms_what);
  if (cfg.start_round > rewards.size())
    throw FormatError(cfg.rewards_path + ": " + std::to_string(rewards.size()) +
                      " rounds, but the loaded state has already replayed " + std::to_string(cfg.start_round));
  const uint64_t end = cfg.max_rounds ? std::min<uint64_t>(rewards.size(), cfg.start_round + cfg.max_rounds)
                                      : rewards.size();
  uint64_t done = cfg.start_round;
  auto play = [&](const Context& c, uint64_t t, const std::string& at) {
    ReplayRound r;
    r.round = t;
    try {
      r.arm = bandit.select(c);
      r.reward = rewards[t - 1][r.arm];
      r.normalized_reward = cfg.raw_rewards ? r.reward : norm.normalize(r.reward);
      bandit.update(r.arm, c, r.normalized_reward);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      throw FormatError(at + ": " + e.what());
    }
    r.scores = bandit.scores();
    done = t;
    emit(r);
  };

  if (!bandit.contextual() && cfg.contexts_path.empty()) {
    for (uint64_t t = cfg.start_round + 1; t <= end; ++t) play({}, t, where(cfg.rewards_path, t));
    return done;
  }
  if (cfg.contexts_path.empty()) throw ConfigError(bandit.name() + " needs contexts");
  if (!path_exists(cfg.contexts_path)) throw IoError(cfg.contexts_path + ": no such file");

  std::unique_ptr<RandomProjection> proj;
  size_t dim = 0;
  uint64_t lines = 0;
  for_each_line(cfg.contexts_path, [&](const std::string& line, size_t no) {
    lines = no;
    const std::string at = where(cfg.contexts_path, no);
    if (no > rewards.size())
      throw FormatError(at + ": no reward row for this round (" + cfg.rewards_path + " has " +
                        std::to_string(rewards.size()) + " lines)");
    // every line is checked up to the last round played, skipped ones included
    Context c = parse_row(line, at, dim, dim ? "context values (as on line 1)" : "context values");
    if (dim == 0) {
      dim = c.size();
      const size_t want = cfg.transform.project_dim ? cfg.transform.project_dim : dim;
      if (bandit.contextual() && want != bandit.dim())
        throw FormatError(at + ": context of " + std::to_string(dim) + " values" +
                          (cfg.transform.project_dim ? " projected to " + std::to_string(want) : std::string()) +
                          ", but the bandit expects dimension " + std::to_string(bandit.dim()));
      if (cfg.transform.project_dim) proj = std::make_unique<RandomProjection>(cfg.transform.project_seed, dim, want);
    }
    if (no <= cfg.start_round) return true;
    if (no > end) return false;  // (only with max_rounds: without, no <= rewards.size() = end here)
    if (proj) c = proj->apply(c);
    if (cfg.transform.l2_normalize) c = l2_normalize(std::move(c));
    play(c, no, at);
    return no < end || cfg.max_rounds == 0;  // to the end: read on, so that extra lines are an error
  });
  if (lines < end)
    throw FormatError(cfg.contexts_path + ": " + std::to_string(lines) + " lines, but " + cfg.rewards_path +
                      " has " + std::to_string(rewards.size()) + " (one context per round expected)");
  return done;
}

nlohmann::json replay_state(const Bandit& bandit, const RewardNormalizer& norm, const ReplayConfig& cfg,
                            uint64_t round) {
  return {{"format", "rmkit-bandit-replay"}, {"round", round},
          {"raw_rewards", cfg.raw_rewards},  {"transform", cfg.transform.to_json()},
          {"bandit", bandit.save()},         {"normalizer", norm.save()}};
}

}  // namespace rmkit::select
