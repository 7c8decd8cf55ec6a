// In-process data-parallel tests: two ranks as two threads sharing a c10d::HashStore, each with
// its own Gloo process group on the loopback interface. Checks the launch environment parsing,
// the bucketed overlapped all-reduce against a plain per-parameter all-reduce, parameters without
// gradients, gradient accumulation, broadcast and the one-line timeout error.
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "rmkit/core/error.h"
#include "rmkit/dist/grad_reducer.h"
#include "rmkit/dist/launch_env.h"
#include "rmkit/dist/process_group.h"

namespace rmkit::dist {
namespace {

// Runs fn(rank, group) on `world` threads; rethrows the first failure's message as a test failure.
void run_ranks(int world, const std::function<void(int, std::shared_ptr<Group>)>& fn,
               std::chrono::milliseconds timeout = std::chrono::seconds(20), bool heartbeat = false) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::thread> ts;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    ts.emplace_back([&, r] {
      try {
        GroupOptions o;
        o.timeout = timeout;
        o.ifname = "lo";
        o.heartbeat = heartbeat;
        fn(r, Group::create(store, r, world, o));
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : ts) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[static_cast<size_t>(r)], "") << "rank " << r;
}

// A small model whose parameters have different sizes: several buckets at a 4 KiB cap.
struct Net : torch::nn::Module {
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr}, unused{nullptr};
  Net() {
    a = register_module("a", torch::nn::Linear(16, 32));
    b = register_module("b", torch::nn::Linear(32, 32));
    c = register_module("c", torch::nn::Linear(32, 4));
    unused = register_module("unused", torch::nn::Linear(32, 2));
  }
  torch::Tensor forward(const torch::Tensor& x, bool use_extra) {
    auto h = torch::tanh(b(torch::relu(a(x))));
    auto y = c(h).pow(2).sum();  // data-dependent gradients for every parameter, biases included
    if (use_extra) y = y + unused(h).pow(2).sum();
    return y;
  }
};

// The rank threads share libtorch's global generator: seeding and drawing happen under one lock
// (identical nets on every rank and in every run), and data comes from per-call generators.
std::shared_ptr<Net> make_net() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  torch::manual_seed(7);
  return std::make_shared<Net>();
}

torch::Tensor randn_seeded(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn(shape, gen);
}

TEST(DistLaunchEnv, ReadsTorchrunVariables) {
  auto e = LaunchEnv::from_map({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                                {"MASTER_ADDR", "10.1.2.3"}, {"MASTER_PORT", "29400"},
                                {"TORCHELASTIC_RESTART_COUNT", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                {"GLOO_SOCKET_IFNAME", "eth1,eth2"}});
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.1.2.3");
  EXPECT_EQ(e.master_port, 29400);
  EXPECT_TRUE(e.use_agent_store);
  EXPECT_EQ(e.store_prefix(), "/worker/attempt_2");  // torch/distributed/rendezvous.py's prefix
  EXPECT_EQ(e.socket_ifname, "eth1");
  EXPECT_TRUE(e.distributed());
  auto single = LaunchEnv::from_map({});
  EXPECT_FALSE(single.distributed());
  EXPECT_EQ(single.rank, 0);
  auto own = LaunchEnv::from_map({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(own.store_prefix(), "rmkit/attempt_0");
  EXPECT_FALSE(own.use_agent_store);
}

TEST(DistLaunchEnv, RejectsInconsistentVariables) {
  EXPECT_THROW(LaunchEnv::from_map({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}), ConfigError);
  EXPECT_THROW(LaunchEnv::from_map({{"RANK", "0"}, {"WORLD_SIZE", "2"}}), ConfigError);  // no MASTER_PORT
  EXPECT_THROW(LaunchEnv::from_map({{"WORLD_SIZE", "two"}}), ConfigError);
  EXPECT_THROW(LaunchEnv::from_map({{"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}, {"TORCHELASTIC_USE_AGENT_STORE", "yes"}}),
               ConfigError);
  try {
    LaunchEnv::from_map({{"RANK", "5"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}});
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("RANK=5"), std::string::npos) << e.what();
  }
}

TEST(DistLaunchEnv, ThreadsPerRankDivideTheCores) {
  unsetenv("OMP_NUM_THREADS");
  auto e = LaunchEnv::from_map({{"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(default_threads_per_rank(e, 16), 8);
  EXPECT_EQ(default_threads_per_rank(e, 1), 1);
  setenv("OMP_NUM_THREADS", "3", 1);
  EXPECT_EQ(default_threads_per_rank(e, 16), 3);
  setenv("OMP_NUM_THREADS", "1", 1);  // the test binary's own setting (tests/CMakeLists.txt)
}

TEST(DistReducer, BucketLayoutIsReverseOrderWithASmallFirstBucket) {
  auto net = make_net();
  auto params = net->parameters();
  run_ranks(1, [&](int, std::shared_ptr<Group> g) {
    ReducerOptions ro;
    ro.bucket_cap_bytes = 4096;
    ro.first_bucket_bytes = 600;
    GradReducer red(g, params, ro);
    auto layout = red.bucket_layout();
    ASSERT_GE(layout.size(), 3u);
    // reverse registration order, every parameter exactly once
    std::vector<size_t> flat;
    for (auto& b : layout) flat.insert(flat.end(), b.begin(), b.end());
    ASSERT_EQ(flat.size(), params.size());
    for (size_t i = 0; i < flat.size(); ++i) EXPECT_EQ(flat[i], params.size() - 1 - i);
    auto bytes = [&](const std::vector<size_t>& b) {
      size_t n = 0;
      for (size_t i : b) n += static_cast<size_t>(params[i].numel()) * 4;
      return n;
    };
    // a bucket only exceeds its cap when it holds a single larger parameter
    EXPECT_TRUE(bytes(layout[0]) <= 600 || layout[0].size() == 1);
    for (size_t i = 1; i < layout.size(); ++i) EXPECT_TRUE(bytes(layout[i]) <= 4096 || layout[i].size() == 1);
  });
}

TEST(DistReducer, BucketedOverlappedEqualsPlainPerParameterAllReduce) {
  run_ranks(2, [&](int rank, std::shared_ptr<Group> g) {
    auto net = make_net();
    auto params = net->parameters();
    ReducerOptions ro;
    ro.bucket_cap_bytes = 4096;
    ro.first_bucket_bytes = 512;
    GradReducer red(g, params, ro);
    auto x = randn_seeded({8, 16}, 100 + rank);  // different data on each rank
    red.prepare(true);
    net->forward(x, /*use_extra=*/true).backward();
    EXPECT_GT(red.stats().buckets_launched_in_backward, 0u) << "no bucket was launched during backward";
    std::vector<torch::Tensor> local;
    for (auto& p : params) local.push_back(p.grad().clone());
    red.finish("test step");
    for (size_t i = 0; i < params.size(); ++i) {
      auto expect = local[i].clone();
      g->allreduce_sum(expect, "plain all-reduce");
      expect.div_(2);
      EXPECT_TRUE(torch::allclose(params[i].grad(), expect, 1e-6, 1e-7)) << "param " << i;
      EXPECT_FALSE(torch::equal(params[i].grad(), local[i])) << "param " << i << " was not reduced";
    }
  });
}

TEST(DistReducer, ParametersWithoutGradientsStillComplete) {
  run_ranks(2, [&](int rank, std::shared_ptr<Group> g) {
    auto net = make_net();
    net->a->weight.set_requires_grad(false);  // frozen: not reduced at all
    std::vector<torch::Tensor> params;
    for (auto& p : net->parameters())
      if (p.requires_grad()) params.push_back(p);
    GradReducer red(g, params, ReducerOptions{1024, 256, true});
    auto x = randn_seeded({4, 16}, 200 + rank);
    red.prepare(true);
    // rank 0 uses the extra head, rank 1 does not: its hooks never fire for it
    net->forward(x, rank == 0).backward();
    std::vector<torch::Tensor> local;
    for (auto& p : params) local.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    red.finish("test step");
    for (size_t i = 0; i < params.size(); ++i) {
      auto expect = local[i].clone();
      g->allreduce_sum(expect, "plain all-reduce");
      expect.div_(2);
      ASSERT_TRUE(params[i].grad().defined()) << "param " << i;
      EXPECT_TRUE(torch::allclose(params[i].grad(), expect, 1e-6, 1e-7)) << "param " << i;
    }
    EXPECT_FALSE(net->a->weight.grad().defined());
    // the extra head's gradient is rank 0's halved, on both ranks
    EXPECT_GT(net->unused->weight.grad().abs().sum().item<double>(), 0.0);
  });
  // a parameter used on no rank keeps an undefined gradient (AdamW skips it, as in one process)
  run_ranks(2, [&](int rank, std::shared_ptr<Group> g) {
    auto net = make_net();
    GradReducer red(g, net->parameters(), ReducerOptions{1024, 256, true});
    red.prepare(true);
    net->forward(randn_seeded({2, 16}, 250 + rank), false).backward();
    red.finish("test step");
    EXPECT_FALSE(net->unused->weight.grad().defined());
    EXPECT_TRUE(net->c->weight.grad().defined());
  });
}

TEST(DistReducer, AccumulatedMicroBatchesReduceOnceAtTheEnd) {
  run_ranks(2, [&](int rank, std::shared_ptr<Group> g) {
    auto net = make_net();
    auto params = net->parameters();
    GradReducer red(g, params, ReducerOptions{2048, 512, true});
    auto x1 = randn_seeded({3, 16}, 300 + rank), x2 = randn_seeded({5, 16}, 350 + rank);
    red.prepare(false);
    net->forward(x1, true).backward();
    EXPECT_EQ(red.stats().buckets_launched_in_backward, 0u);
    red.prepare(true);
    net->forward(x2, true).backward();
    std::vector<torch::Tensor> local;
    for (auto& p : params) local.push_back(p.grad().clone());
    red.finish("test step");
    for (size_t i = 0; i < params.size(); ++i) {
      auto expect = local[i].clone();
      g->allreduce_sum(expect, "plain all-reduce");
      EXPECT_TRUE(torch::allclose(params[i].grad(), expect / 2, 1e-6, 1e-7)) << "param " << i;
    }
  });
}

TEST(DistReducer, WithoutOverlapGivesTheSameGradients) {
  std::vector<std::vector<torch::Tensor>> got(2);
  for (bool overlap : {true, false}) {
    run_ranks(2, [&](int rank, std::shared_ptr<Group> g) {
      auto net = make_net();
      GradReducer red(g, net->parameters(), ReducerOptions{2048, 512, overlap});
      red.prepare(true);
      net->forward(randn_seeded({6, 16}, 400 + rank), true).backward();
      EXPECT_EQ(red.stats().buckets_launched_in_backward > 0, overlap);
      red.finish("test step");
      if (rank == 0)
        for (auto& p : net->parameters()) got[overlap ? 0 : 1].push_back(p.grad().clone());
    });
  }
  ASSERT_EQ(got[0].size(), got[1].size());
  for (size_t i = 0; i < got[0].size(); ++i) EXPECT_TRUE(torch::equal(got[0][i], got[1][i])) << i;
}

TEST(DistGroup, BroadcastGivesEveryRankRootsValues) {
  run_ranks(3, [&](int rank, std::shared_ptr<Group> g) {
    // different initial values per rank
    std::vector<torch::Tensor> ts = {randn_seeded({5, 3}, 10 + rank), randn_seeded({7}, 20 + rank),
                                     torch::arange(4, torch::kLong) * rank};
    broadcast_tensors(*g, ts, 0, "test broadcast");
    auto a = randn_seeded({5, 3}, 10), b = randn_seeded({7}, 20);
    EXPECT_TRUE(torch::equal(ts[0], a));
    EXPECT_TRUE(torch::equal(ts[1], b));
    EXPECT_TRUE(torch::equal(ts[2], torch::zeros({4}, torch::kLong)));
  });
}

TEST(DistGroup, CollectiveTimeoutIsOneLineNamingRankAndOperation) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::string err;
  double seconds = 0;
  {
    std::shared_ptr<Group> g1;
    std::thread t1([&] {
      GroupOptions o;
      o.timeout = std::chrono::seconds(2);
      o.ifname = "lo";
      g1 = Group::create(store, 1, 2, o);  // joins, then never takes part in the all-reduce
    });
    GroupOptions o;
    o.timeout = std::chrono::seconds(2);
    o.ifname = "lo";
    auto g0 = Group::create(store, 0, 2, o);
    t1.join();
    auto t0 = std::chrono::steady_clock::now();
    try {
      auto x = torch::ones({4});
      g0->allreduce_sum(x, "all-reduce of gradient bucket 1/1 (step 3)");
    } catch (const DistError& e) {
      err = e.what();
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // rank 1 is alive (its heartbeat runs): the error must not blame it for having died
    EXPECT_EQ(err.find("stopped responding"), std::string::npos) << err;
  }
  EXPECT_NE(err.find("rank 0/2: all-reduce of gradient bucket 1/1 (step 3) failed"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_LT(seconds, 15.0);
}

}  // namespace
}  // namespace rmkit::dist
