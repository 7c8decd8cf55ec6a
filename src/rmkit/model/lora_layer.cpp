#include "rmkit/model/lora_layer.h"

namespace rmkit::model {

torch::Tensor LoraAdapter::delta(const torch::Tensor& x, bool training) const {
  auto h = dropout > 0 && training ? torch::dropout(x, dropout, /*train=*/true) : x;  // [..., in]
  return torch::linear(torch::linear(h, A), B) * scale;                                // [..., r] -> [..., out]
}

torch::Tensor LoraAdapter::delta_weight() const {
  return torch::matmul(B, A) * scale;  // [out, r] @ [r, in] -> [out, in]
}

}  // namespace rmkit::model
