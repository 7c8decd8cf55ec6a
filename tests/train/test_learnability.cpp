// End-to-end learnability (suite E2E*, run with the e2e label by name): pairs built from real
// responses, chosen = the original response (its first sentences), rejected = the same response
// with its words shuffled, or cut off mid-sentence. Training stories260K (tok512) for a few hundred
// steps must reach >= 90 % accuracy on held-out pairs, with bt, bt + dpo and margin-mse (margin =
// corruption degree); bt also under bf16 autocast, within 1 point of fp32.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "rmkit/core/file_io.h"
#include "rmkit/data/readers.h"
#include "rmkit/model/runtime.h"
#include "rmkit/train/trainer.h"
#include "test_util.h"

namespace rmkit::train {
namespace {

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> w;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t') {
      if (!cur.empty()) w.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) w.push_back(cur);
  return w;
}

std::string join_words(const std::vector<std::string>& w, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < w.size(); ++i) s += (i ? " " : "") + w[i];
  return s;
}

// First sentences of `text` up to ~max_chars, ending at '.', '!' or '?'; "" when none fits.
std::string leading_sentences(const std::string& text, size_t min_chars, size_t max_chars) {
  std::string flat = join_words(words_of(text), SIZE_MAX);
  size_t end = std::string::npos;
  for (size_t i = 0; i < flat.size() && i < max_chars; ++i)
    if ((flat[i] == '.' || flat[i] == '!' || flat[i] == '?') && (i + 1 == flat.size() || flat[i + 1] == ' '))
      end = i + 1;
  if (end == std::string::npos || end < min_chars) return "";
  return flat.substr(0, end);
}

std::string json_str(const std::string& s) { return nlohmann::json(s).dump(); }

// Writes train/val files; returns their paths. Even pairs: shuffled words (degree 1); odd pairs:
// cut after a fraction f of the words (degree 1 - f). score_chosen = 1, score_rejected = 1 - degree.
std::pair<std::string, std::string> build_corruption_data(const std::string& dir, size_t n_train, size_t n_val) {
  std::vector<std::pair<std::string, std::string>> base;  // (prompt, response)
  for (const char* f : {"prefs/hh_rlhf_harmless_base_test.jsonl.gz", "prefs/ultrafeedback_sample.jsonl.gz"}) {
    for (const auto& p : data::read_prefs(rmkit::testing::asset(f))) {
      std::string resp = leading_sentences(p.chosen, 60, 170);
      if (resp.empty() || words_of(resp).size() < 8) continue;
      std::string user;
      for (const auto& m : p.prompt)
        if (m.role == "user") user = m.content;
      auto uw = words_of(user);
      std::string prompt = join_words(uw, 10);
      if (prompt.empty()) continue;
      base.emplace_back(prompt, resp);
      if (base.size() >= n_train + n_val) break;
    }
    if (base.size() >= n_train + n_val) break;
  }
  EXPECT_GE(base.size(), n_train + n_val);
  std::mt19937_64 rng(1234);
  std::string train, val;
  for (size_t i = 0; i < base.size(); ++i) {
    const auto& [prompt, resp] = base[i];
    auto w = words_of(resp);
    std::string rejected;
    double degree;
    if (i % 2 == 0) {
      auto s = w;
      for (int tries = 0; tries < 10 && s == w; ++tries)
        for (size_t k = s.size() - 1; k > 0; --k) std::swap(s[k], s[rng() % (k + 1)]);
      rejected = join_words(s, s.size());
      degree = 1.0;
    } else {
      double f = 0.3 + 0.4 * static_cast<double>(rng() % 1000) / 1000.0;
      size_t keep = std::max<size_t>(2, static_cast<size_t>(f * static_cast<double>(w.size())));
      rejected = join_words(w, keep);
      while (!rejected.empty() && std::string(".!?,;:").find(rejected.back()) != std::string::npos) rejected.pop_back();
      degree = 1.0 - static_cast<double>(keep) / static_cast<double>(w.size());
    }
    std::string row = "{\"id\":\"corrupt-" + std::to_string(i) + "\",\"prompt\":" + json_str(prompt) +
                      ",\"chosen\":" + json_str(resp) + ",\"rejected\":" + json_str(rejected) +
                      ",\"score_chosen\":1.0,\"score_rejected\":" + std::to_string(1.0 - degree) + "}\n";
    (i < n_train ? train : val) += row;
  }
  std::string tp = join_path(dir, "train.jsonl"), vp = join_path(dir, "val.jsonl");
  rmkit::write_file_atomic(tp, train);
  rmkit::write_file_atomic(vp, val);
  return {tp, vp};
}

struct Outcome {
  double accuracy;
  double seconds;
};

Outcome train_on_corruptions(const std::string& tag, const std::string& loss, bool bf16 = false,
                             uint64_t seed = 0) {
  rmkit::model::configure_runtime(0);
  std::string dir = rmkit::testing::temp_dir("e2e_" + tag);
  auto [train, val] = build_corruption_data(dir, 800, 600);
  TrainerOptions o;
  o.model = rmkit::testing::asset("models/stories260K/stories260K.bin");
  o.tokenizer = rmkit::testing::asset("models/stories260K/tok512.bin");
  o.data = {train};
  o.val_data = {val};
  o.output = join_path(dir, "out");
  o.chat_template = "plain";
  o.max_length = 128;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.warmup_ratio = 0.05;
  o.max_steps = 250;
  o.eval_every = 125;
  o.loss = loss;
  o.progress = "off";
  o.bf16 = bf16;
  if (seed) o.seed = seed;
  Trainer t(o);
  t.set_logger([](const std::string&) {});
  auto start = std::chrono::steady_clock::now();
  auto r = t.train();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[e2e " << tag << "] loss " << loss << ": held-out accuracy " << r.final_val_accuracy
            << " (best " << r.best_val_accuracy << " at step " << r.best_step << "), " << secs << " s\n";
  ::testing::Test::RecordProperty("val_accuracy", std::to_string(r.final_val_accuracy));
  ::testing::Test::RecordProperty("seconds", std::to_string(secs));
  std::filesystem::remove_all(dir);
  return {r.final_val_accuracy, secs};
}

// Also bf16 CPU autocast on the same task: above the bar and within 1 point of fp32 (the
// performance issue's condition for using bf16). One test, so the fp32 runs are not repeated.
// Two training seeds per dtype, compared by their mean on 600 held-out pairs: a single run's final
// accuracy moves by 1-2.5 points with the data order alone (measured: fp32 0.985 vs 0.96 for two
// layouts of the same computation at 200 held-out pairs), which a 1-point bound cannot absorb.
TEST(E2ELearnability, BradleyTerryLearnsCorruptionsFp32AndBf16) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  double fp32 = 0, bf16 = 0;
  for (uint64_t seed : {42, 7}) {
    double a = train_on_corruptions("bt_s" + std::to_string(seed), "bt", false, seed).accuracy;
    double b = train_on_corruptions("bt_bf16_s" + std::to_string(seed), "bt", true, seed).accuracy;
    EXPECT_GE(a, 0.90);
    EXPECT_GE(b, 0.90);
    fp32 += a / 2;
    bf16 += b / 2;
  }
  EXPECT_LE(std::abs(bf16 - fp32), 0.01 + 1e-9) << "mean fp32 " << fp32 << " vs mean bf16 " << bf16;
}

TEST(E2ELearnability, BtPlusDpoLearnsCorruptions) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  EXPECT_GE(train_on_corruptions("bt_dpo", "bt:1,dpo:0.2").accuracy, 0.90);
}

TEST(E2ELearnability, MarginMseLearnsCorruptions) {
  RMKIT_REQUIRE_ASSET(rmkit::testing::asset("models/stories260K/stories260K.bin"));
  EXPECT_GE(train_on_corruptions("margin_mse", "margin-mse").accuracy, 0.90);
}

}  // namespace
}  // namespace rmkit::train
