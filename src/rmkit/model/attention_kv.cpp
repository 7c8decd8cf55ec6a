#include "rmkit/model/attention_kv.h"

#include <cmath>
#include <limits>

#include "rmkit/core/error.h"

namespace rmkit::model {

void SeqKV::reserve(int64_t tokens, const ModelConfig& cfg, torch::ScalarType dtype) {
  if (tokens <= capacity()) return;
  const int64_t L = cfg.num_hidden_layers, Hkv = cfg.num_key_value_heads > 0 ? cfg.num_key_value_heads : cfg.num_attention_heads;
  const int64_t D = cfg.head_dim > 0 ? cfg.head_dim : cfg.hidden_size / cfg.num_attention_heads;
  const int64_t cap = std::max<int64_t>(tokens, std::max<int64_t>(16, 2 * capacity()));
  auto opts = torch::TensorOptions().dtype(dtype);
  std::vector<torch::Tensor> nk(static_cast<size_t>(L)), nv(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    nk[l] = torch::empty({Hkv, cap, D}, opts);
    nv[l] = torch::empty({Hkv, cap, D}, opts);
    if (length > 0) {
      nk[l].narrow(1, 0, length).copy_(k[l].narrow(1, 0, length));
      nv[l].narrow(1, 0, length).copy_(v[l].narrow(1, 0, length));
    }
  }
  k = std::move(nk);
  v = std::move(nv);
}

int64_t SeqKV::bytes() const {
  int64_t b = 0;
  for (size_t l = 0; l < k.size(); ++l) b += k[l].numel() * k[l].element_size() + v[l].numel() * v[l].element_size();
  return b;
}

int64_t SeqKV::bytes_per_token(const ModelConfig& cfg, torch::ScalarType dtype) {
  const int64_t Hkv = cfg.num_key_value_heads > 0 ? cfg.num_key_value_heads : cfg.num_attention_heads;
  const int64_t D = cfg.head_dim > 0 ? cfg.head_dim : cfg.hidden_size / cfg.num_attention_heads;
  return 2 * cfg.num_hidden_layers * Hkv * D * static_cast<int64_t>(c10::elementSize(dtype));
}

torch::Tensor attend_packed_kv(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const AttentionContext& ctx, int64_t layer) {
  const int64_t H = q.size(1), N = q.size(2), D = q.size(3), Hkv = k.size(1);
  const int64_t g = H / Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<torch::Tensor> ys;
  ys.reserve(ctx.segments.size());
  for (size_t s = 0; s < ctx.segments.size(); ++s) {
    const PackedSegment& seg = ctx.segments[s];
    SeqKV& kv = *ctx.seq_kv[s];
    if (static_cast<int64_t>(kv.k.size()) <= layer) throw ShapeError("seq_kv: cache has no layer " + std::to_string(layer));
    const int64_t L = seg.length, past = kv.length;
    auto& ck = kv.k[static_cast<size_t>(layer)];
    auto& cv = kv.v[static_cast<size_t>(layer)];
    ck.narrow(1, past, L).copy_(k[0].narrow(1, seg.start, L));
    cv.narrow(1, past, L).copy_(v[0].narrow(1, seg.start, L));
    // query heads of kv head j are j*g .. j*g+g-1 (HF repeat_kv): [H, L, D] -> [Hkv, g*L, D]
    auto qs = q[0].narrow(1, seg.start, L).reshape({Hkv, g * L, D}).to(ck.scalar_type()) * scale;
    std::vector<torch::Tensor> parts_k, parts_v;
    if (kv.prefix) {
      const SeqKV& p = *kv.prefix;
      parts_k.push_back(p.k[static_cast<size_t>(layer)].narrow(1, 0, p.length));
      parts_v.push_back(p.v[static_cast<size_t>(layer)].narrow(1, 0, p.length));
    }
    parts_k.push_back(ck.narrow(1, 0, past + L));
    parts_v.push_back(cv.narrow(1, 0, past + L));
    std::vector<torch::Tensor> sc;
    for (const auto& pk : parts_k) sc.push_back(torch::matmul(qs, pk.transpose(1, 2)));  // [Hkv, g*L, S_i]
    auto scores = sc.size() == 1 ? sc[0] : torch::cat(sc, -1);                          // [Hkv, g*L, S]
    const int64_t S = scores.size(-1);
    if (L > 1) {  // causal within the new tokens: query i sees keys up to S - L + i
      auto qi = torch::arange(L, torch::kLong).view({L, 1}) + (S - L);
      auto kj = torch::arange(S, torch::kLong).view({1, S});
      auto mask = torch::zeros({L, S}, scores.options())
                      .masked_fill(kj > qi, -std::numeric_limits<double>::infinity());
      scores = (scores.view({Hkv, g, L, S}) + mask).view({Hkv, g * L, S});
    }
    auto prob = torch::softmax(scores, -1);
    torch::Tensor out;
    int64_t off = 0;
    for (size_t i = 0; i < parts_v.size(); ++i) {
      const int64_t len = parts_v[i].size(1);
      auto o = torch::matmul(prob.narrow(-1, off, len), parts_v[i]);  // [Hkv, g*L, D]
      out = out.defined() ? out + o : o;
      off += len;
    }
    ys.push_back(out.view({H, L, D}).to(q.scalar_type()));
  }
  auto y = ys.size() == 1 ? ys[0] : torch::cat(ys, 1);  // [H, N, D]
  return y.transpose(0, 1).reshape({1, N, H * D});
}

}  // namespace rmkit::model
