// Collation of partly annotated pairs: the attribute tensors always have the head's width K, with a
// mask that is 0 where a row has no value, whatever rows a batch happens to draw.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "rmkit/train/batch.h"
#include "rmkit/train/losses.h"

namespace rmkit::train {
namespace {

std::vector<EncodedExample> examples() {
  std::vector<EncodedExample> v(3);
  for (auto& e : v) {
    e.prompt = {1, 5};
    e.chosen = {7};
    e.rejected = {8, 9};
  }
  v[0].attributes = {1, 2, 3};
  v[1].attributes = {4, 5};
  return v;  // v[2]: no attributes
}

TEST(Batch, AttributesHaveTheHeadsWidthInEveryBatch) {
  const auto ex = examples();
  PairBatch b = collate_pairs(ex, {0, 1}, 0, false, false, 0, 3);
  ASSERT_TRUE(b.attributes.defined());
  EXPECT_TRUE(torch::equal(b.attributes, torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f, 0.f}).view({2, 3})));
  EXPECT_TRUE(torch::equal(b.attributes_mask, torch::tensor({1.f, 1.f, 1.f, 1.f, 1.f, 0.f}).view({2, 3})));
  // a batch of rows without attributes still has [B, K], all masked
  PairBatch none = collate_pairs(ex, {2, 2}, 0, false, false, 0, 3);
  ASSERT_TRUE(none.attributes.defined());
  EXPECT_EQ(none.attributes.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(none.attributes_mask.sum().item<float>(), 0.f);
  // a row wider than the head (a validation row) is cut to K
  PairBatch narrow = collate_pairs(ex, {0}, 0, false, false, 0, 2);
  EXPECT_TRUE(torch::equal(narrow.attributes, torch::tensor({1.f, 2.f}).view({1, 2})));
  // no attribute head: no attribute tensors
  EXPECT_FALSE(collate_pairs(ex, {0, 1}, 0).attributes.defined());
}

TEST(Batch, RegressionOnAnAllMaskedBatchIsAnAttachedZero) {
  const auto ex = examples();
  PairBatch b = collate_pairs(ex, {2, 2}, 0, false, false, 0, 3);
  auto head_out = torch::randn({2, 3}, torch::requires_grad());
  LossInputs in;
  in.head_out = head_out;
  in.attributes = b.attributes;
  in.attributes_mask = b.attributes_mask;
  auto res = combine({{"regression", 1}}, in);
  EXPECT_EQ(res.total.item<double>(), 0.0);
  ASSERT_TRUE(res.total.requires_grad());
  res.total.backward();
  ASSERT_TRUE(head_out.grad().defined());
  EXPECT_EQ(head_out.grad().abs().sum().item<float>(), 0.f);
}

}  // namespace
}  // namespace rmkit::train
