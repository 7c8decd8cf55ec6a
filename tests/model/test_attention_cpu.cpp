// Head-parallel CPU attention (model/attention_cpu.h): output and q/k/v gradients equal the plain
// masked-softmax attention (compat::attention_math) with an additive mask, with causal masking, and
// with neither; the no-grad and inference-mode paths (whose OpenMP workers must inherit the caller's
// thread-local modes) equal the autograd path; unsupported inputs are reported, not guessed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "rmkit/core/error.h"
#include "rmkit/model/attention_cpu.h"
#include "rmkit/model/torch_compat.h"

namespace rmkit::model {
namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// additive [T, S] mask allowing each query a random subset of keys, always including key 0
torch::Tensor random_mask(int64_t T, int64_t S) {
  auto allowed = torch::rand({T, S}) < 0.6;
  allowed.select(1, 0).fill_(true);
  return torch::zeros({T, S}).masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
}

struct Out {
  torch::Tensor y, gq, gk, gv;
};

template <typename F>
Out run(F f, const torch::Tensor& q0, const torch::Tensor& k0, const torch::Tensor& v0, const torch::Tensor& g) {
  auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
  auto y = f(q, k, v);
  (y * g).sum().backward();
  return {y.detach(), q.grad(), k.grad(), v.grad()};
}

void expect_close(const Out& a, const Out& b, const std::string& what) {
  EXPECT_LT(max_abs_diff(a.y, b.y), 1e-5) << what;
  EXPECT_LT(max_abs_diff(a.gq, b.gq), 1e-5) << what;
  EXPECT_LT(max_abs_diff(a.gk, b.gk), 1e-5) << what;
  EXPECT_LT(max_abs_diff(a.gv, b.gv), 1e-5) << what;
}

TEST(AttentionByHead, EqualsMathAttentionWithGradients) {
  torch::manual_seed(11);
  struct Case {
    int64_t H, T, S, D;
    bool mask, causal;
  };
  for (const Case& c : {Case{3, 5, 9, 8, true, false}, Case{4, 7, 7, 16, false, true}, Case{2, 6, 6, 8, true, true},
                        Case{12, 40, 70, 64, false, false}, Case{5, 1, 4, 8, false, false}}) {
    auto q = torch::randn({c.H, c.T, c.D}), k = torch::randn({c.H, c.S, c.D}), v = torch::randn({c.H, c.S, c.D});
    auto g = torch::randn({c.H, c.T, c.D});
    auto mask = c.mask ? random_mask(c.T, c.S) : torch::Tensor();
    auto mine = run([&](auto& a, auto& b, auto& d) { return attention_by_head(a, b, d, mask, c.causal); }, q, k, v, g);
    auto ref = run(
        [&](auto& a, auto& b, auto& d) {
          return compat::attention_math(a.unsqueeze(0), b.unsqueeze(0), d.unsqueeze(0), mask, c.causal).squeeze(0);
        },
        q, k, v, g);
    expect_close(mine, ref, "H" + std::to_string(c.H) + " T" + std::to_string(c.T) + " S" + std::to_string(c.S));
  }
}

TEST(AttentionByHead, StridedInputsAsContiguous) {
  // q as attend_packed passes it: a slice of the [T, H, D] projection transposed to [H, T, D]
  torch::manual_seed(12);
  auto q = torch::randn({10, 4, 8}).transpose(0, 1).narrow(1, 2, 6);  // [4, 6, 8], row stride 32
  auto k = torch::randn({4, 12, 8}).narrow(1, 0, 9), v = torch::randn({4, 12, 8}).narrow(1, 0, 9);
  auto mask = random_mask(6, 9);
  EXPECT_LT(max_abs_diff(attention_by_head(q, k, v, mask, false),
                         attention_by_head(q.contiguous(), k.contiguous(), v.contiguous(), mask, false)),
            1e-6);
}

TEST(AttentionByHead, NoGradAndInferenceModeEqualAutograd) {
  torch::manual_seed(13);
  auto q = torch::randn({6, 9, 16}), k = torch::randn({6, 9, 16}), v = torch::randn({6, 9, 16});
  auto with_grad = attention_by_head(q.clone().requires_grad_(true), k, v, torch::Tensor(), true).detach();
  torch::Tensor no_grad, inference;
  {
    torch::NoGradGuard ng;
    no_grad = attention_by_head(q, k, v, torch::Tensor(), true);
  }
  {
    c10::InferenceMode im;
    auto qi = q.clone(), ki = k.clone(), vi = v.clone();  // inference tensors: workers must run in inference mode
    inference = attention_by_head(qi, ki, vi, torch::Tensor(), true);
  }
  EXPECT_EQ(max_abs_diff(with_grad, no_grad), 0.0);
  EXPECT_EQ(max_abs_diff(with_grad, inference), 0.0);
}

TEST(AttentionByHead, RejectsWhatItDoesNotHandle) {
  auto q = torch::randn({2, 3, 4}), k = torch::randn({2, 5, 4});
  EXPECT_FALSE(attention_by_head_supported(q.to(torch::kBFloat16), k, k, torch::Tensor()));
  EXPECT_FALSE(attention_by_head_supported(q, k, k, torch::zeros({3, 4})));  // mask [T, S] expected
  EXPECT_THROW(attention_by_head(q, k, k, torch::Tensor(), /*causal=*/true), ShapeError);  // T != S
}

}  // namespace
}  // namespace rmkit::model
