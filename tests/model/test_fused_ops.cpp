// Fused RMSNorm and rotate-half RoPE (model/fused_ops.h): outputs and every gradient equal the ATen
// composite expressions (shapes with a last dim that is not a multiple of the vector width, and
// enough rows to split across threads); hand-computed values; the no-grad and inference paths
// equal the autograd path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "rmkit/model/blocks.h"
#include "rmkit/model/fused_ops.h"

namespace rmkit::model {
namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

struct Grads {
  torch::Tensor y, gx, gw;
};

// y = f(x, w); loss = sum(y * g) with a fixed random g; returns y and the gradients.
template <typename F>
Grads run(F f, const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& g) {
  auto x = x0.clone().requires_grad_(true);
  auto w = w0.defined() ? w0.clone().requires_grad_(true) : torch::Tensor();
  auto y = f(x, w);
  (y * g).sum().backward();
  return {y.detach(), x.grad(), w.defined() ? w.grad() : torch::Tensor()};
}

TEST(FusedOps, RmsNormEqualsCompositeAndGradients) {
  torch::manual_seed(3);
  for (auto shape : {std::vector<int64_t>{3, 5, 37}, std::vector<int64_t>{200, 768}, std::vector<int64_t>{1, 1, 16}}) {
    auto x = torch::randn(shape);
    auto w = torch::randn({shape.back()});
    auto g = torch::randn(shape);
    auto fused = run([](auto& a, auto& b) { return rms_norm(a, b, 1e-5); }, x, w, g);
    auto ref = run([](auto& a, auto& b) { return rms_norm_composite(a, b, 1e-5); }, x, w, g);
    EXPECT_LT(max_abs_diff(fused.y, ref.y), 1e-5) << shape.back();
    EXPECT_LT(max_abs_diff(fused.gx, ref.gx), 1e-5) << shape.back();
    EXPECT_LT(max_abs_diff(fused.gw, ref.gw), 1e-4) << shape.back();  // sums over up to 200 rows
    EXPECT_EQ(fused.y.sizes(), x.sizes());
  }
}

TEST(FusedOps, RmsNormHandValue) {
  // x = (3, 4): mean(x^2) = 12.5, so y = w * x / sqrt(12.5)
  auto y = rms_norm(torch::tensor({{3.f, 4.f}}), torch::tensor({1.f, 2.f}), 0.0);
  const double r = 1.0 / std::sqrt(12.5);
  EXPECT_NEAR(y[0][0].item<double>(), 3 * r, 1e-6);
  EXPECT_NEAR(y[0][1].item<double>(), 8 * r, 1e-6);
}

TEST(FusedOps, RmsNormNoGradAndInferenceEqualAutograd) {
  torch::manual_seed(4);
  auto x = torch::randn({9, 33}), w = torch::randn({33});
  auto with_grad = rms_norm(x.clone().requires_grad_(true), w, 1e-6).detach();
  torch::Tensor no_grad, inference;
  {
    torch::NoGradGuard ng;
    no_grad = rms_norm(x, w, 1e-6);
  }
  {
    c10::InferenceMode im;
    inference = rms_norm(x, w, 1e-6);
  }
  EXPECT_EQ(max_abs_diff(with_grad, no_grad), 0.0);
  EXPECT_EQ(max_abs_diff(with_grad, inference), 0.0);
}

// cos/sin tables as the llama forward builds them: [B, 1, T, D/2]
std::pair<torch::Tensor, torch::Tensor> tables(int64_t B, int64_t T, int64_t D) {
  std::vector<double> f(D / 2);
  for (int64_t i = 0; i < D / 2; ++i) f[i] = 1.0 / std::pow(10000.0, 2.0 * i / D);
  auto pos = torch::randint(0, 500, {B, T}, torch::kLong);
  return rope_cos_sin(torch::tensor(f, torch::kFloat64), pos, torch::kFloat);
}

TEST(FusedOps, RopeEqualsCompositeAndGradients) {
  torch::manual_seed(5);
  for (auto dims : {std::vector<int64_t>{2, 7, 3, 8}, std::vector<int64_t>{1, 300, 12, 64},
                    std::vector<int64_t>{3, 4, 2, 18}}) {
    auto [cos, sin] = tables(dims[0], dims[1], dims[3]);
    auto x = torch::randn(dims), g = torch::randn(dims);
    auto fused = run([&](auto& a, auto&) { return rope_bthd(a, cos, sin, false); }, x, torch::Tensor(), g);
    auto ref = run([&](auto& a, auto&) { return rope_bthd_composite(a, cos, sin, false); }, x, torch::Tensor(), g);
    EXPECT_LT(max_abs_diff(fused.y, ref.y), 1e-5) << dims[3];
    EXPECT_LT(max_abs_diff(fused.gx, ref.gx), 1e-5) << dims[3];
    EXPECT_EQ(fused.y.sizes(), x.sizes());
  }
}

TEST(FusedOps, RopeQuarterTurnAndNormInvariant) {
  // D = 2, angle pi/2: (a, b) -> (a cos - b sin, b cos + a sin) = (-b, a)
  auto cos = torch::zeros({1, 1, 1, 1}), sin = torch::ones({1, 1, 1, 1});
  auto y = rope_bthd(torch::tensor({1.5f, -2.f}).view({1, 1, 1, 2}), cos, sin, false);
  EXPECT_FLOAT_EQ(y.view({2})[0].item<float>(), 2.f);
  EXPECT_FLOAT_EQ(y.view({2})[1].item<float>(), 1.5f);
  // a rotation keeps every (x_j, x_{j+D/2}) pair's length
  torch::manual_seed(6);
  auto [c, s] = tables(2, 5, 16);
  auto x = torch::randn({2, 5, 3, 16});
  auto r = rope_bthd(x, c, s, false);
  auto pair_norm = [](const torch::Tensor& t) { return t.slice(-1, 0, 8).pow(2) + t.slice(-1, 8).pow(2); };
  EXPECT_LT(max_abs_diff(pair_norm(r), pair_norm(x)), 1e-5);
}

TEST(FusedOps, RopeInterleavedAndNoGradPaths) {
  torch::manual_seed(8);
  auto [cos, sin] = tables(2, 6, 8);
  auto x = torch::randn({2, 6, 4, 8});
  // interleaved always takes the composite path
  EXPECT_EQ(max_abs_diff(rope_bthd(x, cos, sin, true), rope_bthd_composite(x, cos, sin, true)), 0.0);
  auto with_grad = rope_bthd(x.clone().requires_grad_(true), cos, sin, false).detach();
  torch::NoGradGuard ng;
  EXPECT_EQ(max_abs_diff(with_grad, rope_bthd(x, cos, sin, false)), 0.0);
  // a non-contiguous input (the transposed projection) gives the same result as its contiguous copy
  auto xt = torch::randn({2, 4, 6, 8}).transpose(1, 2);
  EXPECT_EQ(max_abs_diff(rope_bthd(xt, cos, sin, false), rope_bthd(xt.contiguous(), cos, sin, false)), 0.0);
}

}  // namespace
}  // namespace rmkit::model
