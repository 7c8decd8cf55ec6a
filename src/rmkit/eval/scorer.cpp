#include "rmkit/eval/scorer.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>

#include "rmkit/core/progress.h"
#include "rmkit/data/batching.h"
#include "rmkit/data/encode.h"
#include "rmkit/train/autocast.h"
#include "rmkit/train/logprobs.h"
#include "rmkit/train/batch.h"
#include "rmkit/train/prefix_forward.h"

namespace rmkit::eval {
namespace {

// One tokenised sequence: prompt ids followed by response ids.
struct Seq {
  std::vector<int32_t> ids;
  size_t prompt_len = 0;
};

// Right-pads the batch rows to the longest: ids [B,T] int64, mask [B,T] int64, response mask
// [B,T] (1 on response tokens).
struct Padded {
  torch::Tensor ids, mask, response_mask;
};

Padded pad_batch(const std::vector<Seq>& seqs, const std::vector<size_t>& idx, int64_t pad_id) {
  size_t T = 0;
  for (size_t i : idx) T = std::max(T, seqs[i].ids.size());
  const int64_t B = static_cast<int64_t>(idx.size());
  auto ids = torch::full({B, static_cast<int64_t>(T)}, pad_id, torch::kLong);
  auto mask = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  auto resp = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  auto ra = resp.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const Seq& s = seqs[idx[b]];
    for (size_t t = 0; t < s.ids.size(); ++t) {
      ia[b][t] = s.ids[t];
      ma[b][t] = 1;
      ra[b][t] = t >= s.prompt_len ? 1 : 0;
    }
  }
  return {ids, mask, resp};
}

// Runs fn on length-sorted batches of `seqs` and scatters one value per sequence into the result.
std::vector<double> run_batched(const std::vector<Seq>& seqs, const ScoreOptions& opts,
                                const std::string& label,
                                const std::function<torch::Tensor(const Padded&)>& fn,
                                int64_t pad_id) {
  std::vector<size_t> lengths(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) lengths[i] = seqs[i].ids.size();
  auto batches = data::sequential_batches(lengths, static_cast<size_t>(std::max<int64_t>(1, opts.batch_size)),
                                          static_cast<size_t>(std::max<int64_t>(0, opts.max_tokens)));
  std::vector<double> out(seqs.size(), 0.0);
  c10::InferenceMode guard;
  train::CpuAutocast autocast(opts.bf16);
  Progress progress(label, static_cast<int64_t>(seqs.size()), opts.progress ? Progress::Mode::Auto : Progress::Mode::Off);
  int64_t done = 0;
  for (const auto& b : batches) {
    Padded p = pad_batch(seqs, b, pad_id);
    torch::Tensor v = fn(p).to(torch::kDouble).contiguous();
    auto va = v.accessor<double, 1>();
    for (size_t j = 0; j < b.size(); ++j) out[b[j]] = va[static_cast<int64_t>(j)];
    done += static_cast<int64_t>(b.size());
    progress.update(done);
  }
  progress.finish();
  return out;
}

int64_t pad_id_of(const text::Tokenizer& tok) {
  if (tok.pad_id() >= 0) return tok.pad_id();
  if (tok.eos_id() >= 0) return tok.eos_id();
  return 0;
}

std::vector<Seq> pair_sequences(const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                                const std::vector<data::PrefPair>& pairs, size_t max_length,
                                PairRewards* r) {
  std::vector<Seq> seqs;
  seqs.reserve(pairs.size() * 2);
  r->len_chosen.resize(pairs.size());
  r->len_rejected.resize(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    data::EncodedPair e = data::encode_pair(pairs[i], tok, tmpl, max_length);
    r->truncated += e.truncated ? 1 : 0;
    Seq c{e.prompt_ids, e.prompt_ids.size()}, rj{e.prompt_ids, e.prompt_ids.size()};
    c.ids.insert(c.ids.end(), e.chosen_ids.begin(), e.chosen_ids.end());
    rj.ids.insert(rj.ids.end(), e.rejected_ids.begin(), e.rejected_ids.end());
    r->len_chosen[i] = e.chosen_ids.size();
    r->len_rejected[i] = e.rejected_ids.size();
    seqs.push_back(std::move(c));
    seqs.push_back(std::move(rj));
  }
  return seqs;
}

void split_pairs(const std::vector<double>& v, PairRewards* r) {
  r->chosen.resize(v.size() / 2);
  r->rejected.resize(v.size() / 2);
  for (size_t i = 0; i < v.size() / 2; ++i) {
    r->chosen[i] = v[2 * i];
    r->rejected[i] = v[2 * i + 1];
  }
}

}  // namespace

text::ChatTemplate choose_template(const model::ModelConfig& cfg, const text::Tokenizer& tok,
                                   const std::string& saved_name, const std::string& override_name) {
  if (!override_name.empty() && override_name != "auto")
    return text::ChatTemplate::resolve(override_name, cfg.model_type, tok);
  // rmkit.json holds ChatTemplate::spec(): a built-in name or a custom format; resolve() detects
  // when nothing was saved. "custom" alone, written before formats were saved, cannot be rebuilt:
  // detect as for a plain checkpoint.
  if (saved_name == "custom") return text::ChatTemplate::detect(cfg.model_type, tok);
  return text::ChatTemplate::resolve(saved_name, cfg.model_type, tok);
}

PairRewards score_pairs(train::RewardModelImpl& rm, const text::Tokenizer& tok,
                        const text::ChatTemplate& tmpl, const std::vector<data::PrefPair>& pairs,
                        const ScoreOptions& opts) {
  // Packed prefix sharing (train/prefix_forward.h): each batch is one padding-free row in which a
  // pair's prompt runs once and both replies attend to it. Pairs are sorted by length (longest
  // first) into batches of batch_size / 2 pairs (= batch_size sequences) and about max_tokens tokens.
  PairRewards r;
  data::EncodeStats st;
  auto enc = data::encode_pairs(pairs, tok, tmpl, static_cast<size_t>(opts.max_length), &st);
  r.truncated = st.truncated;
  r.chosen.assign(enc.size(), 0.0);
  r.rejected.assign(enc.size(), 0.0);
  r.len_chosen.resize(enc.size());
  r.len_rejected.resize(enc.size());
  for (size_t i = 0; i < enc.size(); ++i) {
    r.len_chosen[i] = enc[i].chosen_ids.size();
    r.len_rejected[i] = enc[i].rejected_ids.size();
  }
  if (enc.empty()) return r;
  const size_t pairs_per_batch = static_cast<size_t>(std::max<int64_t>(1, opts.batch_size / 2));
  const size_t pair_tokens = opts.max_tokens > 0 ? static_cast<size_t>(std::max<int64_t>(1, opts.max_tokens / 2)) : 0;
  auto batches = data::sequential_batches(data::pair_lengths(enc), pairs_per_batch, pair_tokens);
  const int64_t pad = pad_id_of(tok);
  rm.eval();
  c10::InferenceMode guard;
  train::CpuAutocast autocast(opts.bf16);
  Progress progress("score", static_cast<int64_t>(enc.size()), opts.progress ? Progress::Mode::Auto : Progress::Mode::Off);
  int64_t done = 0;
  for (const auto& b : batches) {
    std::vector<const std::vector<int32_t>*> p, c, rj;
    for (size_t i : b) {
      p.push_back(&enc[i].prompt_ids);
      c.push_back(&enc[i].chosen_ids);
      rj.push_back(&enc[i].rejected_ids);
    }
    // packed whenever the batch has a token (collate_prefix_pairs); the padded joint layout is the
    // fallback shared_layout_is_cheaper picks otherwise
    auto pb = train::collate_prefix_pairs(p, c, rj, pad);
    torch::Tensor rewards;  // [2B]: chosen rows, then rejected rows
    if (train::shared_layout_is_cheaper(pb, rm.backbone().config().hidden_size)) {
      rewards = train::prefix_shared_forward(rm, pb).all.rewards;
    } else {
      std::vector<const std::vector<int32_t>*> prompts(p), replies(c);
      prompts.insert(prompts.end(), p.begin(), p.end());
      replies.insert(replies.end(), rj.begin(), rj.end());
      torch::Tensor ids, mask, resp;
      train::pad_sequences(prompts, replies, pad, &ids, &mask, &resp);
      rewards = rm.forward(ids, mask).rewards;
    }
    const int64_t nb = static_cast<int64_t>(b.size());
    auto cv = rewards.slice(0, 0, nb).to(torch::kDouble).contiguous();
    auto rv = rewards.slice(0, nb, 2 * nb).to(torch::kDouble).contiguous();
    auto ca = cv.accessor<double, 1>();
    auto ra = rv.accessor<double, 1>();
    for (size_t j = 0; j < b.size(); ++j) {
      r.chosen[b[j]] = ca[static_cast<int64_t>(j)];
      r.rejected[b[j]] = ra[static_cast<int64_t>(j)];
    }
    done += static_cast<int64_t>(b.size());
    progress.update(done);
  }
  progress.finish();
  return r;
}

std::vector<double> score_singles(train::RewardModelImpl& rm, const text::Tokenizer& tok,
                                  const text::ChatTemplate& tmpl,
                                  const std::vector<std::pair<text::Conversation, std::string>>& items,
                                  const ScoreOptions& opts) {
  std::vector<Seq> seqs;
  for (const auto& [conv, reply] : items) {
    data::EncodedSingle e = data::encode_single(conv, reply, tok, tmpl, static_cast<size_t>(opts.max_length));
    Seq s{e.prompt_ids, e.prompt_ids.size()};
    s.ids.insert(s.ids.end(), e.response_ids.begin(), e.response_ids.end());
    seqs.push_back(std::move(s));
  }
  rm.eval();
  return run_batched(seqs, opts, "score", [&](const Padded& p) { return rm.forward(p.ids, p.mask).rewards; },
                     pad_id_of(tok));
}

PairRewards implicit_rewards(model::CausalLMImpl& policy, model::CausalLMImpl& reference,
                             const text::Tokenizer& tok, const text::ChatTemplate& tmpl,
                             const std::vector<data::PrefPair>& pairs, const ScoreOptions& opts) {
  PairRewards r;
  auto seqs = pair_sequences(tok, tmpl, pairs, static_cast<size_t>(opts.max_length), &r);
  policy.eval();
  reference.eval();
  auto logp = [&](model::CausalLMImpl& m, const Padded& p) {
    model::ForwardInput in;
    in.input_ids = p.ids;
    in.attention_mask = p.mask;
    return train::sequence_logprob_sum(m.forward(in), p.ids, p.response_mask);  // [B]
  };
  auto v = run_batched(seqs, opts, "implicit reward",
                       [&](const Padded& p) { return logp(policy, p) - logp(reference, p); }, pad_id_of(tok));
  split_pairs(v, &r);
  return r;
}

}  // namespace rmkit::eval
