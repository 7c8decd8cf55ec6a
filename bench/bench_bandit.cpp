// LinUCB decision + update cost (issue #15's target: <= 1 ms per round at d = 4096, K = 8).
//   bench_bandit [--dim 4096] [--arms 8] [--project-dim 256] [--rounds 20] [--seed 1] [--dense-switch 0|1]
// Times select(c) + update(arm, c, r) on random unit contexts with the full dimension, then with the
// mitigation — a seeded random projection to --project-dim dimensions (projection time included and
// also shown alone) — and linear Thompson sampling at the projected dimension. Each figure is the
// median over --rounds rounds after 3 warm-up rounds, by wall clock and by the thread's CPU time (the
// machine may be shared). At full d (>= RidgeArms::kLowRankMinDim) the arms keep their contexts and
// solve by Woodbury in O(t d + t^2) for t pulls per arm instead of holding K dense d x d inverses
// (1 GiB at d = 4096, K = 8, ~65 ms a round, memory-bound): the full-d figure is given after 0, 400,
// 800 and 2000 untimed rounds. --dense-switch 1 also fills one arm up to RidgeArms::dense_rows (about
// 0.62 d pulls, where the low-rank form stops paying) and times its switch to a dense A^{-1} and one
// select + update of that dense arm (a minute of set-up at d = 4096). Last line: one JSON object with
// every figure.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/select/bandit/bandit.h"
#include "rmkit/select/bandit/context.h"
#include "rmkit/select/bandit/linear.h"

namespace {

using rmkit::select::Context;

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Timing {
  double wall_ms, cpu_ms;
};

Context random_unit(std::mt19937_64& gen, size_t d) {
  std::normal_distribution<double> g(0.0, 1.0);
  Context c(d);
  for (double& x : c) x = g(gen);
  return rmkit::select::l2_normalize(c);
}

// Median time of `fn()` over `rounds` calls after 3 warm-up calls.
template <class F>
Timing time_rounds(size_t rounds, F&& fn) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> wall, cpu;
  for (size_t i = 0; i < rounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_s();
    fn();
    cpu.push_back(1e3 * (thread_cpu_s() - c0));
    wall.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return {median(wall), median(cpu)};
}

long arg(int argc, char** argv, const std::string& name, long def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return std::atol(argv[i + 1]);
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t d = static_cast<size_t>(arg(argc, argv, "dim", 4096));
  const size_t k = static_cast<size_t>(arg(argc, argv, "arms", 8));
  const size_t dp = static_cast<size_t>(arg(argc, argv, "project-dim", 256));
  const size_t rounds = static_cast<size_t>(arg(argc, argv, "rounds", 20));
  const uint64_t seed = static_cast<uint64_t>(arg(argc, argv, "seed", 1));
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> unif(0.0, 1.0);

  rmkit::select::BanditParams p;
  p.arms = k;
  p.dim = d;
  nlohmann::json out = {{"dim", d}, {"arms", k}, {"project_dim", dp}, {"rounds", rounds}};

  // Full dimension: at d >= RidgeArms::kLowRankMinDim the arms keep their context history (Woodbury,
  // linear.h), so the cost grows with the pulls per arm t: timed after `history` untimed rounds each.
  const std::vector<long> histories = {0, 400, 800, 2000};
  out["full_by_history"] = nlohmann::json::array();
  for (const long history : histories) {
    auto lin = rmkit::select::make_bandit("linucb", p);
    for (long h = 0; h < history; ++h) {
      const Context c = random_unit(gen, d);
      lin->update(lin->select(c), c, unif(gen));
    }
    std::vector<double> s_wall, u_wall;
    const Timing full = time_rounds(rounds, [&] {
      const Context c = random_unit(gen, d);
      auto t0 = std::chrono::steady_clock::now();
      const size_t arm = lin->select(c);
      auto t1 = std::chrono::steady_clock::now();
      lin->update(arm, c, unif(gen));
      s_wall.push_back(1e3 * std::chrono::duration<double>(t1 - t0).count());
      u_wall.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
    });
    const double t_arm = static_cast<double>(history + static_cast<long>(rounds) / 2) / static_cast<double>(k);
    std::printf("linucb d=%zu K=%zu after %ld rounds (~%.0f pulls per arm): decision+update %.3f ms wall, %.3f ms CPU "
                "(select %.3f, update %.3f); %s the 1 ms target\n",
                d, k, history, t_arm, full.wall_ms, full.cpu_ms, median(s_wall), median(u_wall),
                full.wall_ms <= 1.0 ? "within" : "above");
    out["full_by_history"].push_back({{"history_rounds", history}, {"pulls_per_arm", t_arm}, {"wall_ms", full.wall_ms},
                                      {"cpu_ms", full.cpu_ms}, {"select_ms", median(s_wall)}, {"update_ms", median(u_wall)}});
    if (history == 0) out["full"] = out["full_by_history"].back();
  }

  {
    const rmkit::select::RandomProjection proj(seed, d, dp);
    p.dim = dp;
    auto lin = rmkit::select::make_bandit("linucb", p);
    p.v = 0.1;
    auto ts = rmkit::select::make_bandit("thompson", p);
    std::vector<Context> raw;
    for (int i = 0; i < 8; ++i) raw.push_back(random_unit(gen, d));
    size_t i = 0;
    const Timing projection = time_rounds(rounds, [&] { (void)proj.apply(raw[i++ % raw.size()]); });
    const Timing lin_round = time_rounds(rounds, [&] {
      const Context c = rmkit::select::l2_normalize(proj.apply(raw[i++ % raw.size()]));
      const size_t arm = lin->select(c);
      lin->update(arm, c, unif(gen));
    });
    const Timing ts_round = time_rounds(rounds, [&] {
      const Context c = rmkit::select::l2_normalize(proj.apply(raw[i++ % raw.size()]));
      const size_t arm = ts->select(c);
      ts->update(arm, c, unif(gen));
    });
    std::printf("linucb after projection %zu -> %zu: %.3f ms wall, %.3f ms CPU per decision+update "
                "(projection alone %.3f ms); thompson %.3f ms wall\n",
                d, dp, lin_round.wall_ms, lin_round.cpu_ms, projection.wall_ms, ts_round.wall_ms);
    out["projected"] = {{"linucb_wall_ms", lin_round.wall_ms}, {"linucb_cpu_ms", lin_round.cpu_ms},
                        {"projection_ms", projection.wall_ms}, {"thompson_wall_ms", ts_round.wall_ms}};
    const double full_ms = out["full_by_history"].back()["wall_ms"].get<double>();
    std::printf("speed-up of the projection over full d after 2000 rounds: %.1fx; within the 1 ms target: %s\n", full_ms / lin_round.wall_ms,
                lin_round.wall_ms <= 1.0 ? "yes" : "no");
    out["projected"]["speedup"] = full_ms / lin_round.wall_ms;
  }
  if (arg(argc, argv, "dense-switch", 0)) {
    rmkit::select::RidgeArms arm(1, d, 1.0);
    const size_t rows = arm.dense_rows();
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i + 1 < rows; ++i) {
      const Context c = random_unit(gen, d);
      arm.add(0, c.data(), nullptr, unif(gen));
    }
    const double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Context c = random_unit(gen, d);
    const auto t1 = std::chrono::steady_clock::now();
    arm.add(0, c.data(), nullptr, unif(gen));  // the row that makes it dense
    const double switch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    if (!arm.arm_dense(0)) std::fprintf(stderr, "bench_bandit: the arm did not turn dense\n");
    const Timing dense_round = time_rounds(rounds, [&] {
      const Context x = random_unit(gen, d);
      double th, q;
      arm.ucb_terms_all(x.data(), &th, &q);
      arm.add(0, x.data(), nullptr, unif(gen));
    });
    std::printf("one arm at d=%zu turns dense at %zu pulls (filled in %.1f s): the switch takes %.2f s; then select+update "
                "of that arm %.3f ms wall (K dense arms: K times that)\n",
                d, rows, fill_s, switch_s, dense_round.wall_ms);
    out["dense_switch"] = {{"rows", rows}, {"switch_s", switch_s}, {"dense_arm_wall_ms", dense_round.wall_ms}};
  }
  std::cout << out.dump() << "\n";
  return 0;
}
