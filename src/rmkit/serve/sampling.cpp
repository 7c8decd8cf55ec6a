#include "rmkit/serve/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "rmkit/serve/http_error.h"

namespace rmkit::serve {

void SamplingParams::validate(int64_t vocab) const {
  auto bad = [](const std::string& param, const std::string& msg) {
    return HttpError::bad_request(param + ": " + msg, param);
  };
  if (max_tokens < 0) throw bad("max_tokens", "must be >= 0");
  if (!std::isfinite(temperature) || temperature < 0 || temperature > 100) throw bad("temperature", "must be in [0, 100]");
  if (!std::isfinite(top_p) || !(top_p > 0) || top_p > 1) throw bad("top_p", "must be in (0, 1]");
  if (top_k < 0) throw bad("top_k", "must be >= 0 (or -1 for off)");
  if (!std::isfinite(min_p) || min_p < 0 || min_p > 1) throw bad("min_p", "must be in [0, 1]");
  if (!std::isfinite(repetition_penalty) || !(repetition_penalty > 0) || repetition_penalty > 100)
    throw bad("repetition_penalty", "must be in (0, 100]");
  if (!std::isfinite(frequency_penalty) || std::abs(frequency_penalty) > 2) throw bad("frequency_penalty", "must be in [-2, 2]");
  if (!std::isfinite(presence_penalty) || std::abs(presence_penalty) > 2) throw bad("presence_penalty", "must be in [-2, 2]");
  if (n < 1 || n > 256) throw bad("n", "must be in [1, 256]");
  if (logprobs > 20) throw bad("logprobs", "at most 20 alternatives");
  if (stop.size() > 16) throw bad("stop", "at most 16 stop strings");
  for (const auto& s : stop)
    if (s.empty() || s.size() > 256) throw bad("stop", "stop strings must be 1 to 256 bytes");
  for (int32_t id : stop_ids)
    if (id < 0 || id >= vocab) throw bad("stop_token_ids", "id " + std::to_string(id) + " outside the vocabulary");
}

TokenLogprob token_logprob(const float* logits, int64_t vocab, int32_t id, int64_t top_k) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  TokenLogprob t;
  t.id = id;
  t.logprob = static_cast<double>(logits[id]) - lse;
  if (top_k > 0) {
    std::vector<int32_t> idx(static_cast<size_t>(vocab));
    std::iota(idx.begin(), idx.end(), 0);
    const int64_t k = std::min(top_k, vocab);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int64_t i = 0; i < k; ++i) t.top.emplace_back(idx[static_cast<size_t>(i)], static_cast<double>(logits[idx[static_cast<size_t>(i)]]) - lse);
  }
  return t;
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& p,
                     const std::unordered_map<int32_t, int64_t>& counts, const std::vector<char>& seen,
                     std::mt19937_64& rng) {
  std::vector<double> l(logits, logits + vocab);
  if (p.repetition_penalty != 1.0)
    for (int64_t i = 0; i < vocab; ++i)
      if (seen[static_cast<size_t>(i)]) l[i] = l[i] > 0 ? l[i] / p.repetition_penalty : l[i] * p.repetition_penalty;
  if (p.frequency_penalty != 0.0 || p.presence_penalty != 0.0)
    for (const auto& [id, c] : counts)
      l[static_cast<size_t>(id)] -= static_cast<double>(c) * p.frequency_penalty + (c > 0 ? p.presence_penalty : 0.0);
  if (p.temperature <= 0.0)
    return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());  // first maximum
  const double neg_inf = -std::numeric_limits<double>::infinity();
  for (auto& x : l) x /= p.temperature;
  if (p.top_k > 0 && p.top_k < vocab) {
    std::vector<double> tmp(l);
    std::nth_element(tmp.begin(), tmp.begin() + (p.top_k - 1), tmp.end(), std::greater<double>());
    const double kth = tmp[static_cast<size_t>(p.top_k - 1)];
    for (auto& x : l)
      if (x < kth) x = neg_inf;
  }
  const double mx = *std::max_element(l.begin(), l.end());
  std::vector<double> prob(static_cast<size_t>(vocab));
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) total += (prob[i] = std::exp(l[i] - mx));
  for (auto& x : prob) x /= total;
  if (p.top_p < 1.0) {  // drop ids whose strictly-more-probable mass already reaches top_p
    std::vector<int32_t> idx(static_cast<size_t>(vocab));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return prob[a] > prob[b]; });
    double before = 0;
    for (int32_t i : idx) {
      const double pi = prob[static_cast<size_t>(i)];
      if (before >= p.top_p) prob[static_cast<size_t>(i)] = 0;
      before += pi;
    }
  }
  if (p.min_p > 0) {
    const double pmax = *std::max_element(prob.begin(), prob.end());
    for (auto& x : prob)
      if (x < p.min_p * pmax) x = 0;
  }
  double kept = 0;
  for (double x : prob) kept += x;
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const double u = uni(rng) * kept;
  double acc = 0;
  int32_t choice = -1;
  for (int64_t i = 0; i < vocab; ++i) {
    if (prob[static_cast<size_t>(i)] <= 0) continue;
    choice = static_cast<int32_t>(i);
    acc += prob[static_cast<size_t>(i)];
    if (u < acc) break;
  }
  return choice < 0 ? 0 : choice;
}

}  // namespace rmkit::serve
