#include "rmkit/model/attention_cpu.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <cmath>
#include <limits>

#include "rmkit/core/error.h"

namespace rmkit::model {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Runs body(h) for every head, heads split across the intra-op threads. The caller's thread-local
// state (grad mode, inference mode) is carried into the OpenMP workers, which do not inherit it.
template <typename F>
void for_each_head(int64_t H, const F& body) {
  at::ThreadLocalState state;
  at::parallel_for(0, H, 1, [&](int64_t b, int64_t e) {
    at::ThreadLocalStateGuard guard(state);
    for (int64_t h = b; h < e; ++h) body(h);
  });
}

// [T, S] additive: 0 where key j <= query i, -inf above the diagonal
torch::Tensor causal_additive(int64_t T, int64_t S, const torch::TensorOptions& opt) {
  return torch::full({T, S}, -std::numeric_limits<float>::infinity(), opt).triu(1);
}

// probs [H, T, S] = softmax(scale * q k^T + mask) per head; y [H, T, D] = probs v
std::pair<torch::Tensor, torch::Tensor> forward_heads(const torch::Tensor& q, const torch::Tensor& k,
                                                      const torch::Tensor& v, const torch::Tensor& mask) {
  const int64_t H = q.size(0), T = q.size(1), S = k.size(1), D = q.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto probs = torch::empty({H, T, S}, q.options());
  auto y = torch::empty({H, T, v.size(2)}, q.options());
  for_each_head(H, [&](int64_t h) {
    auto scores = torch::empty({T, S}, q.options());
    if (mask.defined())
      at::addmm_out(scores, mask, q[h], k[h].t(), /*beta=*/1.0, /*alpha=*/scale);
    else
      at::addmm_out(scores, scores, q[h], k[h].t(), /*beta=*/0.0, /*alpha=*/scale);
    auto p = probs[h];
    at::_softmax_out(p, scores, 1, false);
    auto yh = y[h];
    at::mm_out(yh, p, v[h]);
  });
  return {probs, y};
}

struct AttentionByHeadFn : public torch::autograd::Function<AttentionByHeadFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const c10::optional<torch::Tensor>& mask) {
    // (mask as an optional: an undefined Tensor argument is not accepted by Function::apply; the
    // mask is a constant, so it gets no gradient)
    auto [probs, y] = forward_heads(q.detach(), k.detach(), v.detach(), mask.value_or(torch::Tensor()));
    ctx->save_for_backward({q, k, v, probs});
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto q = saved[0].detach(), k = saved[1].detach(), v = saved[2].detach(), probs = saved[3].detach();
    const auto gy = grads[0].contiguous();
    const int64_t H = q.size(0), S = k.size(1), D = q.size(2);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    auto gq = torch::empty_like(q, torch::MemoryFormat::Contiguous);
    auto gk = torch::empty({H, S, D}, k.options());
    auto gv = torch::empty({H, S, v.size(2)}, v.options());
    for_each_head(H, [&](int64_t h) {
      auto p = probs[h], g = gy[h];
      auto gvh = gv[h];
      at::mm_out(gvh, p.t(), g);                    // dV = P^T dY           [S, Dv]
      auto gp = torch::mm(g, v[h].t());             // dP = dY V^T           [T, S]
      auto gs = at::_softmax_backward_data(gp, p, 1, torch::kFloat);  // dS = P * (dP - rowsum(dP * P))
      auto gqh = gq[h], gkh = gk[h];
      at::addmm_out(gqh, gqh, gs, k[h], 0.0, scale);      // dQ = scale dS K     [T, D]
      at::addmm_out(gkh, gkh, gs.t(), q[h], 0.0, scale);  // dK = scale dS^T Q   [S, D]
    });
    return {gq, gk, gv, torch::Tensor()};
  }
};
}  // namespace

bool attention_by_head_supported(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& mask) {
  auto f32 = [](const torch::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == torch::kFloat; };
  if (!f32(q) || !f32(k) || !f32(v) || q.dim() != 3 || k.dim() != 3 || v.dim() != 3) return false;
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(2) != q.size(2) || v.size(1) != k.size(1))
    return false;
  if (mask.defined() && (!f32(mask) || mask.dim() != 2 || mask.size(0) != q.size(1) || mask.size(1) != k.size(1)))
    return false;
  return true;
}

torch::Tensor attention_by_head(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& mask_in, bool causal) {
  if (!attention_by_head_supported(q, k, v, mask_in))
    throw ShapeError("attention_by_head: expected CPU float32 q [H, T, D], k/v [H, S, D], mask [T, S]");
  torch::Tensor mask = mask_in;
  if (causal) {
    if (q.size(1) != k.size(1)) throw ShapeError("attention_by_head: causal needs T == S");
    auto c = causal_additive(q.size(1), k.size(1), q.options());
    mask = mask.defined() ? mask + c : c;
  }
  if (mask.defined()) mask = mask.contiguous();
  if (torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad()))
    return AttentionByHeadFn::apply(q, k, v, mask.defined() ? c10::optional<torch::Tensor>(mask) : c10::nullopt);
  return forward_heads(q, k, v, mask).second;
}

}  // namespace rmkit::model
