#include "rmkit/train/prefix_forward.h"

#include <algorithm>

#include "rmkit/core/error.h"

namespace rmkit::train {

namespace {
// Fills the packed layout of b (prefix_forward.h): per pair [prompt, chosen] then rejected.
void pack_pairs(const std::vector<const std::vector<int32_t>*>& prompts,
                const std::vector<const std::vector<int32_t>*>& chosen,
                const std::vector<const std::vector<int32_t>*>& rejected, PrefixBatch* bp) {
  PrefixBatch& b = *bp;
  const int64_t B = b.B, N = b.real_tokens, W = 1 + b.R;
  const auto L = torch::kLong;
  b.packed = true;
  b.slots = N;
  b.packed_ids = torch::empty({1, N}, L);
  b.layout.positions = torch::empty({N}, L);
  b.ext_index = torch::full({2 * B, W}, N, L);  // N: the zero row appended to the packed hidden
  auto ids = b.packed_ids.accessor<int64_t, 2>();
  auto pos = b.layout.positions.accessor<int64_t, 1>();
  auto ext = b.ext_index.accessor<int64_t, 2>();
  int64_t at = 0;
  auto put = [&](const std::vector<int32_t>& toks, int64_t first_pos) {
    for (size_t t = 0; t < toks.size(); ++t, ++at) {
      ids[0][at] = toks[t];
      pos[at] = first_pos + static_cast<int64_t>(t);
    }
  };
  for (int64_t i = 0; i < B; ++i) {
    const int64_t p = static_cast<int64_t>(prompts[i]->size());
    const int64_t c = static_cast<int64_t>(chosen[i]->size()), r = static_cast<int64_t>(rejected[i]->size());
    const int64_t start = at;
    if (p + c > 0) b.layout.segments.push_back({start, p + c, 0, 0});
    put(*prompts[i], 0);
    put(*chosen[i], p);
    if (r > 0) b.layout.segments.push_back({at, r, start, p});
    put(*rejected[i], p);
    const int64_t prompt_last = p > 0 ? start + p - 1 : N;
    ext[i][0] = ext[B + i][0] = prompt_last;
    for (int64_t t = 0; t < c; ++t) ext[i][1 + t] = start + p + t;
    for (int64_t t = 0; t < r; ++t) ext[B + i][1 + t] = start + p + c + t;
  }
  b.ext_index = b.ext_index.view({2 * B * W});
}
}  // namespace

PrefixBatch collate_prefix_pairs(const std::vector<const std::vector<int32_t>*>& prompts,
                                 const std::vector<const std::vector<int32_t>*>& chosen,
                                 const std::vector<const std::vector<int32_t>*>& rejected, int64_t pad_id,
                                 bool packed) {
  if (prompts.size() != chosen.size() || prompts.size() != rejected.size())
    throw ShapeError("collate_prefix_pairs: prompts/chosen/rejected counts differ (" +
                     std::to_string(prompts.size()) + "/" + std::to_string(chosen.size()) + "/" +
                     std::to_string(rejected.size()) + ")");
  if (prompts.empty()) throw ShapeError("collate_prefix_pairs: empty batch");
  PrefixBatch b;
  b.B = static_cast<int64_t>(prompts.size());
  const int64_t B = b.B;
  int64_t R = 0, longest_full = 0;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t p = static_cast<int64_t>(prompts[i]->size());
    const int64_t c = static_cast<int64_t>(chosen[i]->size()), r = static_cast<int64_t>(rejected[i]->size());
    b.P = std::max(b.P, p);
    R = std::max({R, c, r});
    longest_full = std::max(longest_full, p + std::max(c, r));
    b.real_tokens += p + c + r;
    b.unshared_real_tokens += 2 * p + c + r;
  }
  b.R = std::max<int64_t>(R, 1);  // the reply pass needs one column even when every reply is empty
  b.slots = B * b.P + 2 * B * R;
  b.unshared_slots = 2 * B * longest_full;
  b.unshared_T = longest_full;

  const auto L = torch::kLong;
  b.prompt_ids = torch::full({B, b.P}, pad_id, L);  // [B, P]
  b.prompt_mask = torch::zeros({B, b.P}, L);
  b.resp_ids = torch::full({2 * B, b.R}, pad_id, L);  // [2B, R]
  b.resp_mask = torch::zeros({2 * B, b.R}, L);
  b.prompt_len = torch::zeros({B}, L);
  b.resp_len = torch::zeros({2 * B}, L);
  auto pi = b.prompt_ids.accessor<int64_t, 2>();
  auto pm = b.prompt_mask.accessor<int64_t, 2>();
  auto ri = b.resp_ids.accessor<int64_t, 2>();
  auto rmask = b.resp_mask.accessor<int64_t, 2>();
  auto pl = b.prompt_len.accessor<int64_t, 1>();
  auto rl = b.resp_len.accessor<int64_t, 1>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& p = *prompts[i];
    const int64_t off = b.P - static_cast<int64_t>(p.size());  // left padding
    for (size_t t = 0; t < p.size(); ++t) {
      pi[i][off + static_cast<int64_t>(t)] = p[t];
      pm[i][off + static_cast<int64_t>(t)] = 1;
    }
    pl[i] = static_cast<int64_t>(p.size());
    for (int side = 0; side < 2; ++side) {
      const auto& r = side == 0 ? *chosen[i] : *rejected[i];
      const int64_t row = side * B + i;
      for (size_t t = 0; t < r.size(); ++t) {
        ri[row][static_cast<int64_t>(t)] = r[t];
        rmask[row][static_cast<int64_t>(t)] = 1;
      }
      rl[row] = static_cast<int64_t>(r.size());
    }
  }
  if (packed && b.real_tokens > 0) pack_pairs(prompts, chosen, rejected, &b);
  return b;
}

PrefixBatch collate_prefix_pairs(const std::vector<std::vector<int32_t>>& prompts,
                                 const std::vector<std::vector<int32_t>>& chosen,
                                 const std::vector<std::vector<int32_t>>& rejected, int64_t pad_id,
                                 bool packed) {
  auto ptrs = [](const std::vector<std::vector<int32_t>>& v) {
    std::vector<const std::vector<int32_t>*> out;
    out.reserve(v.size());
    for (const auto& x : v) out.push_back(&x);
    return out;
  };
  return collate_prefix_pairs(ptrs(prompts), ptrs(chosen), ptrs(rejected), pad_id, packed);
}

bool shared_layout_is_cheaper(const PrefixBatch& b, int64_t hidden) {
  if (b.packed) return true;
  const double B = static_cast<double>(b.B), P = static_cast<double>(b.P), R = static_cast<double>(b.R);
  const double T = static_cast<double>(b.unshared_T), d = static_cast<double>(hidden);
  const double shared = 6 * d * (B * P + 2 * B * R) + B * P * P + 2 * B * R * (P + R);
  const double unshared = 6 * d * (2 * B * T) + 2 * B * T * T;
  return shared < unshared;
}

namespace {
// lm_ids, lm_response_mask and last_index of the extended-reply view (layout-independent).
void fill_reply_view(const PrefixBatch& b, PrefixHidden* out) {
  const int64_t B = b.B, P = b.P;
  const auto L = torch::TensorOptions().dtype(torch::kLong).device(b.resp_ids.device());
  auto rows = torch::arange(B, L).repeat({2});  // [2B]: pair index of each chosen/rejected row
  auto last_prompt_id = P > 0 ? b.prompt_ids.select(1, P - 1).index_select(0, rows)  // [2B]
                              : torch::zeros({2 * B}, L);
  out->lm_ids = torch::cat({last_prompt_id.unsqueeze(1), b.resp_ids}, 1);  // [2B, 1+R]
  // Reply tokens count from column 1 on; the first reply token of an empty-prompt row has no
  // predecessor (the unshared layout's t = 0) and does not count.
  auto m = torch::cat({torch::zeros({2 * B, 1}, L), b.resp_mask.to(L)}, 1);  // [2B, 1+R]
  auto has_prompt = b.prompt_len.index_select(0, rows).gt(0).to(torch::kLong);  // [2B]
  m.select(1, 1).mul_(has_prompt);
  out->lm_response_mask = m;
  out->last_index = b.resp_len.to(L);  // [2B]
}

// Packed: one padding-free forward, then the extended-reply view gathered from its rows.
PrefixHidden packed_hidden(model::CausalLMImpl& lm, const PrefixBatch& b) {
  model::ForwardInput in;
  in.input_ids = b.packed_ids;  // [1, N]
  in.packed = &b.layout;
  auto h = lm.forward_hidden(in).squeeze(0);                      // [N, H]
  auto hz = torch::cat({h, torch::zeros({1, h.size(1)}, h.options())}, 0);  // [N+1, H]: row N = zeros
  PrefixHidden out;
  out.hidden = hz.index_select(0, b.ext_index).view({2 * b.B, 1 + b.R, h.size(1)});  // [2B, 1+R, H]
  fill_reply_view(b, &out);
  return out;
}
}  // namespace

PrefixHidden prefix_shared_hidden(model::CausalLMImpl& lm, const PrefixBatch& b) {
  if (b.packed) return packed_hidden(lm, b);
  const int64_t B = b.B, P = b.P;
  const auto dev = b.resp_ids.device();
  const auto L = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto rows = torch::arange(B, L).repeat({2});  // [2B]: pair index of each chosen/rejected row

  model::KVCache cache;
  torch::Tensor prompt_last;  // [B, H] hidden at column P-1 (each prompt's last real token)
  model::ForwardInput rin;
  rin.input_ids = b.resp_ids;
  if (P > 0) {
    model::ForwardInput pin;
    pin.input_ids = b.prompt_ids;     // [B, P]
    pin.attention_mask = b.prompt_mask;
    pin.cache = &cache;               // fresh: filled with the prompt's k/v, grad-connected
    prompt_last = lm.forward_hidden(pin).select(1, P - 1);  // [B, P, H] -> [B, H]
    // Expand the cache to the 2B reply rows; index_select's backward sums both rows' gradients
    // into the shared prompt computation.
    for (size_t l = 0; l < cache.k.size(); ++l) {
      cache.k[l] = cache.k[l].index_select(0, rows);  // [2B, Hkv, P, D]
      cache.v[l] = cache.v[l].index_select(0, rows);
    }
    rin.attention_mask = torch::cat({b.prompt_mask.index_select(0, rows), b.resp_mask}, 1);  // [2B, P+R]
    rin.cache = &cache;
  } else {
    rin.attention_mask = b.resp_mask;  // [2B, R]
  }
  auto rh = lm.forward_hidden(rin);  // [2B, R, H]
  cache.clear();

  PrefixHidden out;
  auto first = P > 0 ? prompt_last.index_select(0, rows).unsqueeze(1)                 // [2B, 1, H]
                     : torch::zeros({2 * B, 1, rh.size(2)}, rh.options());
  out.hidden = torch::cat({first, rh}, 1);  // [2B, 1+R, H]
  fill_reply_view(b, &out);
  return out;
}

PrefixPairOutput prefix_shared_forward(RewardModelImpl& rm, const PrefixBatch& b) {
  PrefixHidden h = prefix_shared_hidden(rm.backbone(), b);
  const int64_t B = b.B, H = h.hidden.size(2);
  auto idx = h.last_index.view({2 * B, 1, 1}).expand({2 * B, 1, H});
  auto pooled = h.hidden.gather(1, idx).squeeze(1);  // [2B, H]
  PrefixPairOutput out;
  out.all.hidden = h.hidden;
  out.all.last_index = h.last_index;
  out.all.rewards = rm.score(pooled);  // [2B]
  if (rm.head_config().num_attributes > 0) {
    // RewardModelImpl keeps its regression head private; it is the Linear registered as
    // "score_regression" (reward_model.cpp), applied to the same pooled states as forward().
    auto params = rm.named_parameters(true);
    const auto* w = params.find("score_regression.weight");
    const auto* bias = params.find("score_regression.bias");
    if (!w || !bias) throw ShapeError("prefix_shared_forward: reward model has no score_regression head");
    out.all.attributes = torch::linear(pooled, *w, *bias).to(torch::kFloat32);  // [2B, k]
  }
  out.chosen = out.all.rewards.slice(0, 0, B);
  out.rejected = out.all.rewards.slice(0, B, 2 * B);
  out.lm_ids = h.lm_ids;
  out.lm_response_mask = h.lm_response_mask;
  return out;
}

PrefixPairOutput prefix_shared_forward(RewardModelImpl& rm, const std::vector<std::vector<int32_t>>& prompts,
                                       const std::vector<std::vector<int32_t>>& chosen,
                                       const std::vector<std::vector<int32_t>>& rejected, int64_t pad_id) {
  return prefix_shared_forward(rm, collate_prefix_pairs(prompts, chosen, rejected, pad_id));
}

}  // namespace rmkit::train
