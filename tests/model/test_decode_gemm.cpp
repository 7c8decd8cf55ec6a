// Decode-step linears (model/decode_gemm.h): inside a DecodeGemmScope, rows in [2, 64] go through
// oneDNN on a transposed weight copy and equal torch's linear to fp32 summation order; every
// other case is torch's own call (bitwise); a weight changed in place is re-copied; the copies are
// counted and freed; threads share them; autograd and autocast keep torch's path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>
#include <vector>

#include "rmkit/model/decode_gemm.h"
#include "rmkit/train/autocast.h"

namespace rmkit::model {
namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}
// max |a - ref| relative to max |ref|: fp32 sums of K terms in another order differ by ~sqrt(K) ulp
double rel_diff(const torch::Tensor& a, const torch::Tensor& ref) {
  return max_abs_diff(a, ref) / ref.abs().max().item<double>();
}

class DecodeGemm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!decode_gemm_available()) GTEST_SKIP() << "built without oneDNN";
    decode_gemm_clear_cache();
  }
  void TearDown() override { decode_gemm_clear_cache(); }
};

TEST_F(DecodeGemm, RowsInRangeEqualTorchLinear) {
  torch::manual_seed(1);
  auto w = torch::randn({300, 257}) * 0.1;  // out, in: neither a multiple of the vector width
  auto b = torch::randn({300});
  c10::InferenceMode guard;
  DecodeGemmScope scope;
  for (int64_t rows : {2, 3, 16, 33, 64}) {
    auto x = torch::randn({1, rows, 257});
    auto ref = torch::nn::functional::linear(x, w, b);
    auto y = dense(x, w, b);
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_LT(rel_diff(y, ref), 1e-5) << rows << " rows";
    auto y2 = dense(x.view({rows, 257}), w);  // 2-D input, no bias
    EXPECT_LT(rel_diff(y2, torch::nn::functional::linear(x.view({rows, 257}), w)), 1e-5) << rows << " rows";
  }
  // one copy per weight, whatever the row counts
  EXPECT_EQ(decode_gemm_cache_bytes(), 300 * 257 * 4);
}

TEST_F(DecodeGemm, InOutWeightIsReadInPlace) {  // GPT-2's Conv1D layout
  torch::manual_seed(5);
  auto w = torch::randn({256, 320});  // in, out
  auto b = torch::randn({320});
  auto x = torch::randn({2, 5, 256});
  c10::InferenceMode guard;
  EXPECT_FALSE(decode_dense(x, w, b, WeightLayout::kInOut).has_value());  // no scope
  DecodeGemmScope scope;
  auto y = decode_dense(x, w, b, WeightLayout::kInOut);
  ASSERT_TRUE(y.has_value());
  EXPECT_LT(rel_diff(*y, torch::addmm(b, x.view({10, 256}), w).view({2, 5, 320})), 1e-5);
  EXPECT_EQ(decode_gemm_cache_bytes(), 0);  // no copy
  EXPECT_FALSE(decode_dense(x[0][0], w, b, WeightLayout::kInOut).has_value());  // one row: torch's gemv
  EXPECT_FALSE(decode_dense(torch::randn({4, 255}), w, b, WeightLayout::kInOut).has_value());  // wrong width
}

TEST_F(DecodeGemm, OtherCasesAreTorchsOwnCall) {
  torch::manual_seed(2);
  auto w = torch::randn({256, 256});
  c10::InferenceMode guard;
  {
    DecodeGemmScope scope;
    for (int64_t rows : {1, 65, 200}) {
      auto x = torch::randn({rows, 256});
      EXPECT_TRUE(torch::equal(dense(x, w), torch::nn::functional::linear(x, w))) << rows << " rows";
    }
    auto small = torch::randn({172, 64});  // stories260K's MLP: below kDecodeGemmMinWeight
    auto xs = torch::randn({16, 64});
    EXPECT_TRUE(torch::equal(dense(xs, small), torch::nn::functional::linear(xs, small)));
    DecodeGemmScope off(false);  // nested: switched off, then restored
    auto x = torch::randn({16, 256});
    EXPECT_TRUE(torch::equal(dense(x, w), torch::nn::functional::linear(x, w)));
  }
  EXPECT_FALSE(DecodeGemmScope::active());
  auto x = torch::randn({16, 256});  // outside any scope
  EXPECT_TRUE(torch::equal(dense(x, w), torch::nn::functional::linear(x, w)));
  EXPECT_EQ(decode_gemm_cache_bytes(), 0);
}

TEST_F(DecodeGemm, WeightChangedInPlaceIsRecopied) {
  torch::manual_seed(3);
  auto w = torch::randn({512, 128});
  auto x = torch::randn({8, 128});
  DecodeGemmScope scope;
  torch::Tensor before;
  {
    torch::NoGradGuard ng;
    before = dense(x, w);
    w.mul_(-2.0);  // as an optimizer step or a LoRA merge would: bumps the version counter
    auto after = dense(x, w);
    EXPECT_LT(rel_diff(after, before * -2.0), 1e-5);
    EXPECT_LT(rel_diff(after, torch::nn::functional::linear(x, w)), 1e-5);
  }
  EXPECT_EQ(decode_gemm_cache_bytes(), 512 * 128 * 4);  // refreshed, not duplicated
  // a weight that is gone takes its copy with it (at the next new weight)
  w = torch::Tensor();
  auto w2 = torch::randn({1024, 128});
  torch::NoGradGuard ng;
  dense(x, w2);
  EXPECT_EQ(decode_gemm_cache_bytes(), 1024 * 128 * 4);
}

TEST_F(DecodeGemm, ThreadsShareCachedWeightsAndPrimitives) {
  // engines run on their own threads and come and go: a primitive created on one thread runs on others
  torch::manual_seed(6);
  auto w = torch::randn({384, 256});
  auto x = torch::randn({12, 256});
  auto ref = torch::nn::functional::linear(x, w);
  c10::InferenceMode guard;
  {
    DecodeGemmScope scope;
    dense(x, w);  // created here
  }
  std::vector<double> worst(3, 0.0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < worst.size(); ++t)
    threads.emplace_back([&, t] {
      c10::InferenceMode g;
      DecodeGemmScope scope;
      for (int i = 0; i < 50; ++i) worst[t] = std::max(worst[t], rel_diff(dense(x, w), ref));
    });
  for (auto& th : threads) th.join();
  for (double d : worst) EXPECT_LT(d, 1e-5);
  EXPECT_EQ(decode_gemm_cache_bytes(), 384 * 256 * 4);
}

TEST_F(DecodeGemm, AutogradAndAutocastKeepTorchsPath) {
  torch::manual_seed(4);
  auto w = torch::randn({256, 256}).requires_grad_(true);
  auto x = torch::randn({4, 256});
  DecodeGemmScope scope;
  auto y = dense(x, w);
  ASSERT_TRUE(y.requires_grad());  // recorded by autograd: torch's linear
  y.sum().backward();
  EXPECT_LT(max_abs_diff(w.grad(), x.sum(0).expand({256, 256})), 1e-4);
  {
    train::CpuAutocast ac(true);
    torch::NoGradGuard ng;
    EXPECT_EQ(dense(x, w.detach()).scalar_type(), torch::kBFloat16);  // autocast's bf16 linear
  }
  EXPECT_EQ(decode_gemm_cache_bytes(), 0);
}

}  // namespace
}  // namespace rmkit::model
