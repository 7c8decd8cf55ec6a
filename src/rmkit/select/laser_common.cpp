#include "rmkit/select/laser_common.h"

#include <random>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/prompt_rows.h"
#include "rmkit/select/bandit/rng.h"
#include "rmkit/select/preference_pairs.h"

namespace rmkit::select {

using json = nlohmann::json;

std::vector<LaserPrompt> read_laser_prompts(const std::string& path) {
  if (!path_exists(path)) throw IoError("--prompts " + path + ": no such file");
  std::vector<LaserPrompt> out;
  data::for_each_prompt_row(path, [&](json& j, text::Conversation& prompt, const std::string& where, size_t) {
    if (j.contains("category") && !j["category"].is_string()) throw FormatError(where + ": field 'category': expected a string");
    LaserPrompt p;
    p.prompt = std::move(prompt);
    p.category = j.value("category", "");
    p.raw = std::move(j);
    out.push_back(std::move(p));
    return true;
  });
  if (out.empty()) throw FormatError(path + ": no prompts");
  return out;
}

PromptEncoder::PromptEncoder(const model::ModelConfig& cfg, const text::Tokenizer& tok, const std::string& chat_template)
    : tok_(tok), tmpl_(text::ChatTemplate::resolve(chat_template, cfg.model_type, tok)) {}

std::vector<int32_t> PromptEncoder::encode(const text::Conversation& conv) const { return tmpl_.encode_prompt(tok_, conv); }

std::vector<std::unique_ptr<RewardArm>> load_arms(const std::vector<ArmSpec>& specs, const ArmOptions& opts,
                                                  std::vector<std::string>* names) {
  std::vector<std::unique_ptr<RewardArm>> arms;
  names->clear();
  for (const auto& s : specs) {
    for (const auto& n : *names)
      if (n == s.name) throw UsageError("--rm " + s.name + ": the name is given twice");
    arms.push_back(make_arm(s, opts));
    names->push_back(s.name);
  }
  return arms;
}

uint64_t sampling_seed_base(uint64_t seed) { return SplitMix64(seed).next(); }

serve::EngineConfig laser_engine_config(const LaserRunConfig& cfg) {
  serve::EngineConfig ec;
  ec.kv_cache_mb = cfg.kv_cache_mb;
  ec.max_queue = 1 << 20;
  return ec;
}

serve::SamplingParams laser_sampling(const LaserRunConfig& cfg, int64_t n, uint64_t request) {
  serve::SamplingParams sp;
  sp.n = n;
  sp.max_tokens = cfg.max_new_tokens;
  sp.temperature = cfg.temperature;
  sp.top_p = cfg.top_p;
  sp.seed = sampling_seed_base(cfg.seed) + request * static_cast<uint64_t>(n);
  return sp;
}

std::vector<size_t> shuffled_indices(size_t n, uint64_t seed, uint64_t iteration) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + iteration + 1);
  for (size_t i = n; i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
  return v;
}

std::vector<std::vector<double>> context_rows(const torch::Tensor& ctx) {
  auto c = ctx.to(torch::kDouble).contiguous();
  const int64_t B = c.size(0), H = c.size(1);
  const double* p = c.data_ptr<double>();
  std::vector<std::vector<double>> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) rows[static_cast<size_t>(b)].assign(p + b * H, p + (b + 1) * H);
  return rows;
}

std::vector<double> mean_row(const std::vector<std::vector<double>>& rows) {
  std::vector<double> m(rows.empty() ? 0 : rows[0].size(), 0.0);
  for (const auto& r : rows)
    for (size_t i = 0; i < m.size(); ++i) m[i] += r[i] / static_cast<double>(rows.size());
  return m;
}

ScoredBatch score_batch(std::vector<std::unique_ptr<RewardArm>>& arms, bool ensemble, const std::vector<size_t>& arm_of,
                        const std::vector<size_t>& batch, const std::vector<LaserPrompt>& prompts,
                        const std::vector<std::vector<serve::Completion>>& outs) {
  ScoredBatch sb;
  const size_t B = batch.size();
  sb.scores.resize(B);
  auto item = [&](size_t b) {
    ScoreItem it;
    it.prompt = prompts[batch[b]].prompt;
    for (const auto& c : outs[b]) it.responses.push_back(c.text);
    return it;
  };
  if (ensemble) {
    std::vector<ScoreItem> items;
    size_t off = 0;
    for (size_t b = 0; b < B; ++b) {
      items.push_back(item(b));
      sb.offset.push_back(off);
      off += outs[b].size();
    }
    for (auto& a : arms) sb.per_arm.push_back(a->score(items));
    const auto mixed = ensemble_mean(sb.per_arm);
    for (size_t b = 0; b < B; ++b)
      sb.scores[b].assign(mixed.begin() + static_cast<std::ptrdiff_t>(sb.offset[b]),
                          mixed.begin() + static_cast<std::ptrdiff_t>(sb.offset[b] + outs[b].size()));
    return sb;
  }
  for (size_t k = 0; k < arms.size(); ++k) {
    std::vector<size_t> mine;
    std::vector<ScoreItem> items;
    for (size_t b = 0; b < B; ++b)
      if (arm_of[b] == k) {
        mine.push_back(b);
        items.push_back(item(b));
      }
    if (items.empty()) continue;
    const auto r = arms[k]->score(items);
    size_t pos = 0;
    for (size_t b : mine) {
      sb.scores[b].assign(r.begin() + static_cast<std::ptrdiff_t>(pos), r.begin() + static_cast<std::ptrdiff_t>(pos + outs[b].size()));
      pos += outs[b].size();
    }
  }
  return sb;
}

}  // namespace rmkit::select
