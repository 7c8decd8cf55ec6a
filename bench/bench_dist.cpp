// bench_dist: data-parallel figures on one machine (loopback Gloo).
//   step:      ms/step of reward-model training (forward_pair, BT loss, backward, gradient
//              all-reduce, clip, AdamW) on a shape with the same GLOBAL batch, for R ranks x T
//              threads each (e.g. 2 x 1 against 1 x 2), with the all-reduce overlapped with
//              backward or run after it (--no-overlap); reports the time backward left the
//              all-reduce waiting (finish) per step.
//   bandwidth: all-reduce bus bandwidth (2(R-1)/R x bytes / time, NCCL-tests' definition) for
//              float32 buffers of 1-100 MiB.
//
//   bench_dist --mode step --ranks 2 --threads 1 --shape small --global-pairs 8 --len 128
//   bench_dist --mode bandwidth --ranks 2
// The parent process forks the ranks (before touching libtorch) with RANK/WORLD_SIZE/MASTER_*
// set as torchrun would; rank 0 prints one JSON line per result.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "bench_common.h"
#include "rmkit/dist/grad_reducer.h"
#include "rmkit/dist/launch_env.h"
#include "rmkit/dist/process_group.h"
#include "rmkit/model/registry.h"
#include "rmkit/train/optim.h"
#include "rmkit/train/reward_model.h"

using namespace rmkit;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int run_step(const Options& o, std::shared_ptr<dist::Group> g) {
  const int R = g ? g->size() : 1, rank = g ? g->rank() : 0;
  const auto shape = bench::shape_by_name(o.str("shape"));
  const int64_t G = o.integer("global-pairs"), L = o.integer("len"), steps = o.integer("steps");
  if (G % R != 0) throw UsageError("--global-pairs must be a multiple of --ranks");
  const int64_t B = G / R;
  torch::manual_seed(o.integer("seed"));
  auto backbone = model::create_model(bench::config_for(shape));
  train::RewardModel rm(backbone, train::HeadConfig());
  rm->train();
  auto named = rm->named_trainable_parameters();
  auto groups = train::split_param_groups(named);
  auto opt = train::make_adamw(groups, train::OptimConfig());
  std::vector<torch::Tensor> params;
  for (auto& [n, p] : named) params.push_back(p);
  std::unique_ptr<dist::GradReducer> red;
  if (g) {
    dist::broadcast_tensors(*g, params, 0, "broadcast");
    dist::ReducerOptions ro;
    ro.bucket_cap_bytes = static_cast<size_t>(o.number("bucket-mb") * (1 << 20));
    ro.overlap = !o.flag("no-overlap");
    red = std::make_unique<dist::GradReducer>(g, params, ro);
  }
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(o.integer("seed") + rank);
  auto ids = torch::randint(1, shape.vocab, {B, L}, gen, torch::kLong);
  auto ids2 = torch::randint(1, shape.vocab, {B, L}, gen, torch::kLong);
  auto mask = torch::ones({B, L}, torch::kLong);
  std::vector<double> ms, wait_ms;
  for (int64_t s = 0; s < steps + 2; ++s) {  // 2 warm-up steps
    const double t0 = now_s();
    if (red) red->prepare(true);
    auto out = rm->forward_pair(ids, mask, ids2, mask);
    auto loss = -torch::log_sigmoid(out.chosen - out.rejected).mean();
    loss.backward();
    if (red) red->finish("step " + std::to_string(s));
    train::clip_grad_norm(params, 1.0);
    opt->step();
    opt->zero_grad();
    if (s >= 2) {
      ms.push_back((now_s() - t0) * 1e3);
      wait_ms.push_back(red ? red->stats().finish_wait_s * 1e3 : 0.0);
    }
  }
  if (rank == 0) {
    nlohmann::json j = {{"mode", "step"}, {"shape", shape.name}, {"ranks", R}, {"threads_per_rank", at::get_num_threads()},
                        {"global_pairs", G}, {"len", L}, {"overlap", !o.flag("no-overlap")},
                        {"ms_per_step_median", bench::median(ms)}, {"allreduce_wait_ms_median", bench::median(wait_ms)},
                        {"grad_mib", red ? red->stats().bytes / double(1 << 20) : 0.0},
                        {"buckets", red ? red->num_buckets() : 0}, {"step_ms", ms}, {"wait_ms", wait_ms}};
    bench::add_dispatch_env(j);
    std::printf("bench_dist step %s: %d ranks x %d threads, global batch %lld x %lld tokens: %.1f ms/step, all-reduce wait %.1f ms (%s)\n",
                shape.name.c_str(), R, at::get_num_threads(), static_cast<long long>(G), static_cast<long long>(L),
                bench::median(ms), bench::median(wait_ms), o.flag("no-overlap") ? "after backward" : "overlapped");
    std::cout << j.dump() << std::endl;
  }
  return 0;
}

int run_bandwidth(const Options& o, std::shared_ptr<dist::Group> g) {
  if (!g) throw UsageError("--mode bandwidth needs --ranks >= 2");
  const int R = g->size();
  for (double mib : {1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0}) {
    const int64_t n = static_cast<int64_t>(mib * (1 << 20) / 4);
    auto t = torch::ones({n});
    std::vector<double> secs;
    for (int rep = 0; rep < 2 + o.integer("reps"); ++rep) {
      g->barrier("barrier");
      const double t0 = now_s();
      g->allreduce_sum(t, "all-reduce");
      if (rep >= 2) secs.push_back(now_s() - t0);
    }
    const double s = bench::median(secs);
    const double busbw = 2.0 * (R - 1) / R * n * 4 / s / 1e9;
    if (g->rank() == 0) {
      std::printf("bench_dist all-reduce %6.1f MiB: %8.2f ms, bus bandwidth %.2f GB/s\n", mib, s * 1e3, busbw);
      std::cout << nlohmann::json{{"mode", "bandwidth"}, {"ranks", R}, {"mib", mib}, {"ms_median", s * 1e3},
                                  {"busbw_gb_s", busbw}}.dump()
                << std::endl;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<OptionSpec> specs = {
        {"mode", OptKind::String, "step", "step | bandwidth"},
        {"ranks", OptKind::Int, "2", "processes (forked here, loopback Gloo)"},
        {"threads", OptKind::Int, "1", "intra-op threads per rank"},
        {"shape", OptKind::String, "small", "tiny | small | base"},
        {"global-pairs", OptKind::Int, "8", "pairs per optimizer step over all ranks"},
        {"len", OptKind::Int, "128", "tokens per sequence (fixed)"},
        {"steps", OptKind::Int, "6", "timed steps (after 2 warm-up steps)"},
        {"bucket-mb", OptKind::Float, "25", "gradient bucket size (MiB)"},
        {"no-overlap", OptKind::Flag, "", "all-reduce after backward instead of during it"},
        {"reps", OptKind::Int, "5", "bandwidth: timed repetitions per size"},
        {"seed", OptKind::Int, "1", "seed"},
    };
    auto o = Options::parse(std::vector<std::string>(argv + 1, argv + argc), specs);
    if (o.help_requested()) {
      std::cout << Options::help_text("bench_dist", "data-parallel step time and all-reduce bandwidth", specs);
      return 0;
    }
    const int R = static_cast<int>(o.integer("ranks"));
    if (!std::getenv("RANK") && R > 1) {  // parent: fork the ranks, as rmkit launch would
      const int port = 20000 + static_cast<int>(getpid() % 20000);
      std::vector<pid_t> kids;
      for (int r = 0; r < R; ++r) {
        pid_t pid = fork();
        if (pid == 0) {
          setenv("RANK", std::to_string(r).c_str(), 1);
          setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
          setenv("WORLD_SIZE", std::to_string(R).c_str(), 1);
          setenv("LOCAL_WORLD_SIZE", std::to_string(R).c_str(), 1);
          setenv("MASTER_ADDR", "127.0.0.1", 1);
          setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
          execv("/proc/self/exe", argv);
          std::_Exit(127);
        }
        kids.push_back(pid);
      }
      int rc = 0;
      for (pid_t k : kids) {
        int st = 0;
        waitpid(k, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
      }
      return rc;
    }
    model::configure_runtime(static_cast<int>(o.integer("threads")));
    std::shared_ptr<dist::Group> g;
    if (R > 1) {
      dist::GroupOptions go;
      go.timeout = std::chrono::seconds(300);
      g = dist::Group::from_env(dist::LaunchEnv::from_environment(), go);
    }
    return o.str("mode") == "bandwidth" ? run_bandwidth(o, g) : run_step(o, g);
  } catch (const std::exception& e) {
    std::cerr << "bench_dist: " << e.what() << "\n";
    return 1;
  }
}
