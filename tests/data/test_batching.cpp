#include <algorithm>
#include <numeric>

#include "byte_tokenizer.h"
#include "rmkit/core/error.h"
#include "rmkit/data/batching.h"
#include "rmkit/data/encode.h"
#include "rmkit/data/readers.h"
#include "test_util.h"

namespace rmkit::data {
namespace {

void expect_each_index_once(const Batches& b, size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& batch : b)
    for (size_t i : batch) {
      ASSERT_LT(i, n);
      ++seen[i];
    }
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "index " << i;
}

std::vector<size_t> toy_lengths(size_t n) {
  std::vector<size_t> l(n);
  for (size_t i = 0; i < n; ++i) l[i] = (i * 7919) % 513 + 1;
  return l;
}

TEST(PaddingFraction, HandComputed) {
  // max 5, 3 slots * 5 = 15, tokens 10 -> 5 / 15.
  EXPECT_DOUBLE_EQ(padding_fraction(std::vector<size_t>{3, 5, 2}), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(padding_fraction(std::vector<size_t>{4, 4}), 0.0);
  EXPECT_DOUBLE_EQ(padding_fraction(std::vector<size_t>{}), 0.0);
  // Two batches {3,5,2} (pad 5 of 15) and {1,4} (pad 3 of 8): 8 / 23.
  std::vector<size_t> lengths = {3, 5, 2, 1, 4};
  EXPECT_DOUBLE_EQ(padding_fraction(Batches{{0, 1, 2}, {3, 4}}, lengths), 8.0 / 23.0);
}

TEST(LengthGrouped, DeterministicPerSeedAndEpoch) {
  auto l = toy_lengths(1000);
  auto a = length_grouped_batches(l, 8, 42, 0, 10);
  auto b = length_grouped_batches(l, 8, 42, 0, 10);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, length_grouped_batches(l, 8, 42, 1, 10));
  EXPECT_NE(a, length_grouped_batches(l, 8, 43, 0, 10));
  EXPECT_EQ(shuffled_indices(50, 7, 3), shuffled_indices(50, 7, 3));
  EXPECT_NE(shuffled_indices(50, 7, 3), shuffled_indices(50, 7, 4));
}

TEST(LengthGrouped, EveryIndexOnceAndSortedWithinBatches) {
  auto l = toy_lengths(1003);
  auto b = length_grouped_batches(l, 8, 1, 0, 10);
  expect_each_index_once(b, l.size());
  // 1003 = 12 full mega-batches of 80 (10 batches each) + 43 (5 of 8 + one of 3).
  EXPECT_EQ(b.size(), 126u);
  size_t short_batches = 0;
  for (const auto& batch : b) {
    if (batch.size() != 8) ++short_batches;
    for (size_t k = 1; k < batch.size(); ++k) EXPECT_GE(l[batch[k - 1]], l[batch[k]]);
  }
  EXPECT_EQ(short_batches, 1u);
  auto d = length_grouped_batches(l, 8, 1, 0, 10, /*drop_last=*/true);
  EXPECT_EQ(d.size(), 125u);
  for (const auto& batch : d) EXPECT_EQ(batch.size(), 8u);
  EXPECT_THROW(length_grouped_batches(l, 0, 1, 0), UsageError);
}

TEST(LengthGrouped, LongestBatchFirstInEveryEpoch) {
  auto l = toy_lengths(1003);
  const size_t longest = *std::max_element(l.begin(), l.end());
  for (uint64_t epoch = 0; epoch < 4; ++epoch) {
    auto b = length_grouped_batches(l, 8, 5, epoch, 10);
    expect_each_index_once(b, l.size());
    EXPECT_EQ(l[b[0][0]], longest) << "epoch " << epoch;
    for (const auto& batch : b)
      for (size_t i : batch) EXPECT_LE(l[i], l[b[0][0]]);
  }
  // one sequence per batch: the longest index leads
  std::vector<size_t> few = {3, 9, 1, 9, 4};
  auto one = length_grouped_batches(few, 1, 2, 0, 5);
  EXPECT_EQ(few[one[0][0]], 9u);
}

TEST(RandomBatches, CoverAllIndices) {
  auto b = random_batches(101, 10, 3, 0);
  EXPECT_EQ(b.size(), 11u);
  expect_each_index_once(b, 101);
  EXPECT_EQ(random_batches(101, 10, 3, 0, true).size(), 10u);
}

TEST(SequentialBatches, SortedAndTokenBudget) {
  std::vector<size_t> l = {5, 9, 1, 9, 3, 7};
  auto b = sequential_batches(l, 2);
  EXPECT_EQ(b, (Batches{{1, 3}, {5, 0}, {4, 2}}));  // ties keep input order
  auto t = sequential_batches(l, 10, /*max_tokens=*/20);
  // 9,9 = 18 slots; adding 7 would need 27 > 20 -> {1,3}; 7,5 = 14, +3 -> 21 > 20 -> {5,0}; {4,2}.
  EXPECT_EQ(t, (Batches{{1, 3}, {5, 0}, {4, 2}}));
  auto u = sequential_batches(l, 10, 0);
  ASSERT_EQ(u.size(), 1u);
  expect_each_index_once(u, l.size());
}

// Real lengths (byte-tokenized RMB pairs, capped at 1024): grouping by length pads far less
// than random batching, and stays within the same tokens.
TEST(LengthGrouped, LessPaddingThanRandomOnRealLengths) {
  std::string path = rmkit::testing::asset("prefs/rmb_pairwise.jsonl.gz");
  RMKIT_REQUIRE_ASSET(path);
  ReadOptions o;
  o.keep_raw = false;
  auto pairs = read_prefs(path, o);
  pairs.resize(4000);
  testing::ByteTokenizer tok;
  auto enc = encode_pairs(pairs, tok, text::ChatTemplate::named("plain"), 1024);
  auto lengths = pair_lengths(enc);
  auto grouped = length_grouped_batches(lengths, 8, 0, 0);
  auto random = random_batches(lengths.size(), 8, 0, 0);
  expect_each_index_once(grouped, lengths.size());
  double pg = padding_fraction(grouped, lengths), pr = padding_fraction(random, lengths);
  std::printf("padding fraction: length-grouped %.4f, random %.4f\n", pg, pr);
  EXPECT_LT(pg, pr / 3);
  EXPECT_LT(pg, 0.10);
}

}  // namespace
}  // namespace rmkit::data
