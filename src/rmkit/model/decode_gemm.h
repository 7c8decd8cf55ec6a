// Linear layers of decode steps (a few rows: one token per running sequence) without OpenBLAS's
// per-call weight repacking.
//
// torch's linear calls sgemm, and OpenBLAS packs the whole weight into its panel layout on every
// call. With 16 rows that copy costs as much as the product itself (perf of a 16-stream decode:
// sgemm_incopy 17 %, sgemm_kernel 14 %). oneDNN's matmul reading a [in, out] (row-major K x N)
// weight needs no repack and runs the same products 2-3x faster (bench_matmul --tokens 16 on the
// small shape: 320-420 vs 110-140 GFLOP/s). So, inside a DecodeGemmScope, dense() keeps a
// transposed copy of each weight it meets (refreshed when the weight changes: version counter or
// storage) and runs rows in [2, kMaxRows] through a cached oneDNN primitive. One row stays on
// torch (gemv, no packing there either); so do training, autograd, non-fp32, big batches and any
// shape oneDNN refuses to make a primitive for (remembered, not retried).
//
// The copies cost one extra weight's memory per linear layer used in a scope (docs/serve.md).
// Without oneDNN at build time (RMKIT_HAVE_DNNL undefined) dense() is torch's.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>

namespace rmkit::model {

// Rows of one call that take the oneDNN path (decode batches; prefill chunks stay on BLAS).
inline constexpr int64_t kDecodeGemmMaxRows = 64;
// Smallest weight (in x out elements) that takes it: below, OpenBLAS's small-matrix kernels need no
// repack and oneDNN's per-call cost dominates (bench_matmul --shape tiny --tokens 16: oneDNN 0.6-1.0x
// on stories260K's 64 x 172 products; LASeR's loop on stories260K generated 15.6k tokens/s with them
// on oneDNN, 18.4k-20.2k without).
inline constexpr int64_t kDecodeGemmMinWeight = 1 << 16;

// Enables the path on this thread while alive (nestable; restores the previous state).
class DecodeGemmScope {
 public:
  explicit DecodeGemmScope(bool on = true);
  ~DecodeGemmScope();
  DecodeGemmScope(const DecodeGemmScope&) = delete;
  DecodeGemmScope& operator=(const DecodeGemmScope&) = delete;
  static bool active();

 private:
  bool prev_;
};

bool decode_gemm_available();  // built with oneDNN

enum class WeightLayout {
  kOutIn,  // [out, in]: torch::nn::Linear, embeddings used as an LM head (a transposed copy is kept)
  kInOut,  // [in, out]: GPT-2's Conv1D (read in place, no copy)
};

// The oneDNN path when it applies (scope active, 2..kDecodeGemmMaxRows rows, a weight of at least
// kDecodeGemmMinWeight elements, fp32, no autograd recording, no autocast), else nullopt. x [..., in] -> [..., out]; b may be undefined.
std::optional<torch::Tensor> decode_dense(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                          WeightLayout layout);

// y = x W^T + b for a [out, in] weight: decode_dense, else torch::nn::functional::linear. Equal
// to torch's linear up to fp32 summation order.
torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// Bytes held by transposed weight copies (process-wide), and dropping them all.
int64_t decode_gemm_cache_bytes();
void decode_gemm_clear_cache();

}  // namespace rmkit::model
