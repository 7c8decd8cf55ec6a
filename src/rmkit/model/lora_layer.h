// The LoRA adapter of one projection (lora.h attaches them): y = W x + scale * B (A dropout(x)),
// scale = alpha / r. A [r, in] and B [out, r] are registered on the projection's module as
// "lora_A.weight" and "lora_B.weight" (PEFT's names); the family's forward holds the adapter in a
// slot (ProjectionRef::slot) and calls with_lora, which is a null check when none is attached.
#pragma once
#include <torch/torch.h>

#include <memory>

namespace rmkit::model {

struct LoraAdapter {
  torch::Tensor A;       // [r, in]   (lora_A.weight)
  torch::Tensor B;       // [out, r]  (lora_B.weight)
  double scale = 1.0;    // alpha / r
  double dropout = 0.0;  // on the adapter's input, in training mode only (as PEFT)

  // x [..., in] -> scale * B A dropout(x): [..., out]
  torch::Tensor delta(const torch::Tensor& x, bool training) const;
  // scale * B A: [out, in] (what merge_lora adds to W)
  torch::Tensor delta_weight() const;
};

// y = proj(x) [..., out] plus the adapter's delta when `lora` is set.
inline torch::Tensor with_lora(torch::Tensor y, const std::shared_ptr<LoraAdapter>& lora, const torch::Tensor& x,
                               bool training) {
  if (!lora) return y;
  return y + lora->delta(x, training);
}

}  // namespace rmkit::model
