// Tokenizer throughput on RMB text (prompt contents + chosen + rejected of prefs/rmb_pairwise).
//   bench_tokenize [--max-mb 8] [tokenizer paths...]
// Default tokenizers: GPT-2 / Llama-3 / Qwen3 tokenizer.json, Llama-2 tokenizer.model and the
// stories260K tok512.bin, all through rmkit::text::load_tokenizer(); a loader that throws is
// reported as "unavailable". For each: single-thread MB/s and tokens/s (median of 3 passes after a
// warm-up). For SentencePiece .model files it also times Debian's spm_encode on the same texts (one
// per line, '\n' and '\r' written as the two characters "\n" / "\r"; our figure for that comparison is
// measured on the same escaped lines), reports how many lines give identical ids, and the speed
// ratio. The last line of output is one JSON object with every figure.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/text/tokenizer.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::string> load_rmb_texts(size_t max_bytes, size_t& total) {
  std::vector<std::string> texts;
  total = 0;
  rmkit::for_each_line(rmkit::asset_path("prefs/rmb_pairwise.jsonl.gz"), [&](const std::string& line, size_t) {
    auto j = json::parse(line);
    auto add = [&](const json& v) {
      if (!v.is_string()) return;
      texts.push_back(v.get<std::string>());
      total += texts.back().size();
    };
    if (j.contains("prompt") && j["prompt"].is_array())
      for (const auto& m : j["prompt"]) add(m.value("content", json()));
    add(j.value("chosen", json()));
    add(j.value("rejected", json()));
    return total < max_bytes;
  });
  return texts;
}

struct Timing {
  double sec = 0;      // wall
  double cpu_sec = 0;  // this thread's CPU time (robust on a shared, oversubscribed machine)
  size_t tokens = 0;
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// Warm-up pass, then the median of 3 timed passes.
Timing time_encode(const rmkit::text::Tokenizer& tok, const std::vector<std::string>& texts) {
  std::vector<Timing> runs;
  for (int pass = 0; pass < 4; ++pass) {
    Timing t;
    auto t0 = Clock::now();
    double c0 = thread_cpu_seconds();
    for (const auto& s : texts) t.tokens += tok.encode(s).size();
    t.sec = seconds_since(t0);
    t.cpu_sec = thread_cpu_seconds() - c0;
    if (pass > 0) runs.push_back(t);
  }
  std::sort(runs.begin(), runs.end(), [](const Timing& a, const Timing& b) { return a.sec < b.sec; });
  return runs[1];
}

std::string escape_line(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    if (c == '\n') o += "\\n";
    else if (c == '\r') o += "\\r";
    else o.push_back(c);
  }
  return o;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs spm_encode on `input`, returns wall seconds (-1 on failure) and fills `out` with its ids.
double run_spm_encode(const std::string& model, const std::string& input, const std::string& output) {
  std::string cmd = "spm_encode --model=" + shell_quote(model) + " --output_format=id < " + shell_quote(input) +
                    " > " + shell_quote(output) + " 2>/dev/null";
  auto t0 = Clock::now();
  int rc = std::system(cmd.c_str());
  double s = seconds_since(t0);
  return rc == 0 ? s : -1;
}

void compare_with_spm_encode(const rmkit::text::Tokenizer& tok, const std::string& model,
                             const std::vector<std::string>& texts, json& r) {
  std::string dir = (std::filesystem::temp_directory_path() / ("bench_tokenize_" + std::to_string(::getpid()))).string();
  rmkit::make_dirs(dir);
  struct RemoveOnExit {
    std::string path;
    ~RemoveOnExit() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } cleanup{dir};
  std::vector<std::string> lines;
  std::string all, empty_in = dir + "/empty.txt", in = dir + "/in.txt", out = dir + "/out.txt";
  for (const auto& s : texts) {
    lines.push_back(escape_line(s));
    all += lines.back() + "\n";
  }
  rmkit::write_file_atomic(in, all);
  rmkit::write_file_atomic(empty_in, "x\n");
  double base = run_spm_encode(model, empty_in, out);  // process start + model load
  double sec = -1;
  for (int k = 0; k < 3; ++k) {
    double s = run_spm_encode(model, in, out);
    if (s < 0) { sec = -1; break; }
    sec = sec < 0 ? s : std::min(sec, s);
  }
  if (sec < 0 || base < 0) {
    r["spm_encode"] = "unavailable (spm_encode failed or not installed)";
    std::printf("  spm_encode: unavailable\n");
    return;
  }
  Timing ours = time_encode(tok, lines);
  double spm_mb_s = all.size() / 1e6 / std::max(1e-9, sec - base);
  double our_mb_s = all.size() / 1e6 / ours.sec;
  std::istringstream got(rmkit::read_file(out));
  std::string line;
  size_t agree = 0, n = 0;
  while (std::getline(got, line) && n < lines.size()) {
    std::vector<int32_t> ids;
    std::istringstream ls(line);
    for (int32_t v; ls >> v;) ids.push_back(v);
    agree += ids == tok.encode(lines[n]);
    ++n;
  }
  r["spm_encode_mb_s"] = spm_mb_s;
  r["escaped_lines_mb_s"] = our_mb_s;
  r["ratio_vs_spm_encode"] = our_mb_s / spm_mb_s;
  r["spm_ids_agree"] = std::to_string(agree) + "/" + std::to_string(lines.size());
  std::printf("  spm_encode: %.2f MB/s (load %.2fs subtracted); ours on the same lines %.2f MB/s; ratio %.2fx; "
              "identical ids on %zu/%zu lines\n", spm_mb_s, base, our_mb_s, our_mb_s / spm_mb_s, agree, lines.size());
  std::remove(in.c_str());
  std::remove(out.c_str());
  std::remove(empty_in.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  double max_mb = 8;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--max-mb" && i + 1 < argc) max_mb = std::atof(argv[++i]);
    else if (a == "-h" || a == "--help") {
      std::printf("usage: bench_tokenize [--max-mb N] [tokenizer paths...]\n");
      return 0;
    } else paths.push_back(a);
  }
  if (paths.empty())
    for (const char* rel : {"tokenizers/gpt2/hf/tokenizer.json", "tokenizers/llama3/tokenizer.json",
                            "tokenizers/qwen3/tokenizer.json", "tokenizers/llama2/tokenizer.model",
                            "models/stories260K/tok512.bin"})
      paths.push_back(rmkit::asset_path(rel));

  size_t total = 0;
  std::vector<std::string> texts;
  try {
    texts = load_rmb_texts(static_cast<size_t>(max_mb * 1e6), total);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenize: cannot read RMB texts: %s\n", e.what());
    return 1;
  }
  std::printf("RMB texts: %zu strings, %.2f MB (single thread, median of 3 passes after a warm-up)\n",
              texts.size(), total / 1e6);
  json report = {{"bench", "tokenize"}, {"texts", texts.size()}, {"text_bytes", total}, {"results", json::array()}};
  for (const auto& p : paths) {
    json r = {{"tokenizer", p}};
    std::unique_ptr<rmkit::text::Tokenizer> tok;
    auto t0 = Clock::now();
    try {
      tok = rmkit::text::load_tokenizer(p);
    } catch (const std::exception& e) {
      r["status"] = std::string("unavailable: ") + e.what();
      std::printf("%s: unavailable (%s)\n", p.c_str(), e.what());
      report["results"].push_back(r);
      continue;
    }
    double load_s = seconds_since(t0);
    Timing t;
    try {
      t = time_encode(*tok, texts);
    } catch (const std::exception& e) {
      r["status"] = std::string("encode failed: ") + e.what();
      std::printf("%s: encode failed (%s)\n", p.c_str(), e.what());
      report["results"].push_back(r);
      continue;
    }
    double mb_s = total / 1e6 / t.sec, tok_s = t.tokens / t.sec, cpu_mb_s = total / 1e6 / t.cpu_sec;
    r.update({{"status", "ok"}, {"kind", tok->kind()}, {"load_s", load_s}, {"mb_s", mb_s}, {"tokens_s", tok_s},
              {"cpu_mb_s", cpu_mb_s},
              {"tokens", t.tokens}, {"bytes_per_token", static_cast<double>(total) / std::max<size_t>(1, t.tokens)}});
    std::printf("%s [%s]: %.2f MB/s (%.2f MB/s of thread CPU time), %.0f tokens/s, %zu tokens (%.2f bytes/token), load %.2fs\n",
                p.c_str(), tok->kind().c_str(), mb_s, cpu_mb_s, tok_s, t.tokens, static_cast<double>(total) / std::max<size_t>(1, t.tokens), load_s);
    if (p.size() > 6 && p.compare(p.size() - 6, 6, ".model") == 0) compare_with_spm_encode(*tok, p, texts, r);
    report["results"].push_back(r);
  }
  std::printf("%s\n", report.dump().c_str());
  return 0;
}
