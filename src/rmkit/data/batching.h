// Batch construction over sequence lengths. All randomness comes from a splitmix64 stream seeded
// by (seed, epoch) with an in-house Fisher-Yates shuffle, so batches are identical across runs,
// compilers and standard libraries.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rmkit::data {

using Batches = std::vector<std::vector<size_t>>;  // each batch: indices into the lengths vector

// Deterministic permutation of 0..n-1 for (seed, epoch).
std::vector<size_t> shuffled_indices(size_t n, uint64_t seed, uint64_t epoch);

// Length-grouped batches (as in HF's LengthGroupedSampler): shuffle the indices, cut them into
// mega-batches of batch_size * mega_batch_mult, sort each mega-batch by length (descending,
// ties by index), cut it into batches of batch_size, then shuffle the batch order and, as HF does,
// move the batch holding the longest sequence to the front: the step that needs the most memory
// runs first, so an out-of-memory shows at once and the heap grows to its size in the first steps
// rather than faulting fresh pages in whenever a longer batch comes. Every index appears exactly
// once; the last batch of each mega-batch may be smaller unless drop_last, which drops the (at
// most one per mega-batch) short batches.
Batches length_grouped_batches(const std::vector<size_t>& lengths, size_t batch_size,
                               uint64_t seed, uint64_t epoch, size_t mega_batch_mult = 50,
                               bool drop_last = false);

// Plain random batches: shuffled indices cut into batch_size chunks (the baseline).
Batches random_batches(size_t n, size_t batch_size, uint64_t seed, uint64_t epoch,
                       bool drop_last = false);

// Scoring batches: indices sorted by length descending (ties by index), cut into batches of at
// most batch_size items and, when max_tokens > 0, at most max_tokens padded tokens
// (items * longest). Callers restore input order through the indices.
Batches sequential_batches(const std::vector<size_t>& lengths, size_t batch_size,
                           size_t max_tokens = 0);

// Pad tokens / total slots when every sequence is padded to the longest: 1 - sum / (n * max).
// 0 for an empty batch.
double padding_fraction(const std::vector<size_t>& lengths);
// Same over a whole epoch of batches (total pad / total slots).
double padding_fraction(const Batches& batches, const std::vector<size_t>& lengths);

}  // namespace rmkit::data
