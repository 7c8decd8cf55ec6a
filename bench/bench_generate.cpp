// Generation engine bench (src/rmkit/serve/engine.h), in-process, random-init Llama shape:
//   streams:  S concurrent streamed requests (prompt --prompt-len, --max-tokens new tokens,
//             ignore_eos) for S = 1 and S = --streams, --repeats times each: decode tokens/s of the
//             median run, p50/p99 time to first token and inter-token latency; the S streams again with decode-step linears on torch's BLAS
//             (EngineConfig::decode_gemm off), and the bytes of the oneDNN path's weight copies;
//   sharing:  n = --n samples of one --share-prompt-len prompt with the shared prompt, against n
//             independent requests with the same seeds (each computes the prompt);
// One JSON line on stdout. bench/generate_compare.sh adds the PyTorch reference.
#include <algorithm>
#include <thread>

#include "bench_common.h"
#include "rmkit/model/decode_gemm.h"
#include "rmkit/model/registry.h"
#include "rmkit/serve/engine.h"

using namespace rmkit;
using Clock = std::chrono::steady_clock;

namespace {

struct StreamStats {
  double seconds = 0, tokens = 0;
  std::vector<double> ttft, itl;
};

StreamStats run_streams(serve::Engine& e, int streams, int64_t prompt_len, int64_t max_tokens, int64_t vocab,
                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(streams));
  for (auto& p : prompts) {
    p.push_back(1);
    while (static_cast<int64_t>(p.size()) < prompt_len) p.push_back(static_cast<int32_t>(3 + rng() % (vocab - 3)));
  }
  serve::SamplingParams sp;
  sp.temperature = 0;
  sp.max_tokens = max_tokens;
  sp.ignore_eos = true;
  StreamStats st;
  std::mutex mu;
  const auto t0 = Clock::now();
  std::vector<std::thread> th;
  for (int s = 0; s < streams; ++s)
    th.emplace_back([&, s] {
      const auto start = Clock::now();
      auto h = e.submit(prompts[static_cast<size_t>(s)], sp, /*stream=*/true);
      std::vector<double> itl;
      double ttft = -1, n = 0;
      auto last = start;
      serve::GenEvent ev;
      while (h->next_event(&ev, Clock::now() + std::chrono::seconds(600))) {
        if (ev.ids.empty()) continue;
        const auto now = Clock::now();
        if (ttft < 0) ttft = std::chrono::duration<double>(now - start).count();
        else itl.push_back(std::chrono::duration<double>(now - last).count());
        last = now;
        n += static_cast<double>(ev.ids.size());
      }
      std::lock_guard<std::mutex> lk(mu);
      st.ttft.push_back(ttft);
      st.itl.insert(st.itl.end(), itl.begin(), itl.end());
      st.tokens += n;
    });
  for (auto& t : th) t.join();
  st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return st;
}

// `repeats` runs (each phase lasts well under a second, so one run is at the mercy of a neighbour's
// burst): tokens/s of the median run; latencies of all runs.
StreamStats run_repeated(serve::Engine& e, int repeats, int streams, int64_t prompt_len, int64_t max_tokens,
                         int64_t vocab, uint64_t seed) {
  std::vector<StreamStats> runs;
  for (int r = 0; r < repeats; ++r) runs.push_back(run_streams(e, streams, prompt_len, max_tokens, vocab, seed));
  std::vector<size_t> order(runs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return runs[a].tokens / runs[a].seconds < runs[b].tokens / runs[b].seconds; });
  StreamStats st = runs[order[order.size() / 2]];
  st.ttft.clear();
  st.itl.clear();
  for (const auto& r : runs) {
    st.ttft.insert(st.ttft.end(), r.ttft.begin(), r.ttft.end());
    st.itl.insert(st.itl.end(), r.itl.begin(), r.itl.end());
  }
  return st;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<OptionSpec> specs = {
      {"shape", OptKind::String, "small", "tiny | small | base (random init)"},
      {"streams", OptKind::Int, "16", "concurrent streams"},
      {"prompt-len", OptKind::Int, "64", "prompt tokens per stream"},
      {"max-tokens", OptKind::Int, "128", "new tokens per stream"},
      {"n", OptKind::Int, "30", "samples for the sharing bench"},
      {"share-prompt-len", OptKind::Int, "500", "prompt tokens for the sharing bench"},
      {"share-max-tokens", OptKind::Int, "32", "new tokens per sample in the sharing bench"},
      {"seed", OptKind::Int, "1", "seed"},
      {"repeats", OptKind::Int, "5", "runs of each streams phase (tokens/s of the median run)"},
      {"compare-blas", OptKind::Int, "1", "also run the streams with decode linears on torch's BLAS (0: skip, e.g. to profile)"},
      {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
  };
  try {
    auto parsed = bench::parse_options(argc, argv, "bench_generate", "generation engine throughput", specs);
    if (!parsed) return 0;
    const Options& o = *parsed;
    auto shape = bench::shape_by_name(o.str("shape"));
    auto cfg = bench::config_for(shape);
    torch::manual_seed(static_cast<uint64_t>(o.integer("seed")));
    auto model = model::create_model(cfg);
    std::shared_ptr<text::Tokenizer> tok(text::load_tokenizer(asset_path("tokenizers/llama2/tokenizer.model")).release());
    serve::EngineConfig ec;
    ec.kv_cache_mb = 8192;
    ec.max_queue = 4096;
    ec.max_running = 256;
    serve::Engine engine(model, tok, ec);
    const int S = static_cast<int>(o.integer("streams"));
    const uint64_t seed = static_cast<uint64_t>(o.integer("seed"));
    run_streams(engine, 2, 16, 8, shape.vocab, seed);  // warm-up
    const int R = static_cast<int>(std::max<int64_t>(1, o.integer("repeats")));
    auto one = run_repeated(engine, R, 1, o.integer("prompt-len"), o.integer("max-tokens"), shape.vocab, seed);
    auto many = run_repeated(engine, R, S, o.integer("prompt-len"), o.integer("max-tokens"), shape.vocab, seed);
    const int64_t copy_bytes = model::decode_gemm_cache_bytes();
    // the same S streams with decode-step linears on torch's BLAS (EngineConfig::decode_gemm off)
    StreamStats many_blas = many;
    if (o.integer("compare-blas") != 0) {
      serve::EngineConfig eb = ec;
      eb.decode_gemm = false;
      serve::Engine blas(model, tok, eb);
      run_streams(blas, 2, 16, 8, shape.vocab, seed);  // warm-up
      many_blas = run_repeated(blas, R, S, o.integer("prompt-len"), o.integer("max-tokens"), shape.vocab, seed);
    }
    int64_t param_bytes = 0;
    for (const auto& p : model->parameters()) param_bytes += p.numel() * static_cast<int64_t>(p.element_size());

    // sharing: n samples of one prompt vs n independent requests
    std::mt19937_64 rng(seed + 7);
    std::vector<int32_t> prompt = {1};
    while (static_cast<int64_t>(prompt.size()) < o.integer("share-prompt-len"))
      prompt.push_back(static_cast<int32_t>(3 + rng() % (shape.vocab - 3)));
    serve::SamplingParams sp;
    sp.temperature = 0.8;
    sp.max_tokens = o.integer("share-max-tokens");
    sp.ignore_eos = true;
    sp.seed = 11;
    const int64_t n = o.integer("n");
    auto t0 = Clock::now();
    serve::SamplingParams shared = sp;
    shared.n = n;
    auto a = engine.generate_many({prompt}, {shared});
    const double t_shared = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n), prompt);
    std::vector<serve::SamplingParams> ps(static_cast<size_t>(n), sp);
    for (int64_t i = 0; i < n; ++i) ps[static_cast<size_t>(i)].seed = 11 + static_cast<uint64_t>(i);
    t0 = Clock::now();
    auto b = engine.generate_many(prompts, ps);
    const double t_separate = std::chrono::duration<double>(Clock::now() - t0).count();
    int64_t same = 0;
    for (int64_t i = 0; i < n; ++i) same += a[0][static_cast<size_t>(i)].tokens == b[static_cast<size_t>(i)][0].tokens;

    nlohmann::json j = {{"shape", bench::shape_json(shape)},
                        {"threads", at::get_num_threads()},
                        {"one_stream_tokens_per_s", one.tokens / one.seconds},
                        {"streams", S},
                        {"repeats", R},
                        {"streams_tokens_per_s", many.tokens / many.seconds},
                        {"streams_ratio", (many.tokens / many.seconds) / (one.tokens / one.seconds)},
                        {"streams_tokens_per_s_blas", many_blas.tokens / many_blas.seconds},
                        {"decode_gemm_speedup", (many.tokens / many.seconds) / (many_blas.tokens / many_blas.seconds)},
                        {"decode_gemm_copy_bytes", copy_bytes},
                        {"model_parameter_bytes", param_bytes},
                        {"ttft_p50_ms", 1e3 * bench::percentile(many.ttft, 0.5)},
                        {"ttft_p99_ms", 1e3 * bench::percentile(many.ttft, 0.99)},
                        {"itl_p50_ms", 1e3 * bench::percentile(many.itl, 0.5)},
                        {"itl_p99_ms", 1e3 * bench::percentile(many.itl, 0.99)},
                        {"share_n", n},
                        {"share_prompt_len", prompt.size()},
                        {"shared_seconds", t_shared},
                        {"separate_seconds", t_separate},
                        {"sharing_speedup", t_separate / t_shared},
                        {"shared_equals_separate", same}};
    bench::add_dispatch_env(j);
    std::cout << j.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_generate: error: " << e.what() << "\n";
    return 1;
  }
}
