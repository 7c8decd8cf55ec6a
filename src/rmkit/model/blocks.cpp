#include "rmkit/model/blocks.h"
#include "rmkit/model/attention_kv.h"

#include <cmath>
#include <limits>
#include <vector>

#include "rmkit/core/error.h"
#include "rmkit/model/attention_cpu.h"
#include "rmkit/model/decode_gemm.h"
#include "rmkit/model/fused_ops.h"
#include "rmkit/model/torch_compat.h"

namespace rmkit::model {

namespace {
std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}
}  // namespace

// ---------------------------------------------------------------------------------------- norms

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) { return rms_norm(x, weight, eps_); }

Conv1DImpl::Conv1DImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::empty({in, out}).normal_(0.0, 0.02));
  bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor Conv1DImpl::forward(const torch::Tensor& x) {
  // x [..., in] @ W [in, out] + b [out]
  if (auto y = decode_dense(x, weight, bias, WeightLayout::kInOut)) return *y;  // decode steps
  return torch::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view([&] {
    auto s = x.sizes().vec();
    s.back() = weight.size(1);
    return s;
  }());
}

// ----------------------------------------------------------------------------------------- RoPE

torch::Tensor rope_inv_freq(const ModelConfig& cfg) {
  const int64_t d = cfg.head_dim;
  std::vector<double> f(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) f[i] = 1.0 / std::pow(cfg.rope_theta, static_cast<double>(2 * i) / d);
  const RopeScaling& rs = cfg.rope_scaling;
  if (rs.type == "linear") {
    for (auto& x : f) x /= rs.factor;
  } else if (rs.type == "llama3") {
    // transformers.modeling_rope_utils._compute_llama3_parameters
    const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
    const double low_freq_wavelen = old_ctx / rs.low_freq_factor;
    const double high_freq_wavelen = old_ctx / rs.high_freq_factor;
    for (auto& x : f) {
      const double wavelen = 2.0 * M_PI / x;
      double inv = wavelen > low_freq_wavelen ? x / rs.factor : x;
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (medium) {
        const double smooth = (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        inv = (1.0 - smooth) * inv / rs.factor + smooth * inv;
      }
      x = inv;
    }
  } else if (!rs.type.empty()) {
    throw ConfigError("rope_scaling: unsupported rope_type '" + rs.type + "'");
  }
  return torch::tensor(f, torch::kFloat64);
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions,
                                                     torch::ScalarType dtype) {
  // angles [B, T, D/2] = positions [B, T, 1] * inv_freq [D/2], in float64 then cast.
  auto ang = positions.to(torch::kFloat64).unsqueeze(-1) * inv_freq.to(positions.device());
  return {ang.cos().to(dtype).unsqueeze(1), ang.sin().to(dtype).unsqueeze(1)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos_in, const torch::Tensor& sin_in,
                         bool interleaved_layout) {
  // Under autocast q/k arrive in bf16 while the tables were built for the embedding dtype.
  const auto cos = cos_in.scalar_type() == x.scalar_type() ? cos_in : cos_in.to(x.scalar_type());
  const auto sin = sin_in.scalar_type() == x.scalar_type() ? sin_in : sin_in.to(x.scalar_type());
  const bool interleaved = interleaved_layout;
  const int64_t d = x.size(-1), h = d / 2;
  if (interleaved) {
    auto s = x.sizes().vec();
    s.back() = h;
    s.push_back(2);
    auto xr = x.reshape(s);                      // [B, H, T, D/2, 2]
    auto x1 = xr.select(-1, 0), x2 = xr.select(-1, 1);  // [B, H, T, D/2]
    return torch::stack({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1).flatten(-2);
  }
  auto x1 = x.slice(-1, 0, h), x2 = x.slice(-1, h);  // [B, H, T, D/2] each
  return torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);
}

// ------------------------------------------------------------------------------------ attention

namespace {
// [1, 1, T, S] bool: query i (at key index first_query + i) may see keys 0..first_query + i.
torch::Tensor causal_allowed(int64_t first_query, int64_t T, int64_t S, torch::Device dev) {
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto q_idx = torch::arange(first_query, first_query + T, lopt).view({1, 1, T, 1});
  auto k_idx = torch::arange(S, lopt).view({1, 1, 1, S});
  return k_idx <= q_idx;
}

// Additive attention mask from a bool "allowed" tensor: 0 where allowed, -inf elsewhere.
torch::Tensor additive_mask(const torch::Tensor& allowed, torch::ScalarType dtype) {
  return torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(dtype).device(allowed.device()))
      .masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

// Context of a packed forward: validates the layout and splits each segment into query chunks,
// with the additive mask of every chunk that is not a whole unprefixed segment.
AttentionContext packed_attention_context(const ForwardInput& in, torch::ScalarType dtype) {
  const auto& ids = in.input_ids;
  const PackedLayout& pl = *in.packed;
  if (ids.size(0) != 1) throw ShapeError("packed forward: input_ids must be [1, N], got " + shape_str(ids));
  if (in.cache || in.attention_mask.defined() || in.position_ids.defined())
    throw ShapeError("packed forward: cache, attention_mask and position_ids must be unset (the layout carries them)");
  const int64_t N = ids.size(1);
  if (!pl.positions.defined() || pl.positions.dim() != 1 || pl.positions.size(0) != N)
    throw ShapeError("packed forward: positions must be [" + std::to_string(N) + "], got " +
                     (pl.positions.defined() ? shape_str(pl.positions) : "undefined"));
  AttentionContext ctx;
  ctx.batch = 1;
  ctx.steps = N;
  ctx.packed = true;
  ctx.segments = pl.segments;
  if (in.seq_kv) {  // per-sequence caches: validated here, attention in attention_kv.cpp
    if (in.seq_kv->size() != pl.segments.size())
      throw ShapeError("packed forward: " + std::to_string(in.seq_kv->size()) + " seq_kv entries for " +
                       std::to_string(pl.segments.size()) + " segments");
    ctx.seq_kv = *in.seq_kv;
  }
  const auto dev = ids.device();
  ctx.positions = pl.positions.to(torch::TensorOptions().dtype(torch::kLong).device(dev)).view({1, N});
  int64_t next = 0;
  for (size_t i = 0; i < pl.segments.size(); ++i) {
    const PackedSegment& g = pl.segments[i];
    const std::string where = "packed forward: segment " + std::to_string(i) + " ";
    if (g.start != next || g.length < 1)
      throw ShapeError(where + "covers [" + std::to_string(g.start) + ", " + std::to_string(g.start + g.length) +
                       "), expected to start at " + std::to_string(next) + " with length >= 1");
    if (g.prefix_length < 0 || g.prefix_start < 0 || (g.prefix_length > 0 && g.prefix_start + g.prefix_length > g.start))
      throw ShapeError(where + "has prefix [" + std::to_string(g.prefix_start) + ", " +
                       std::to_string(g.prefix_start + g.prefix_length) + "), expected a range before its start " +
                       std::to_string(g.start));
    next = g.start + g.length;
    if (!ctx.seq_kv.empty()) {
      const SeqKV* kv = ctx.seq_kv[i];
      if (!kv || g.prefix_length > 0 || kv->capacity() < kv->length + g.length)
        throw ShapeError(where + "needs a SeqKV with room for " + std::to_string(g.length) +
                         " more tokens and no in-row prefix");
      continue;
    }
    const int64_t step = pl.attention_chunk > 0 ? pl.attention_chunk : g.length;
    for (int64_t b = 0; b < g.length; b += step) {
      AttentionContext::Chunk c;
      c.segment = static_cast<int64_t>(i);
      c.begin = b;
      c.end = std::min(g.length, b + step);
      const int64_t q = c.end - c.begin, s_len = g.prefix_length + c.end;
      if (g.prefix_length == 0 && c.begin == 0 && c.end == g.length) {
        c.is_causal = q > 1;
      } else {  // keys: the prefix, then the segment's own tokens; query c.begin + i sits at key prefix_length + c.begin + i
        c.mask = additive_mask(causal_allowed(g.prefix_length + c.begin, q, s_len, dev), dtype);
      }
      ctx.chunks.push_back(std::move(c));
    }
  }
  if (next != N)
    throw ShapeError("packed forward: segments cover " + std::to_string(next) + " tokens, input_ids has " +
                     std::to_string(N));
  return ctx;
}
}  // namespace

AttentionContext make_attention_context(const ForwardInput& in, torch::ScalarType dtype) {
  const auto& ids = in.input_ids;
  if (!ids.defined() || ids.dim() != 2)
    throw ShapeError("forward: input_ids must be [batch, seq], got " + (ids.defined() ? shape_str(ids) : "undefined"));
  if (in.packed) return packed_attention_context(in, dtype);
  AttentionContext ctx;
  ctx.batch = ids.size(0);
  ctx.steps = ids.size(1);
  ctx.cache = in.cache;
  ctx.past = in.cache ? in.cache->length() : 0;
  const int64_t B = ctx.batch, T = ctx.steps, P = ctx.past, S = P + T;
  if (T == 0) throw ShapeError("forward: input_ids has no tokens");
  if (P > 0 && in.cache->k[0].size(0) != B)
    throw ShapeError("forward: cache batch " + std::to_string(in.cache->k[0].size(0)) + " != input batch " +
                     std::to_string(B));
  const auto dev = ids.device();
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(dev);

  torch::Tensor am = in.attention_mask;
  if (am.defined()) {
    if (am.dim() != 2 || am.size(0) != B || am.size(1) != S)
      throw ShapeError("forward: attention_mask must be [" + std::to_string(B) + ", " + std::to_string(S) +
                       "] (cached + new tokens), got " + shape_str(am));
    am = am.to(dev);
  }
  const bool padded = am.defined() && !(am != 0).all().item<bool>();

  if (in.position_ids.defined()) {
    if (in.position_ids.dim() != 2 || in.position_ids.size(0) != B || in.position_ids.size(1) != T)
      throw ShapeError("forward: position_ids must be [" + std::to_string(B) + ", " + std::to_string(T) + "], got " +
                       shape_str(in.position_ids));
    ctx.positions = in.position_ids.to(lopt);
  } else if (am.defined()) {
    ctx.positions = (am.to(torch::kLong).cumsum(1) - 1).clamp_min(0).slice(1, P);  // [B, T]
  } else {
    ctx.positions = torch::arange(P, S, lopt).unsqueeze(0).expand({B, T});
  }

  if (!padded && P == 0) {
    ctx.is_causal = T > 1;  // plain causal attention over the whole block
  } else if (padded || T > 1) {
    auto allowed = causal_allowed(P, T, S, dev);  // [1, 1, T, S] causal, offset by the cache
    if (padded) {
      auto key_ok = (am != 0).view({B, 1, 1, S});
      auto own = torch::arange(S, lopt).view({1, 1, 1, S}) == torch::arange(P, S, lopt).view({1, 1, T, 1});
      allowed = (allowed & key_ok) | own;  // own key always: no fully masked row
    }
    ctx.mask = additive_mask(allowed, dtype);
  }  // else: one new token, no padding: it may see every cached key; no mask.
  return ctx;
}

namespace {
// One query chunk's attention: q [1, H, Lc, D] against k/v [1, H, S, D], mask [1, 1, Lc, S] or
// undefined. CPU float32 runs head-parallel (attention_cpu.h); other dtypes and devices use sdpa.
torch::Tensor attend_chunk(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& mask, bool causal) {
  auto m = mask.defined() ? mask.view({mask.size(-2), mask.size(-1)}) : mask;
  auto q3 = q.squeeze(0), k3 = k.squeeze(0), v3 = v.squeeze(0);
  if (attention_by_head_supported(q3, k3, v3, m)) return attention_by_head(q3, k3, v3, m, causal).unsqueeze(0);
  return compat::sdpa(q, k, v, mask, causal);
}

// q [1, H, N, D], k/v [1, H, N, D] (kv heads already repeated) -> [1, N, H*D]: one attention per
// query chunk (make_attention_context); a chunk's keys are its segment's prefix, then the
// segment's own tokens up to the chunk's end. q is split by chunks and k/v by segments
// (split_with_sizes: one cat in backward) rather than narrowed from the whole row, whose backward
// would zero-fill a full-row gradient per chunk.
torch::Tensor attend_packed(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const AttentionContext& ctx) {
  const int64_t H = q.size(1), N = q.size(2), D = q.size(3);
  std::vector<int64_t> chunk_len, seg_len;
  for (const auto& c : ctx.chunks) chunk_len.push_back(c.end - c.begin);
  for (const auto& g : ctx.segments) seg_len.push_back(g.length);
  auto qc = q.split_with_sizes(chunk_len, 2);  // [1, H, Lc, D] each
  auto kg = k.split_with_sizes(seg_len, 2);    // [1, H, L, D] each
  auto vg = v.split_with_sizes(seg_len, 2);
  // The prefix's keys: the head of the segment that starts there (the packed pair layout), else
  // a slice of the whole row.
  auto prefix_of = [&](const PackedSegment& g, const std::vector<torch::Tensor>& parts, const torch::Tensor& all) {
    for (size_t t = 0; t < ctx.segments.size(); ++t)
      if (ctx.segments[t].start == g.prefix_start && ctx.segments[t].length >= g.prefix_length)
        return parts[t].narrow(2, 0, g.prefix_length);
    return all.narrow(2, g.prefix_start, g.prefix_length);
  };
  std::vector<torch::Tensor> ys;
  ys.reserve(ctx.chunks.size());
  int64_t keys_of = -1;  // segment whose keys ks/vs hold: [prefix, own tokens] [1, H, p + L, D]
  torch::Tensor ks, vs;
  for (size_t ci = 0; ci < ctx.chunks.size(); ++ci) {
    const auto& c = ctx.chunks[ci];
    const PackedSegment& g = ctx.segments[static_cast<size_t>(c.segment)];
    if (keys_of != c.segment) {
      keys_of = c.segment;
      ks = kg[static_cast<size_t>(c.segment)];
      vs = vg[static_cast<size_t>(c.segment)];
      if (g.prefix_length > 0) {
        ks = torch::cat({prefix_of(g, kg, k), ks}, 2);
        vs = torch::cat({prefix_of(g, vg, v), vs}, 2);
      }
    }
    const int64_t visible = g.prefix_length + c.end;
    auto kc = visible == ks.size(2) ? ks : ks.narrow(2, 0, visible);
    auto vc = visible == vs.size(2) ? vs : vs.narrow(2, 0, visible);
    ys.push_back(attend_chunk(qc[ci], kc, vc, c.mask, c.is_causal));
  }
  auto y = ys.size() == 1 ? ys[0] : torch::cat(ys, 2);  // [1, H, N, D]
  return y.transpose(1, 2).reshape({1, N, H * D});
}
}  // namespace

torch::Tensor attend(const torch::Tensor& q, torch::Tensor k, torch::Tensor v, const AttentionContext& ctx,
                     int64_t layer) {
  if (!ctx.seq_kv.empty()) return attend_packed_kv(q, k, v, ctx, layer);
  if (ctx.cache) {
    auto& c = *ctx.cache;
    if (static_cast<int64_t>(c.k.size()) <= layer) {
      c.k.resize(layer + 1);
      c.v.resize(layer + 1);
    }
    if (c.k[layer].defined()) {
      k = torch::cat({c.k[layer], k}, 2);  // [B, Hkv, P+T, D]
      v = torch::cat({c.v[layer], v}, 2);
    }
    c.k[layer] = k;
    c.v[layer] = v;
  }
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  if (H != Hkv) {  // GQA / MQA: query head h uses kv head h / (H / Hkv), as HF's repeat_kv
    const int64_t rep = H / Hkv;
    k = k.unsqueeze(2).expand({B, Hkv, rep, S, D}).reshape({B, H, S, D});
    v = v.unsqueeze(2).expand({B, Hkv, rep, S, D}).reshape({B, H, S, D});
  }
  if (k.scalar_type() != q.scalar_type()) k = k.to(q.scalar_type());  // mixed dtypes under autocast
  if (v.scalar_type() != q.scalar_type()) v = v.to(q.scalar_type());
  if (ctx.packed) return attend_packed(q, k, v, ctx);
  auto y = compat::sdpa(q, k, v, ctx.mask, ctx.is_causal);  // [B, H, T, D]
  return y.transpose(1, 2).reshape({B, T, H * D});
}

// ------------------------------------------------------------------------------------ misc

torch::Tensor activation(const torch::Tensor& x, const std::string& act) {
  if (act == "silu" || act == "swish") return torch::silu(x);
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") return torch::gelu(x, "tanh");
  if (act == "gelu") return torch::gelu(x);
  if (act == "relu") return torch::relu(x);
  throw ConfigError("hidden_act: unsupported activation '" + act + "'");
}

void init_parameters(torch::nn::Module& m, double std) {
  torch::NoGradGuard ng;
  for (auto& kv : m.named_parameters()) {
    auto& p = kv.value();
    const std::string& name = kv.key();
    if (p.dim() >= 2) p.normal_(0.0, std);
    else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) p.zero_();
    else p.fill_(1.0);
  }
}

}  // namespace rmkit::model
