#include "rmkit/model/attention_kv.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "rmkit/core/error.h"
#include "rmkit/model/target_clones.h"

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

namespace {

// One decode token (L = 1) of one query head against its parts' keys: plain loops over the
// contiguous [Hkv, capacity, D] caches, no tensor op dispatch (a step of 16 sequences would
// otherwise spend most of its time issuing ~10 small ops per sequence and layer).
RMKIT_CLONES void decode_head(const float* q, int64_t D, float scale,
                              const std::vector<std::pair<const float*, int64_t>>& keys,
                              const std::vector<const float*>& values, float* out, std::vector<float>& scores) {
  int64_t S = 0;
  for (const auto& k : keys) S += k.second;
  scores.resize(static_cast<size_t>(S));
  float mx = -std::numeric_limits<float>::infinity();
  int64_t at = 0;
  for (const auto& [kp, n] : keys)
    for (int64_t s = 0; s < n; ++s, ++at) {
      const float* kr = kp + s * D;
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < D; ++d) dot += q[d] * kr[d];
      scores[static_cast<size_t>(at)] = dot * scale;
      mx = std::max(mx, scores[static_cast<size_t>(at)]);
    }
  double sum = 0;
  for (auto& x : scores) sum += (x = std::exp(x - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t d = 0; d < D; ++d) out[d] = 0.f;
  at = 0;
  for (size_t p = 0; p < keys.size(); ++p)
    for (int64_t s = 0; s < keys[p].second; ++s, ++at) {
      const float w = scores[static_cast<size_t>(at)] * inv;
      const float* vr = values[p] + s * D;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) out[d] += w * vr[d];
    }
}

}  // namespace

torch::Tensor attend_packed_kv(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const AttentionContext& ctx, int64_t layer) {
  const int64_t H = q.size(1), N = q.size(2), D = q.size(3), Hkv = k.size(1);
  const int64_t g = H / Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const size_t lay = static_cast<size_t>(layer);
  // 1. append every segment's keys/values to its cache. fp32 rows are copied with plain loops: a
  // decode step of 16 sequences would otherwise issue ~8 tensor ops per sequence and layer here.
  const bool raw = k.scalar_type() == torch::kFloat32 && v.scalar_type() == torch::kFloat32 && k.stride(3) == 1 &&
                   v.stride(3) == 1;
  for (size_t s = 0; s < ctx.segments.size(); ++s) {
    const PackedSegment& seg = ctx.segments[s];
    SeqKV& kv = *ctx.seq_kv[s];
    if (kv.k.size() <= lay) throw ShapeError("seq_kv: cache has no layer " + std::to_string(layer));
    if (kv.length + seg.length > kv.capacity())
      throw ShapeError("seq_kv: " + std::to_string(kv.length + seg.length) + " tokens do not fit the cache's capacity " +
                       std::to_string(kv.capacity()) + " (reserve first)");
    if (raw && kv.k[lay].scalar_type() == torch::kFloat32 && kv.v[lay].scalar_type() == torch::kFloat32) {
      const int64_t cap = kv.capacity();
      for (const auto& [src, dst] : {std::pair<const torch::Tensor*, torch::Tensor*>{&k, &kv.k[lay]}, {&v, &kv.v[lay]}}) {
        const float* sp = src->data_ptr<float>();
        float* dp = dst->data_ptr<float>();
        for (int64_t j = 0; j < Hkv; ++j)
          for (int64_t t = 0; t < seg.length; ++t)  // [1, Hkv, N, D] (strided) -> [Hkv, cap, D]
            std::copy_n(sp + j * src->stride(1) + (seg.start + t) * src->stride(2), D,
                        dp + (j * cap + kv.length + t) * D);
      }
      continue;
    }
    kv.k[lay].narrow(1, kv.length, seg.length).copy_(k[0].narrow(1, seg.start, seg.length));
    kv.v[lay].narrow(1, kv.length, seg.length).copy_(v[0].narrow(1, seg.start, seg.length));
  }
  auto y = torch::empty({N, H, D}, torch::TensorOptions().dtype(torch::kFloat32));  // [N, H, D]
  // 2. decode tokens (one-token segments over fp32 caches): raw loops, parallel over (segment, head)
  std::vector<size_t> decode;
  for (size_t s = 0; s < ctx.segments.size(); ++s)
    if (ctx.segments[s].length == 1 && ctx.seq_kv[s]->k[lay].scalar_type() == torch::kFloat32) decode.push_back(s);
  if (!decode.empty()) {
    auto qc = q[0].transpose(0, 1).to(torch::kFloat32).contiguous();  // [N, H, D]
    const float* qp = qc.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    const int64_t work = static_cast<int64_t>(decode.size()) * H;
    at::parallel_for(0, work, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> scores;
      std::vector<std::pair<const float*, int64_t>> keys;
      std::vector<const float*> values;
      for (int64_t w = begin; w < end; ++w) {
        const size_t s = decode[static_cast<size_t>(w / H)];
        const int64_t h = w % H, j = h / g, t = ctx.segments[s].start;
        const SeqKV& kv = *ctx.seq_kv[s];
        keys.clear();
        values.clear();
        if (kv.prefix) {
          const SeqKV& p = *kv.prefix;
          const int64_t cap = p.capacity();
          keys.emplace_back(p.k[lay].data_ptr<float>() + j * cap * D, p.length);
          values.push_back(p.v[lay].data_ptr<float>() + j * cap * D);
        }
        const int64_t cap = kv.capacity();
        keys.emplace_back(kv.k[lay].data_ptr<float>() + j * cap * D, kv.length + 1);
        values.push_back(kv.v[lay].data_ptr<float>() + j * cap * D);
        decode_head(qp + (t * H + h) * D, D, static_cast<float>(scale), keys, values, yp + (t * H + h) * D, scores);
      }
    });
  }
  // 3. longer segments (prefill chunks): tensor ops per segment
  for (size_t s = 0; s < ctx.segments.size(); ++s) {
    const PackedSegment& seg = ctx.segments[s];
    SeqKV& kv = *ctx.seq_kv[s];
    if (std::find(decode.begin(), decode.end(), s) != decode.end()) continue;
    const int64_t L = seg.length, past = kv.length;
    auto& ck = kv.k[lay];
    auto& cv = kv.v[lay];
    // query heads of kv head j are j*g .. j*g+g-1 (HF repeat_kv): [H, L, D] -> [Hkv, g*L, D]
    auto qs = q[0].narrow(1, seg.start, L).reshape({Hkv, g * L, D}).to(ck.scalar_type()) * scale;
    std::vector<torch::Tensor> parts_k, parts_v;
    if (kv.prefix) {
      const SeqKV& p = *kv.prefix;
      parts_k.push_back(p.k[lay].narrow(1, 0, p.length));
      parts_v.push_back(p.v[lay].narrow(1, 0, p.length));
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
    y.narrow(0, seg.start, L).copy_(out.view({H, L, D}).transpose(0, 1));
  }
  return y.view({1, N, H * D}).to(q.scalar_type());
}

}  // namespace rmkit::model
