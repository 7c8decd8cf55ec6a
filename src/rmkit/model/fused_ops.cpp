#include "rmkit/model/fused_ops.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "rmkit/model/blocks.h"
#include "rmkit/model/target_clones.h"

namespace rmkit::model {
namespace fused_detail {

// rows [r0, r1) of x [R, C]: r[i] = rsqrt(mean(x_i^2) + eps), y_i = w * (x_i * r[i]).
RMKIT_CLONES void rms_forward_rows(const float* x, const float* w, float* y, float* r, int64_t r0, int64_t r1,
                                   int64_t C, float eps) {
  for (int64_t i = r0; i < r1; ++i) {
    const float* xi = x + i * C;
    float* yi = y + i * C;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += xi[c] * xi[c];
    const float rr = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    r[i] = rr;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yi[c] = w[c] * (xi[c] * rr);
  }
}

// With g = gy * w and S = sum_c g_c x_c:  gx = r * g - x * r^3 * S / C;  gw += gy * x * r.
RMKIT_CLONES void rms_backward_rows(const float* x, const float* w, const float* r, const float* gy, float* gx,
                                    float* gw, int64_t r0, int64_t r1, int64_t C) {
  for (int64_t i = r0; i < r1; ++i) {
    const float* xi = x + i * C;
    const float* gi = gy + i * C;
    float* gxi = gx + i * C;
    const float rr = r[i];
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += gi[c] * w[c] * xi[c];
    const float k = rr * rr * rr * s / static_cast<float>(C);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      gxi[c] = rr * gi[c] * w[c] - xi[c] * k;
      gw[c] += gi[c] * xi[c] * rr;
    }
  }
}

// rows [r0, r1) of x [B*T, H, D] with cos/sin [B*T, D/2]; sign +1 rotates by the angle (forward),
// -1 by its negative (backward: the transpose of a rotation).
RMKIT_CLONES void rope_rows(const float* x, const float* cs, const float* sn, float* y, int64_t r0, int64_t r1,
                            int64_t H, int64_t D, float sign) {
  const int64_t h2 = D / 2;
  for (int64_t i = r0; i < r1; ++i) {
    const float* c = cs + i * h2;
    const float* s = sn + i * h2;
    for (int64_t h = 0; h < H; ++h) {
      const float* x1 = x + (i * H + h) * D;
      const float* x2 = x1 + h2;
      float* y1 = y + (i * H + h) * D;
      float* y2 = y1 + h2;
#pragma omp simd
      for (int64_t j = 0; j < h2; ++j) {
        const float sj = sign * s[j];
        const float a = x1[j], b = x2[j];
        y1[j] = a * c[j] - b * sj;
        y2[j] = b * c[j] + a * sj;
      }
    }
  }
}

}  // namespace fused_detail

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

int64_t grain_rows(int64_t row_elems) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, row_elems)); }

// x [R, C] contiguous -> (y [R, C], r [R])
std::pair<torch::Tensor, torch::Tensor> rms_forward(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  const int64_t C = x.size(-1), R = x.numel() / C;
  auto y = torch::empty_like(x);
  auto r = torch::empty({R}, x.options());
  const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
  float *yp = y.data_ptr<float>(), *rp = r.data_ptr<float>();
  at::parallel_for(0, R, grain_rows(C), [&](int64_t b, int64_t e) {
    fused_detail::rms_forward_rows(xp, wp, yp, rp, b, e, C, static_cast<float>(eps));
  });
  return {y, r};
}

struct RMSNormFn : public torch::autograd::Function<RMSNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w, double eps) {
    auto xc = x.contiguous(), wc = w.contiguous();
    auto [y, r] = rms_forward(xc, wc, eps);
    ctx->save_for_backward({xc, wc, r});
    return y;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &r = saved[2];
    auto gy = grads[0].contiguous();
    const int64_t C = x.size(-1), R = x.numel() / C;
    auto gx = torch::empty_like(x);
    auto partial = torch::zeros({at::get_num_threads(), C}, x.options());  // per-thread weight grads
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *rp = r.data_ptr<float>();
    const float* gp = gy.data_ptr<float>();
    float *gxp = gx.data_ptr<float>(), *pp = partial.data_ptr<float>();
    at::parallel_for(0, R, grain_rows(C), [&](int64_t b, int64_t e) {
      fused_detail::rms_backward_rows(xp, wp, rp, gp, gxp, pp + at::get_thread_num() * C, b, e, C);
    });
    return {gx, partial.sum(0), torch::Tensor()};
  }
};

// x [B, T, H, D] contiguous, cs/sn [B*T, D/2] contiguous
torch::Tensor rope_apply(const torch::Tensor& x, const torch::Tensor& cs, const torch::Tensor& sn, float sign) {
  const int64_t H = x.size(2), D = x.size(3), R = x.size(0) * x.size(1);
  auto y = torch::empty_like(x);
  const float *xp = x.data_ptr<float>(), *cp = cs.data_ptr<float>(), *sp = sn.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, R, grain_rows(H * D), [&](int64_t b, int64_t e) {
    fused_detail::rope_rows(xp, cp, sp, yp, b, e, H, D, sign);
  });
  return y;
}

struct RopeFn : public torch::autograd::Function<RopeFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cs,
                               const torch::Tensor& sn) {
    ctx->save_for_backward({cs, sn});
    return rope_apply(x.contiguous(), cs, sn, 1.f);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    return {rope_apply(grads[0].contiguous(), saved[0], saved[1], -1.f), torch::Tensor(), torch::Tensor()};
  }
};

bool cpu_f32(const torch::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == torch::kFloat; }
bool records_grad(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
}
}  // namespace

torch::Tensor rms_norm_composite(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto dt = x.scalar_type();
  auto h = x.to(torch::kFloat32);                                     // [..., C]
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);  // [..., C]
  return weight * h.to(dt);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!cpu_f32(x) || !cpu_f32(weight) || weight.dim() != 1 || x.dim() == 0 || weight.size(0) != x.size(-1) ||
      x.numel() == 0)
    return rms_norm_composite(x, weight, eps);
  if (records_grad(x, weight)) return RMSNormFn::apply(x, weight, eps);
  return rms_forward(x.contiguous(), weight.contiguous(), eps).first;
}

torch::Tensor rope_bthd_composite(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                  bool interleaved) {
  return apply_rope(x.transpose(1, 2), cos, sin, interleaved).transpose(1, 2);
}

torch::Tensor rope_bthd(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, bool interleaved) {
  const bool fusable = !interleaved && x.dim() == 4 && x.size(3) % 2 == 0 && cpu_f32(x) && cpu_f32(cos) &&
                       cpu_f32(sin) && !cos.requires_grad() && !sin.requires_grad() && x.numel() > 0 &&
                       cos.dim() == 4 && cos.size(1) == 1 && cos.size(2) == x.size(1) && cos.size(3) == x.size(3) / 2;
  if (!fusable) return rope_bthd_composite(x, cos, sin, interleaved);
  const int64_t B = x.size(0), T = x.size(1), h2 = x.size(3) / 2;
  // [B, 1, T, D/2] -> [B*T, D/2]
  auto cs = cos.squeeze(1).expand({B, T, h2}).contiguous().view({B * T, h2});
  auto sn = sin.squeeze(1).expand({B, T, h2}).contiguous().view({B * T, h2});
  if (torch::GradMode::is_enabled() && x.requires_grad()) return RopeFn::apply(x, cs, sn);
  return rope_apply(x.contiguous(), cs, sn, 1.f);
}

}  // namespace rmkit::model
