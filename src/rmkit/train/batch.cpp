#include "rmkit/train/batch.h"

#include <cmath>

namespace rmkit::train {

void pad_sequences(const std::vector<const std::vector<int32_t>*>& prompts,
                   const std::vector<const std::vector<int32_t>*>& replies, int64_t pad_id,
                   torch::Tensor* ids, torch::Tensor* mask, torch::Tensor* response_mask) {
  const int64_t N = static_cast<int64_t>(prompts.size());
  int64_t T = 1;
  for (int64_t i = 0; i < N; ++i)
    T = std::max<int64_t>(T, static_cast<int64_t>(prompts[i]->size() + replies[i]->size()));
  auto id_t = torch::full({N, T}, pad_id, torch::kLong);
  auto m_t = torch::zeros({N, T}, torch::kLong);
  auto r_t = torch::zeros({N, T}, torch::kLong);
  auto id_a = id_t.accessor<int64_t, 2>();
  auto m_a = m_t.accessor<int64_t, 2>();
  auto r_a = r_t.accessor<int64_t, 2>();
  for (int64_t i = 0; i < N; ++i) {
    int64_t t = 0;
    for (int32_t tok : *prompts[i]) { id_a[i][t] = tok; m_a[i][t] = 1; ++t; }
    for (int32_t tok : *replies[i]) { id_a[i][t] = tok; m_a[i][t] = 1; r_a[i][t] = 1; ++t; }
  }
  *ids = id_t;
  *mask = m_t;
  *response_mask = r_t;
}

PairBatch collate_pairs(const std::vector<EncodedExample>& examples, const std::vector<size_t>& idx,
                        int64_t pad_id, bool with_teacher, bool shared_prefix, int64_t hidden_size,
                        int64_t num_attributes) {
  PairBatch b;
  b.B = static_cast<int64_t>(idx.size());
  PrefixBatch pb;
  if (shared_prefix) {
    std::vector<const std::vector<int32_t>*> p, c, r;
    for (size_t i : idx) {
      p.push_back(&examples[i].prompt);
      c.push_back(&examples[i].chosen);
      r.push_back(&examples[i].rejected);
    }
    pb = collate_prefix_pairs(p, c, r, pad_id);
    shared_prefix = hidden_size <= 0 || shared_layout_is_cheaper(pb, hidden_size);
  }
  if (shared_prefix) {
    b.shared = true;
    b.prefix = std::move(pb);
    b.real_tokens = b.prefix.unshared_real_tokens;
    b.computed_tokens = b.prefix.real_tokens;
    b.slots = b.prefix.slots;
  } else {
    std::vector<const std::vector<int32_t>*> prompts, replies;
    for (size_t i : idx) { prompts.push_back(&examples[i].prompt); replies.push_back(&examples[i].chosen); }
    for (size_t i : idx) { prompts.push_back(&examples[i].prompt); replies.push_back(&examples[i].rejected); }
    pad_sequences(prompts, replies, pad_id, &b.ids, &b.mask, &b.response_mask);
    b.real_tokens = b.mask.sum().item<int64_t>();
    b.computed_tokens = b.real_tokens;
    b.slots = b.mask.numel();
  }

  b.s_w = torch::empty({b.B}, torch::kFloat32);
  b.s_l = torch::empty({b.B}, torch::kFloat32);
  b.margin = torch::empty({b.B}, torch::kFloat32);
  // Every batch gets the head's K columns (mask 0 where a row has fewer or none), so the loss sees
  // one shape whatever the batch drew; values past K (validation rows) are not compared.
  const int64_t k = std::max<int64_t>(num_attributes, 0);
  if (k > 0) {
    b.attributes = torch::zeros({b.B, k}, torch::kFloat32);
    b.attributes_mask = torch::zeros({b.B, k}, torch::kFloat32);
  }
  auto sw = b.s_w.accessor<float, 1>(), sl = b.s_l.accessor<float, 1>(), mg = b.margin.accessor<float, 1>();
  for (int64_t r = 0; r < b.B; ++r) {
    const auto& e = examples[idx[r]];
    sw[r] = static_cast<float>(e.s_w);
    sl[r] = static_cast<float>(e.s_l);
    mg[r] = static_cast<float>(e.margin);
    for (size_t a = 0; a < e.attributes.size() && static_cast<int64_t>(a) < k; ++a) {
      double v = e.attributes[a];
      if (std::isfinite(v)) {
        b.attributes[r][static_cast<int64_t>(a)] = v;
        b.attributes_mask[r][static_cast<int64_t>(a)] = 1.0f;
      }
    }
  }
  if (with_teacher) {
    std::vector<const std::vector<int32_t>*> tp, tr;
    static const std::vector<int32_t> empty;
    for (size_t i : idx) {
      const auto& e = examples[i];
      bool has = !e.teacher.empty();
      b.teacher_count += has;
      tp.push_back(has ? &e.teacher_prompt : &e.prompt);
      tr.push_back(has ? &e.teacher : &empty);  // no teacher: the row has no response tokens
    }
    pad_sequences(tp, tr, pad_id, &b.teacher_ids, &b.teacher_mask, &b.teacher_response_mask);
  }
  return b;
}

}  // namespace rmkit::train
