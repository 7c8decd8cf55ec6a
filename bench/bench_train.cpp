// bench_train: reward-model training steps (joint chosen+rejected forward, BT loss, backward, clip,
// AdamW) on a model shape with real RMB sequence lengths. Prints ms/step, pairs/s, real-token
// tokens/s, padding fraction, peak RSS and MFU (model FLOPs/s over the fp32 or bf16 torch::mm peak
// measured in the same run); the last line is one JSON object.
//
//   bench_train --shape small [--pairs-per-step 8] [--steps 6] [--plan-out plan.json]
//
// The plan file (the same pairs, batch size and order) drives bench/reference/rm_reference.py.
// Timing: --warmup (2) untimed steps on the heaviest batch (most computed tokens: the step whose
// memory the heap must grow to, as a training run's first length-grouped step does), then one
// timed pass over every batch of the plan. Two, because the first step also allocates the
// gradients and AdamW moments amid its freed activations, so the next step's activations no longer
// fit the heap: it grows (and faults fresh pages in) once more and settles from then on. The
// reference warms up on its own heaviest batch the same way.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>

#include "bench_common.h"
#include "rmkit/core/cpu_env.h"
#include "rmkit/core/options.h"
#include "rmkit/data/batching.h"
#include "rmkit/model/registry.h"
#include "rmkit/model/runtime.h"
#include "rmkit/train/autocast.h"
#include "rmkit/train/optim.h"
#include "rmkit/train/prefix_forward.h"
#include "rmkit/train/reward_model.h"

using namespace rmkit;

namespace {

struct Batch {
  torch::Tensor c_ids, c_mask, r_ids, r_mask;
  bool shared = false;
  train::PrefixBatch prefix;  // --shared-prefix: the prompt runs once for both replies
  int64_t real_tokens = 0, slots = 0, pairs = 0;
  int64_t computed_tokens = 0;  // real tokens the forward computes (shared: each prompt once)
  double flops = 0;           // model FLOPs of the pairs (both full sequences), the MFU numerator
  double computed_flops = 0;  // FLOPs the forward/backward actually executes (shared: prompt once)
};

// --shared-prefix: random prompt/chosen/rejected ids of the plan's lengths, collated for
// prefix_shared_forward. FLOPs and real tokens stay those of the unshared pair (the work the data
// represents), so tokens/s and MFU compare across the two modes; computed_tokens is what ran.
Batch make_prefix_batch(const std::vector<bench::PairLen>& lens, const std::vector<size_t>& idx,
                        const bench::Shape& s, bool packed, int64_t chunk, torch::Generator& gen) {
  Batch b;
  auto ids = [&](int64_t n) {
    auto t = torch::randint(1, s.vocab, {n}, gen, torch::kLong);
    return std::vector<int32_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
  };
  std::vector<std::vector<int32_t>> p, c, r;
  for (size_t i : idx) {
    p.push_back(ids(lens[i].prompt));
    c.push_back(ids(lens[i].chosen));
    r.push_back(ids(lens[i].rejected));
    b.real_tokens += lens[i].len_c() + lens[i].len_r();
    b.flops += bench::seq_flops(s, lens[i].len_c(), true) + bench::seq_flops(s, lens[i].len_r(), true);
    b.computed_flops += bench::shared_pair_flops(s, lens[i].prompt, lens[i].chosen, lens[i].rejected, true);
  }
  b.prefix = train::collate_prefix_pairs(p, c, r, 0, packed);
  b.prefix.layout.attention_chunk = chunk;
  b.shared = true;
  b.slots = b.prefix.slots;
  b.computed_tokens = b.prefix.real_tokens;
  b.pairs = static_cast<int64_t>(idx.size());
  return b;
}

// Right-padded random-token batch for the given pairs (ids drawn from the seeded generator).
Batch make_batch(const std::vector<bench::PairLen>& lens, const std::vector<size_t>& idx,
                 const bench::Shape& s, bool train, torch::Generator& gen) {
  Batch b;
  auto build = [&](bool chosen, torch::Tensor* ids, torch::Tensor* mask) {
    int64_t T = 0;
    for (size_t i : idx) T = std::max(T, chosen ? lens[i].len_c() : lens[i].len_r());
    *ids = torch::zeros({static_cast<int64_t>(idx.size()), T}, torch::kLong);
    *mask = torch::zeros_like(*ids);
    for (size_t k = 0; k < idx.size(); ++k) {
      int64_t n = chosen ? lens[idx[k]].len_c() : lens[idx[k]].len_r();
      ids->index_put_({static_cast<int64_t>(k), torch::indexing::Slice(0, n)},
                      torch::randint(1, s.vocab, {n}, gen, torch::kLong));
      mask->index_put_({static_cast<int64_t>(k), torch::indexing::Slice(0, n)}, 1);
      b.real_tokens += n;
      b.flops += bench::seq_flops(s, n, train);
      b.computed_flops += bench::seq_flops(s, n, train);
    }
  };
  build(true, &b.c_ids, &b.c_mask);
  build(false, &b.r_ids, &b.r_mask);
  // joint forward pads both halves to the longer one
  b.slots = 2 * static_cast<int64_t>(idx.size()) * std::max(b.c_ids.size(1), b.r_ids.size(1));
  b.pairs = static_cast<int64_t>(idx.size());
  b.computed_tokens = b.real_tokens;
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  apply_cpu_env(argc, argv);
  try {
    std::vector<OptionSpec> specs = {
        {"shape", OptKind::String, "small", "tiny | small | base"},
        {"pairs-per-step", OptKind::Int, "8", "preference pairs per optimizer step"},
        {"steps", OptKind::Int, "6", "timed steps (one pass over the plan)"},
        {"warmup", OptKind::Int, "2", "untimed warm-up steps on the heaviest batch"},
        {"max-len", OptKind::Int, "1024", "cap on sequence length (tokens)"},
        {"seed", OptKind::Int, "0", "sampling seed for lengths and token ids"},
        {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
        {"bf16", OptKind::Flag, "", "bf16 CPU autocast (MFU against the bf16 mm peak)"},
        {"grouping", OptKind::String, "length", "length (length-grouped batches) | none (plan order)"},
        {"plan-out", OptKind::String, "", "write the batch plan JSON for the PyTorch reference"},
        {"checkpointing", OptKind::Flag, "", "activation checkpointing (recompute each block in backward)"},
        {"fixed-len", OptKind::Int, "0", "> 0: every sequence exactly this many tokens, prompt 0 (no RMB sampling)"},
        {"shared-prefix", OptKind::Flag, "", "run each prompt once for both replies (prefix_shared_forward)"},
        {"profile", OptKind::String, "", "write a chrome://tracing profile of the timed steps to this file (slower)"},
        {"attention-chunk", OptKind::Int, "256", "packed: causal query chunk length (0 = one attention per sequence)"},
        {"packed", OptKind::String, "on", "with --shared-prefix: on (one padding-free row per batch) | off (prompt pass + KV-cache reply pass)"},
    };
    const auto parsed = bench::parse_options(argc, argv, "bench_train", "reward-model training throughput", specs);
    if (!parsed) return 0;  // --help
    const Options& o = *parsed;
    const auto shape = bench::shape_by_name(o.str("shape"));
    const int64_t B = o.integer("pairs-per-step"), steps = o.integer("steps");
    const bool bf16 = o.flag("bf16");
    const int64_t fixed_len = o.integer("fixed-len");
    auto lens = fixed_len > 0 ? std::vector<bench::PairLen>(B * steps, bench::PairLen{0, fixed_len, fixed_len})
                              : bench::sample_real_lengths(static_cast<size_t>(B * steps), o.integer("seed"),
                                                           static_cast<size_t>(o.integer("max-len")));
    // the reference's order: consecutive pairs, B per step
    data::Batches plan_batches;
    for (size_t i = 0; i < lens.size(); i += B) {
      std::vector<size_t> b;
      for (size_t j = i; j < std::min(lens.size(), i + static_cast<size_t>(B)); ++j) b.push_back(j);
      plan_batches.push_back(b);
    }
    if (o.has("plan-out")) {
      nlohmann::json plan = {{"shape", bench::shape_json(shape)}, {"seed", o.integer("seed")}};
      nlohmann::json batches = nlohmann::json::array();
      for (const auto& b : plan_batches) {
        nlohmann::json jb = nlohmann::json::array();
        for (size_t i : b) jb.push_back({lens[i].len_c(), lens[i].len_r(), lens[i].prompt});
        batches.push_back(jb);
      }
      plan["batches"] = batches;
      write_file_atomic(o.str("plan-out"), plan.dump());
    }
    data::Batches batches = plan_batches;
    if (o.str("grouping") == "length") {
      std::vector<size_t> pl;
      for (const auto& l : lens) pl.push_back(static_cast<size_t>(std::max(l.len_c(), l.len_r())));
      batches = data::length_grouped_batches(pl, static_cast<size_t>(B), o.integer("seed"), 0);
    }

    torch::manual_seed(o.integer("seed"));
    auto backbone = model::create_model(bench::config_for(shape));
    backbone->set_activation_checkpointing(o.flag("checkpointing"));
    train::RewardModel rm(backbone, train::HeadConfig());
    rm->train();
    auto named = rm->named_trainable_parameters();
    auto groups = train::split_param_groups(named);
    train::OptimConfig oc;
    auto opt = train::make_adamw(groups, oc);
    std::vector<torch::Tensor> params;
    for (auto& [n, p] : named) params.push_back(p);

    auto gen = torch::make_generator<at::CPUGeneratorImpl>(o.integer("seed"));
    std::vector<Batch> prepared;
    const bool shared = o.flag("shared-prefix");
    const bool packed = o.choice("packed", {"on", "off"}) == "on";
    int64_t shared_batches = 0;
    for (const auto& b : batches) {
      // as the trainer does: the shared layout only in the batches where it computes less
      Batch pb;
      if (shared) pb = make_prefix_batch(lens, b, shape, packed, o.integer("attention-chunk"), gen);
      if (shared && train::shared_layout_is_cheaper(pb.prefix, shape.hidden)) {
        prepared.push_back(std::move(pb));
        ++shared_batches;
      } else {
        prepared.push_back(make_batch(lens, b, shape, true, gen));
      }
    }

    auto step = [&](const Batch& b) {
      torch::Tensor loss;
      {
        train::CpuAutocast ac(bf16);
        train::PairOutput out = b.shared ? train::prefix_shared_forward(*rm, b.prefix)
                                       : rm->forward_pair(b.c_ids, b.c_mask, b.r_ids, b.r_mask);
        loss = -torch::log_sigmoid(out.chosen.to(torch::kFloat) - out.rejected.to(torch::kFloat)).mean();
      }
      loss.backward();
      train::clip_grad_norm(params, 1.0);
      opt->step();
      opt->zero_grad();
      return loss.item<double>();
    };
    // warm-up (heap growth, kernel selection) on the heaviest batch
    const size_t heaviest = bench::index_of_max(prepared, [](const Batch& b) { return b.computed_tokens; });
    for (int64_t w = 0; w < o.integer("warmup"); ++w) step(prepared[heaviest]);
    std::vector<double> ms;
    std::vector<int64_t> step_faults;
    int64_t pairs = 0, tokens = 0, slots = 0, computed = 0;
    double flops = 0, computed_flops = 0;
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
    if (o.has("profile")) profile = std::make_unique<torch::autograd::profiler::RecordProfile>(o.str("profile"));
    const bench::CpuUsage u0 = bench::cpu_usage();
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& b : prepared) {
      auto s0 = std::chrono::steady_clock::now();
      const int64_t f0 = bench::cpu_usage().minor_faults;
      step(b);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count());
      step_faults.push_back(bench::cpu_usage().minor_faults - f0);
      pairs += b.pairs;
      tokens += b.real_tokens;
      slots += b.slots;
      computed += b.computed_tokens;
      flops += b.flops;
      computed_flops += b.computed_flops;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bench::CpuUsage used = bench::cpu_usage() - u0;
    profile.reset();  // writes the trace
    double peak = bench::measure_mm_peak_gflops(bf16 ? torch::kBFloat16 : torch::kFloat);
    double achieved = flops / secs / 1e9;
    const double physical = bf16 ? 830.0 : 450.0;  // 2-core FMA peak measured on this machine kind
    nlohmann::json j = {{"impl", "rmkit"}, {"mode", "train"}, {"shape", shape.name},
                        {"dtype", bf16 ? "bf16-autocast" : "fp32"}, {"threads", at::get_num_threads()},
                        {"steps", static_cast<int64_t>(ms.size())}, {"pairs_per_step", B},
                        {"ms_per_step_median", bench::median(ms)}, {"pairs_per_s", pairs / secs},
                        {"tokens_per_s", tokens / secs}, {"padding_fraction", 1.0 - double(computed) / slots},
                        {"model_gflops_per_s", achieved}, {"mm_peak_gflops", peak}, {"mfu", achieved / peak},
                        {"fraction_of_physical_fma_peak", achieved / physical},
                        // what the kernels actually ran (shared prefix: each prompt once)
                        {"executed_gflops_per_s", computed_flops / secs / 1e9},
                        {"mfu_executed", computed_flops / secs / 1e9 / peak},
                        {"peak_rss_mb", bench::peak_rss_mb()}, {"grouping", o.str("grouping")},
                        {"shared_prefix", shared}, {"packed", shared && packed}, {"attention_chunk", o.integer("attention-chunk")}, {"shared_batches", shared_batches}, {"computed_tokens", computed}, {"slots", slots}};
    bench::add_dispatch_env(j);
    bench::add_cpu_usage(j, used);
    j["step_minor_faults"] = step_faults;
    j["warmup_batch"] = heaviest;
    j["step_ms"] = ms;
    j["activation_checkpointing"] = o.flag("checkpointing");
    j["fixed_len"] = fixed_len;
    std::printf("bench_train %s %s: %.1f ms/step, %.2f pairs/s, %.0f tok/s (real), padding %.1f%%, "
                "%.1f model GFLOP/s = %.0f%% of mm peak %.1f (executed %.0f%%), peak RSS %.0f MB\n",
                shape.name.c_str(), bf16 ? "bf16" : "fp32", bench::median(ms), pairs / secs, tokens / secs,
                100.0 * (1.0 - double(computed) / slots), achieved, 100.0 * achieved / peak, peak,
                100.0 * computed_flops / secs / 1e9 / peak, bench::peak_rss_mb());
    std::cout << j.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_train: " << e.what() << "\n";
    return 1;
  }
}
