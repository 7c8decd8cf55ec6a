// Helpers of the bandit tests: temp dirs, synthetic linear contextual streams written as the JSONL
// files `rmkit bandit replay` reads, a library replay, and running a command for its output.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/core/file_io.h"
#include "rmkit/select/bandit/replay.h"
#include "test_util.h"

namespace rmkit::bandit_test {

using select::Context;

inline std::string temp_dir(const std::string& tag) { return rmkit::testing::temp_dir("bandit_" + tag); }

// Linear contextual bandit: theta_k ~ U[-1,1]^d, contexts N(0, I) scaled to unit length, the mean
// reward of arm k is theta_k . c, observed with N(0, noise^2) noise.
struct Stream {
  std::vector<Context> contexts;
  std::vector<std::vector<double>> rewards;  // observed (noisy)
  std::vector<std::vector<double>> means;    // expected
};

inline Stream linear_stream(size_t rounds, size_t arms, size_t dim, uint64_t seed, double noise) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> unif(-1.0, 1.0);
  std::normal_distribution<double> gauss(0.0, 1.0);
  std::vector<std::vector<double>> theta(arms, std::vector<double>(dim));
  for (auto& t : theta)
    for (double& x : t) x = unif(gen);
  Stream s;
  for (size_t r = 0; r < rounds; ++r) {
    Context c(dim);
    for (double& x : c) x = gauss(gen);
    c = select::l2_normalize(c);
    std::vector<double> mean(arms), obs(arms);
    for (size_t k = 0; k < arms; ++k) {
      for (size_t i = 0; i < dim; ++i) mean[k] += theta[k][i] * c[i];
      obs[k] = mean[k] + noise * gauss(gen);
    }
    s.contexts.push_back(std::move(c));
    s.means.push_back(std::move(mean));
    s.rewards.push_back(std::move(obs));
  }
  return s;
}

inline std::string jsonl(const std::vector<std::vector<double>>& rows) {
  std::string out;
  for (const auto& r : rows) out += nlohmann::json(r).dump() + "\n";
  return out;
}

struct StreamFiles {
  std::string contexts, rewards;
};

inline StreamFiles write_stream(const Stream& s, const std::string& dir) {
  StreamFiles f{join_path(dir, "contexts.jsonl"), join_path(dir, "rewards.jsonl")};
  write_file_atomic(f.contexts, jsonl(s.contexts));
  write_file_atomic(f.rewards, jsonl(s.rewards));
  return f;
}

inline std::vector<select::ReplayRound> replay_lib(select::Bandit& b, select::RewardNormalizer& n,
                                                   const select::ReplayConfig& cfg) {
  std::vector<select::ReplayRound> out;
  select::run_replay(b, n, cfg, [&](const select::ReplayRound& r) { out.push_back(r); });
  return out;
}

// stdout of `sh -c cmd` (stderr to the test's stderr); *status = the exit status.
inline std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = ::pclose(p);
  return out;
}

}  // namespace rmkit::bandit_test
