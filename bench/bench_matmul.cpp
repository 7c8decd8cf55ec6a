// bench_matmul: fp32 matmul rate of torch::mm (libtorch's BLAS: OpenBLAS here) against oneDNN's
// matmul primitive (the libdnnl.so.2 that Debian's libtorch itself links) on the products of one
// training step of a model shape: per linear layer the forward Y = X W^T, and the backward
// dX = dY W and dW = dY^T X, for M tokens; plus the 2048^2 square that bench_train's MFU divides by.
// Answers "does oneDNN's fp32 matmul beat OpenBLAS for the model's shapes" with figures; the last
// line is one JSON object with the FLOP-weighted step ratio (torch time / oneDNN time).
//
//   bench_matmul --shape base [--tokens 4096] [--reps 5]
#include <oneapi/dnnl/dnnl.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "bench_common.h"
#include "rmkit/core/cpu_env.h"
#include "rmkit/core/error.h"
#include "rmkit/core/options.h"
#include "rmkit/model/runtime.h"

using namespace rmkit;

namespace {
struct Product {
  std::string name;
  int64_t M, K, N;
  bool trans_a, trans_b;  // C[M,N] = op(A)[M,K] op(B)[K,N]; A stored [K,M] when trans_a, B [N,K] when trans_b
};

template <typename F>
double median_seconds(F f, int reps) {
  f();  // warm-up (and oneDNN's first-use JIT)
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  apply_cpu_env(argc, argv);
  try {
    std::vector<OptionSpec> specs = {
        {"shape", OptKind::String, "base", "tiny | small | base (its hidden / intermediate sizes)"},
        {"tokens", OptKind::Int, "4096", "rows M of the activations (tokens in a step)"},
        {"reps", OptKind::Int, "5", "timed repetitions per product (median)"},
        {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
    };
    const auto parsed = bench::parse_options(argc, argv, "bench_matmul", "fp32 matmul: torch::mm (BLAS) vs oneDNN", specs);
    if (!parsed) return 0;  // --help
    const Options& o = *parsed;
    const auto shape = bench::shape_by_name(o.str("shape"));
    const int64_t M = o.integer("tokens"), d = shape.hidden, I = shape.intermediate;
    const int reps = static_cast<int>(o.integer("reps"));
    const int64_t kv = shape.kv_heads * (shape.hidden / shape.heads);
    // (name, in, out, count per layer)
    struct Linear {
      std::string name;
      int64_t in, out, per_layer;
    };
    std::vector<Linear> linears = {{"q/o", d, d, 2}, {"k/v", d, kv, 2}, {"gate/up", d, I, 2}, {"down", I, d, 1}};
    std::vector<std::pair<Product, int64_t>> products;  // product, how often per layer
    products.push_back({{"square 2048", 2048, 2048, 2048, false, false}, 0});
    for (const auto& l : linears) {
      products.push_back({{l.name + " fwd X W^T", M, l.in, l.out, false, true}, l.per_layer});
      products.push_back({{l.name + " bwd dY W", M, l.out, l.in, false, false}, l.per_layer});
      products.push_back({{l.name + " bwd dY^T X", l.out, M, l.in, true, false}, l.per_layer});
    }

    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream strm(eng);
    using dt = dnnl::memory::data_type;
    double torch_step = 0, dnnl_step = 0;
    nlohmann::json rows = nlohmann::json::array();
    std::printf("%-22s %6s %6s %6s %12s %12s %7s %9s\n", "product", "M", "K", "N", "torch GF/s", "oneDNN GF/s",
                "ratio", "max err");
    for (const auto& [p, count] : products) {
      auto A = p.trans_a ? torch::randn({p.K, p.M}) : torch::randn({p.M, p.K});
      auto B = p.trans_b ? torch::randn({p.N, p.K}) : torch::randn({p.K, p.N});
      auto opA = p.trans_a ? A.t() : A, opB = p.trans_b ? B.t() : B;
      auto C = torch::empty({p.M, p.N}), C2 = torch::empty({p.M, p.N});
      const double flop = 2.0 * p.M * p.N * p.K;
      double tt = median_seconds([&] { torch::mm_out(C, opA, opB); }, reps);
      // oneDNN: strides express the transposes, no copies
      dnnl::memory::desc a_md({p.M, p.K}, dt::f32, p.trans_a ? dnnl::memory::dims{1, p.M} : dnnl::memory::dims{p.K, 1});
      dnnl::memory::desc b_md({p.K, p.N}, dt::f32, p.trans_b ? dnnl::memory::dims{1, p.K} : dnnl::memory::dims{p.N, 1});
      dnnl::memory::desc c_md({p.M, p.N}, dt::f32, dnnl::memory::dims{p.N, 1});
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), eng);
      dnnl::matmul mm(pd);
      dnnl::memory am(a_md, eng, A.data_ptr()), bm(b_md, eng, B.data_ptr()), cm(c_md, eng, C2.data_ptr());
      double td = median_seconds(
          [&] {
            mm.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
            strm.wait();
          },
          reps);
      const double err = (C - C2).abs().max().item<double>();
      std::printf("%-22s %6ld %6ld %6ld %12.1f %12.1f %7.2f %9.1e\n", p.name.c_str(), (long)p.M, (long)p.K, (long)p.N,
                  flop / tt / 1e9, flop / td / 1e9, tt / td, err);
      torch_step += tt * count;
      dnnl_step += td * count;
      rows.push_back({{"product", p.name}, {"M", p.M}, {"K", p.K}, {"N", p.N}, {"torch_gflops", flop / tt / 1e9},
                      {"onednn_gflops", flop / td / 1e9}, {"max_abs_err", err}});
    }
    std::printf("per-layer step products: torch %.1f ms, oneDNN %.1f ms, torch/oneDNN time ratio %.3f\n",
                1e3 * torch_step, 1e3 * dnnl_step, torch_step / dnnl_step);
    nlohmann::json j = {{"shape", shape.name},          {"tokens", M},
                        {"threads", at::get_num_threads()}, {"products", rows},
                        {"step_torch_ms", 1e3 * torch_step}, {"step_onednn_ms", 1e3 * dnnl_step},
                        {"onednn_speedup", torch_step / dnnl_step}};
    bench::add_dispatch_env(j);
    std::cout << j.dump() << "\n";
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "bench_matmul: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench_matmul: " << e.what() << "\n";
    return 1;
  }
}
