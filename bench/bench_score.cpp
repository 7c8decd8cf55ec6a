// bench_score: reward-model scoring throughput (inference mode) with real RMB lengths: pairs/s,
// real tokens/s and p50/p99 latency per forward batch; the last line is one JSON object.
// rmkit's path sorts sequences by length into batches (as `rmkit score` does); the plan file gives
// the reference the same pairs in plan order. Both warm up (--warmup 2) on their heaviest batch,
// then time every batch.
//
//   bench_score --shape small [--pairs 64] [--batch-pairs 8] [--plan-out plan.json]
#include <torch/torch.h>

#include <iostream>

#include "bench_common.h"
#include "rmkit/core/cpu_env.h"
#include "rmkit/core/error.h"
#include "rmkit/core/options.h"
#include "rmkit/data/batching.h"
#include "rmkit/model/registry.h"
#include "rmkit/model/runtime.h"
#include "rmkit/train/autocast.h"
#include "rmkit/train/batch.h"
#include "rmkit/train/prefix_forward.h"
#include "rmkit/train/reward_model.h"

using namespace rmkit;

int main(int argc, char** argv) {
  apply_cpu_env(argc, argv);
  try {
    std::vector<OptionSpec> specs = {
        {"shape", OptKind::String, "small", "tiny | small | base"},
        {"warmup", OptKind::Int, "2", "untimed warm-up forwards on the heaviest batch"},
        {"pairs", OptKind::Int, "64", "pairs to score"},
        {"batch-pairs", OptKind::Int, "8", "pairs per forward (2x sequences)"},
        {"max-len", OptKind::Int, "1024", "cap on sequence length"},
        {"seed", OptKind::Int, "0", "sampling seed"},
        {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
        {"bf16", OptKind::Flag, "", "bf16 CPU autocast"},
        {"sort", OptKind::String, "length", "length (sorted batches, as rmkit score) | none (plan order)"},
        {"shared-prefix", OptKind::String, "auto", "auto (as rmkit score: each prompt once for both replies; packed batches always, the KV-cache layout where it computes less) | on | off"},
        {"attention-chunk", OptKind::Int, "256", "packed: causal query chunk length (0 = one attention per sequence)"},
        {"packed", OptKind::String, "on", "on (one padding-free row per batch, as rmkit score) | off (prompt pass + KV-cache reply pass)"},
        {"plan-out", OptKind::String, "", "write the plan JSON for the PyTorch reference"},
    };
    const auto parsed = bench::parse_options(argc, argv, "bench_score", "reward-model scoring throughput", specs);
    if (!parsed) return 0;  // --help
    const Options& o = *parsed;
    const auto shape = bench::shape_by_name(o.str("shape"));
    const int64_t P = o.integer("pairs"), B = o.integer("batch-pairs");
    auto lens = bench::sample_real_lengths(static_cast<size_t>(P), o.integer("seed"),
                                           static_cast<size_t>(o.integer("max-len")));
    if (o.has("plan-out")) {
      nlohmann::json batches = nlohmann::json::array(), cur = nlohmann::json::array();
      for (const auto& l : lens) {
        cur.push_back({l.len_c(), l.len_r(), l.prompt});
        if (static_cast<int64_t>(cur.size()) == B) batches.push_back(cur), cur = nlohmann::json::array();
      }
      if (!cur.empty()) batches.push_back(cur);
      write_file_atomic(o.str("plan-out"),
                        nlohmann::json{{"shape", bench::shape_json(shape)}, {"seed", o.integer("seed")}, {"batches", batches}}.dump());
    }
    const std::string sp = o.choice("shared-prefix", {"auto", "on", "off"});
    const bool shared = sp != "off";
    const bool packed = o.choice("packed", {"on", "off"}) == "on";
    int64_t shared_batches = 0;
    torch::manual_seed(o.integer("seed"));
    train::RewardModel rm(model::create_model(bench::config_for(shape)), train::HeadConfig());
    rm->eval();
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(o.integer("seed"));
    auto rand_ids = [&](int64_t n) {
      auto t = torch::randint(1, shape.vocab, {n}, gen, torch::kLong);
      return std::vector<int32_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
    };
    struct Prepared {
      bool shared = false;
      torch::Tensor ids, mask;    // unshared: [2B, T]
      train::PrefixBatch prefix;  // shared
      int64_t tokens, slots;      // real tokens of the pairs (prompt twice); positions computed
    };
    std::vector<Prepared> prepared;
    if (shared) {
      // pairs sorted by their longer side (eval::score_pairs' order), B pairs per forward
      std::vector<size_t> pair_len;
      for (const auto& l : lens) pair_len.push_back(static_cast<size_t>(std::max(l.len_c(), l.len_r())));
      data::Batches pb;
      if (o.str("sort") == "length") {
        pb = data::sequential_batches(pair_len, static_cast<size_t>(B));
      } else {
        for (size_t i = 0; i < lens.size(); i += B) {
          std::vector<size_t> b;
          for (size_t j = i; j < std::min(lens.size(), i + static_cast<size_t>(B)); ++j) b.push_back(j);
          pb.push_back(b);
        }
      }
      for (const auto& b : pb) {
        std::vector<std::vector<int32_t>> pr, c, r;
        Prepared p;
        p.tokens = 0;
        for (size_t i : b) {
          pr.push_back(rand_ids(lens[i].prompt));
          c.push_back(rand_ids(lens[i].chosen));
          r.push_back(rand_ids(lens[i].rejected));
          p.tokens += lens[i].len_c() + lens[i].len_r();
        }
        p.prefix = train::collate_prefix_pairs(pr, c, r, 0, packed);
        p.prefix.layout.attention_chunk = o.integer("attention-chunk");
        if (sp == "on" || train::shared_layout_is_cheaper(p.prefix, shape.hidden)) {
          p.shared = true;
          p.slots = p.prefix.slots;
          ++shared_batches;
        } else {  // joint layout: chosen rows then rejected rows, right-padded
          std::vector<const std::vector<int32_t>*> ps, rs;
          for (auto& x : pr) ps.push_back(&x);
          for (auto& x : pr) ps.push_back(&x);
          for (auto& x : c) rs.push_back(&x);
          for (auto& x : r) rs.push_back(&x);
          torch::Tensor resp;
          train::pad_sequences(ps, rs, 0, &p.ids, &p.mask, &resp);
          p.slots = p.ids.numel();
        }
        prepared.push_back(std::move(p));
      }
    } else {
      // sequences: 2i = chosen, 2i+1 = rejected
      std::vector<size_t> seq_len;
      for (const auto& l : lens) seq_len.push_back(l.len_c()), seq_len.push_back(l.len_r());
      data::Batches batches;
      if (o.str("sort") == "length") {
        batches = data::sequential_batches(seq_len, static_cast<size_t>(2 * B));
      } else {
        for (size_t i = 0; i < seq_len.size(); i += 2 * B) {
          std::vector<size_t> b;
          for (size_t j = i; j < std::min(seq_len.size(), i + static_cast<size_t>(2 * B)); ++j) b.push_back(j);
          batches.push_back(b);
        }
      }
      for (const auto& b : batches) {
        int64_t T = 0, tokens = 0;
        for (size_t i : b) T = std::max<int64_t>(T, seq_len[i]);
        auto ids = torch::zeros({static_cast<int64_t>(b.size()), T}, torch::kLong);
        auto mask = torch::zeros_like(ids);
        for (size_t k = 0; k < b.size(); ++k) {
          int64_t n = seq_len[b[k]];
          ids.index_put_({static_cast<int64_t>(k), torch::indexing::Slice(0, n)}, torch::randint(1, shape.vocab, {n}, gen, torch::kLong));
          mask.index_put_({static_cast<int64_t>(k), torch::indexing::Slice(0, n)}, 1);
          tokens += n;
        }
        Prepared p;
        p.ids = ids;
        p.mask = mask;
        p.tokens = tokens;
        p.slots = static_cast<int64_t>(b.size()) * T;
        prepared.push_back(std::move(p));
      }
    }
    c10::InferenceMode guard;
    train::CpuAutocast ac(o.flag("bf16"));
    auto forward = [&](const Prepared& p) {
      return p.shared ? train::prefix_shared_forward(*rm, p.prefix).all.rewards : rm->forward(p.ids, p.mask).rewards;
    };
    // warm-up on the batch with the most slots (heap growth, kernel selection)
    const size_t heaviest = bench::index_of_max(prepared, [](const Prepared& p) { return p.slots; });
    for (int64_t w = 0; w < o.integer("warmup"); ++w) forward(prepared[heaviest]);
    std::vector<double> ms;
    int64_t tokens = 0, slots = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& p : prepared) {
      auto s0 = std::chrono::steady_clock::now();
      auto r = forward(p);
      (void)r.data_ptr();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count());
      tokens += p.tokens;
      slots += p.slots;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json j = {{"impl", "rmkit"}, {"mode", "score"}, {"shape", shape.name},
                        {"dtype", o.flag("bf16") ? "bf16-autocast" : "fp32"}, {"threads", at::get_num_threads()},
                        {"pairs_per_s", lens.size() / secs}, {"tokens_per_s", tokens / secs},
                        {"p50_ms", bench::percentile(ms, 0.5)}, {"p99_ms", bench::percentile(ms, 0.99)},
                        {"shared_prefix", sp}, {"packed", shared && packed}, {"attention_chunk", o.integer("attention-chunk")}, {"shared_batches", shared_batches}, {"slots", slots}, {"peak_rss_mb", bench::peak_rss_mb()},
                        {"batches", static_cast<int64_t>(ms.size())}};
    bench::add_dispatch_env(j);
    std::printf("bench_score %s%s: %.2f pairs/s, %.0f tok/s (pair tokens), p50 %.1f ms, p99 %.1f ms per batch, "
                "%lld positions computed for %lld pair tokens\n",
                shape.name.c_str(), shared ? " (shared prefix where cheaper)" : "", lens.size() / secs, tokens / secs,
                bench::percentile(ms, 0.5), bench::percentile(ms, 0.99), static_cast<long long>(slots),
                static_cast<long long>(tokens));
    std::cout << j.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_score: " << e.what() << "\n";
    return 1;
  }
}
