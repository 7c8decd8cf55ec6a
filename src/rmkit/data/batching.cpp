#include "rmkit/data/batching.h"

#include <algorithm>

#include "rmkit/core/error.h"

namespace rmkit::data {
namespace {

struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next(); while (x >= limit);
    return x % n;
  }
};

template <class T>
void fisher_yates(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

SplitMix64 make_rng(uint64_t seed, uint64_t epoch, uint64_t stream) {
  SplitMix64 r{seed};
  uint64_t a = r.next();
  SplitMix64 r2{a ^ (epoch * 0xD1B54A32D192ED03ULL) ^ (stream * 0x8CB92BA72F3D8DD7ULL)};
  r2.next();
  return r2;
}

void check_batch_size(size_t b) {
  if (b == 0) throw UsageError("batch size must be positive");
}

}  // namespace

std::vector<size_t> shuffled_indices(size_t n, uint64_t seed, uint64_t epoch) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  SplitMix64 rng = make_rng(seed, epoch, 1);
  fisher_yates(idx, rng);
  return idx;
}

Batches length_grouped_batches(const std::vector<size_t>& lengths, size_t batch_size,
                               uint64_t seed, uint64_t epoch, size_t mega_batch_mult,
                               bool drop_last) {
  check_batch_size(batch_size);
  if (mega_batch_mult == 0) throw UsageError("mega-batch multiplier must be positive");
  std::vector<size_t> idx = shuffled_indices(lengths.size(), seed, epoch);
  size_t mega = batch_size * mega_batch_mult;
  Batches batches;
  for (size_t start = 0; start < idx.size(); start += mega) {
    size_t end = std::min(idx.size(), start + mega);
    std::sort(idx.begin() + start, idx.begin() + end, [&](size_t a, size_t b) {
      return lengths[a] != lengths[b] ? lengths[a] > lengths[b] : a < b;
    });
    for (size_t b = start; b < end; b += batch_size) {
      size_t e = std::min(end, b + batch_size);
      if (drop_last && e - b < batch_size) continue;
      batches.emplace_back(idx.begin() + b, idx.begin() + e);
    }
  }
  SplitMix64 rng = make_rng(seed, epoch, 2);
  fisher_yates(batches, rng);
  // longest first (the first index of its batch, which is sorted descending); ties: the earlier batch
  size_t longest = 0;
  for (size_t b = 1; b < batches.size(); ++b)
    if (lengths[batches[b].front()] > lengths[batches[longest].front()]) longest = b;
  if (longest != 0) std::swap(batches[0], batches[longest]);
  return batches;
}

Batches random_batches(size_t n, size_t batch_size, uint64_t seed, uint64_t epoch,
                       bool drop_last) {
  check_batch_size(batch_size);
  std::vector<size_t> idx = shuffled_indices(n, seed, epoch);
  Batches batches;
  for (size_t b = 0; b < n; b += batch_size) {
    size_t e = std::min(n, b + batch_size);
    if (drop_last && e - b < batch_size) continue;
    batches.emplace_back(idx.begin() + b, idx.begin() + e);
  }
  return batches;
}

Batches sequential_batches(const std::vector<size_t>& lengths, size_t batch_size,
                           size_t max_tokens) {
  check_batch_size(batch_size);
  std::vector<size_t> idx(lengths.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  Batches batches;
  std::vector<size_t> cur;
  size_t longest = 0;
  for (size_t i : idx) {
    // Sorted descending: the first item of a batch is its longest.
    size_t l = cur.empty() ? lengths[i] : longest;
    bool over_tokens = max_tokens > 0 && !cur.empty() && (cur.size() + 1) * l > max_tokens;
    if (cur.size() == batch_size || over_tokens) {
      batches.push_back(std::move(cur));
      cur.clear();
    }
    if (cur.empty()) longest = lengths[i];
    cur.push_back(i);
  }
  if (!cur.empty()) batches.push_back(std::move(cur));
  return batches;
}

double padding_fraction(const std::vector<size_t>& lengths) {
  if (lengths.empty()) return 0.0;
  size_t mx = 0, sum = 0;
  for (size_t l : lengths) {
    mx = std::max(mx, l);
    sum += l;
  }
  if (mx == 0) return 0.0;
  double slots = static_cast<double>(mx) * lengths.size();
  return (slots - static_cast<double>(sum)) / slots;
}

double padding_fraction(const Batches& batches, const std::vector<size_t>& lengths) {
  double pad = 0, slots = 0;
  for (const auto& b : batches) {
    size_t mx = 0, sum = 0;
    for (size_t i : b) {
      mx = std::max(mx, lengths.at(i));
      sum += lengths.at(i);
    }
    slots += static_cast<double>(mx) * b.size();
    pad += static_cast<double>(mx) * b.size() - static_cast<double>(sum);
  }
  return slots > 0 ? pad / slots : 0.0;
}

}  // namespace rmkit::data
