// Shared pieces of the torch benches (bench_train, bench_score, bench_matmul): the command line,
// model shapes, the batch plan (real RMB lengths under the Llama-2 tokenizer, shared with the
// PyTorch reference through a JSON file), the in-run fp32 matmul peak, model FLOPs and peak RSS.
#pragma once
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/options.h"
#include "rmkit/data/encode.h"
#include "rmkit/data/readers.h"
#include "rmkit/model/config.h"
#include "rmkit/model/runtime.h"
#include "rmkit/text/chat_template.h"
#include "rmkit/text/tokenizer.h"

namespace rmkit::bench {

struct Shape {
  std::string name;
  int64_t layers, hidden, heads, kv_heads, intermediate, vocab;
};

// tiny = stories260K; small = 4 layers d=256 (SwiGLU 704 = 2/3*4d rounded to 64); base = 12
// layers d=768, SwiGLU 2048, vocab 32000.
inline Shape shape_by_name(const std::string& n) {
  if (n == "tiny") return {"tiny", 5, 64, 8, 4, 172, 512};
  if (n == "small") return {"small", 4, 256, 4, 4, 704, 8192};
  if (n == "base") return {"base", 12, 768, 12, 12, 2048, 32000};
  throw UsageError("unknown shape '" + n + "' (tiny, small, base)");
}

inline model::ModelConfig config_for(const Shape& s) {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                      {"vocab_size", s.vocab}, {"hidden_size", s.hidden},
                      {"intermediate_size", s.intermediate}, {"num_hidden_layers", s.layers},
                      {"num_attention_heads", s.heads}, {"num_key_value_heads", s.kv_heads},
                      {"max_position_embeddings", 2048}, {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0}, {"tie_word_embeddings", false}};
  return model::ModelConfig::from_json(j, "bench shape " + s.name);
}

inline nlohmann::json shape_json(const Shape& s) {
  return {{"name", s.name}, {"layers", s.layers}, {"hidden", s.hidden}, {"heads", s.heads},
          {"kv_heads", s.kv_heads}, {"intermediate", s.intermediate}, {"vocab", s.vocab}};
}

// One pair's token counts: prompt, chosen response, rejected response (sequence = prompt + response).
struct PairLen {
  int64_t prompt, chosen, rejected;
  int64_t len_c() const { return prompt + chosen; }
  int64_t len_r() const { return prompt + rejected; }
};

// Real lengths: `n` pairs sampled (seeded) from RMB pairwise, rendered with the plain template and
// tokenised by the Llama-2 SentencePiece model, truncated to max_len by data/encode.h's rules.
inline std::vector<PairLen> sample_real_lengths(size_t n, uint64_t seed, size_t max_len) {
  auto pairs = data::read_prefs(asset_path("prefs/rmb_pairwise.jsonl.gz"));
  std::mt19937_64 rng(seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);
  auto tok = text::load_tokenizer(asset_path("tokenizers/llama2/tokenizer.model"));
  auto tmpl = text::ChatTemplate::named("plain");
  std::vector<PairLen> out;
  for (size_t i = 0; i < n && i < pairs.size(); ++i) {
    auto e = data::encode_pair(pairs[i], *tok, tmpl, max_len);
    out.push_back({static_cast<int64_t>(e.prompt_ids.size()), static_cast<int64_t>(e.chosen_ids.size()),
                   static_cast<int64_t>(e.rejected_ids.size())});
  }
  return out;
}

// A bench's command line: parses its option table (which must hold "threads"), prints --help
// (nullopt: the caller exits 0), and sets the intra-op threads. Throws UsageError on bad options.
inline std::optional<Options> parse_options(int argc, char** argv, const std::string& name,
                                            const std::string& summary, const std::vector<OptionSpec>& specs) {
  auto o = Options::parse(std::vector<std::string>(argv + 1, argv + argc), specs);
  if (o.help_requested()) {
    std::cout << Options::help_text(name, summary, specs);
    return std::nullopt;
  }
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  return o;
}

// The kernel selection this process runs with (rmkit sets both when the caller's env does not):
// recorded in every result so that runs on different kernels are not compared unknowingly.
inline void add_dispatch_env(nlohmann::json& j) {
  const char* ct = std::getenv("OPENBLAS_CORETYPE");
  const char* cap = std::getenv("ATEN_CPU_CAPABILITY");
  j["openblas_coretype"] = ct ? ct : "";
  j["aten_cpu_capability"] = cap ? cap : "";
}

// fp32 matmul peak of this process right now: torch::mm on 2048x2048 (median of 5), GFLOP/s.
inline double measure_mm_peak_gflops(torch::Dtype dtype = torch::kFloat) {
  auto a = torch::randn({2048, 2048}).to(dtype), b = torch::randn({2048, 2048}).to(dtype);
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto c = torch::mm(a, b);
    (void)c.data_ptr();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin() + 2, t.end());
  return 2.0 * 2048.0 * 2048.0 * 2048.0 / t[2 + (t.size() - 2) / 2] / 1e9;
}

inline int64_t non_embedding_params(const Shape& s) {
  int64_t hd = s.hidden / s.heads;
  int64_t attn = s.hidden * (s.heads * hd) * 2 + s.hidden * (s.kv_heads * hd) * 2;
  int64_t mlp = 3 * s.hidden * s.intermediate;
  return s.layers * (attn + mlp + 2 * s.hidden) + s.hidden + s.hidden /*score head*/;
}

// Training FLOPs of one sequence of T real tokens: 6 * N_nonemb * T + attention (fwd 4*T^2*d per
// layer for QK^T and PV, x3 for fwd+bwd). Forward-only: a third of it.
inline double seq_flops(const Shape& s, int64_t T, bool train) {
  double dense = 6.0 * static_cast<double>(non_embedding_params(s)) * T;
  double attn = 12.0 * s.layers * static_cast<double>(T) * T * s.hidden;
  return train ? dense + attn : (dense + attn) / 3.0;
}

// FLOPs a shared-prompt pass actually executes for one pair (prompt P once, replies C and R on
// its cache): dense work on P + C + R tokens; attention P*P + C*(P+C) + R*(P+R) score entries.
inline double shared_pair_flops(const Shape& s, int64_t P, int64_t C, int64_t R, bool train) {
  double dense = 6.0 * static_cast<double>(non_embedding_params(s)) * static_cast<double>(P + C + R);
  double entries = static_cast<double>(P) * P + static_cast<double>(C) * (P + C) + static_cast<double>(R) * (P + R);
  double attn = 12.0 * s.layers * entries * s.hidden;
  return train ? dense + attn : (dense + attn) / 3.0;
}

inline double peak_rss_mb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// Process CPU time and minor page faults, to split a timed loop's cost into user work, kernel
// time and first-touch faults.
struct CpuUsage {
  double user_s = 0, sys_s = 0;
  int64_t minor_faults = 0;
  CpuUsage operator-(const CpuUsage& o) const { return {user_s - o.user_s, sys_s - o.sys_s, minor_faults - o.minor_faults}; }
};

inline CpuUsage cpu_usage() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return {sec(ru.ru_utime), sec(ru.ru_stime), static_cast<int64_t>(ru.ru_minflt)};
}

inline void add_cpu_usage(nlohmann::json& j, const CpuUsage& u) {
  j["timed_user_s"] = u.user_s;
  j["timed_sys_s"] = u.sys_s;
  j["timed_minor_faults"] = u.minor_faults;
}

// Index of the first element with the largest key(element): the batch a bench warms up on.
template <typename T, typename Key>
size_t index_of_max(const std::vector<T>& v, const Key& key) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (key(v[i]) > key(v[best])) best = i;
  return best;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  return v[i];
}

}  // namespace rmkit::bench
