//===- SequenceGatherTest.cpp - Sequences taking others' rows -------------===//

#include "SequenceGather.h"
#include "CacheRows.h"

#include <gtest/gtest.h>

#include <random>

using namespace hybrid::rt;

namespace {
/// Sequence i of [batch][width] values after `order`, applied in place as
/// its plan says (`live` of each `width` values copied).
std::vector<int> applyPlan(const std::vector<int64_t> &order, int64_t width,
                           int64_t live) {
  int64_t batch = int64_t(order.size());
  std::vector<int> rows(batch * width);
  for (size_t i = 0; i < rows.size(); ++i)
    rows[i] = int(i);
  std::string error;
  SequenceGather gather = SequenceGather::plan(order.data(), batch, error);
  EXPECT_EQ(error, "");
  std::vector<int> scratch(gather.saved.size() * live);
  for (size_t j = 0; j < gather.saved.size(); ++j)
    std::copy_n(rows.begin() + gather.saved[j] * width, live,
                scratch.begin() + j * live);
  for (const SequenceGather::Copy &c : gather.copies)
    std::copy_n(c.fromScratch ? scratch.begin() + c.from * live
                              : rows.begin() + c.from * width,
                live, rows.begin() + c.to * width);
  return rows;
}
} // namespace

TEST(SequenceGather, EveryOrderLandsAsAGather) {
  std::mt19937 random(7);
  for (int trial = 0; trial < 500; ++trial) {
    int64_t batch = 1 + trial % 7, width = 3, live = trial % 4;
    std::vector<int64_t> order(batch);
    for (int64_t &o : order)
      o = std::uniform_int_distribution<int64_t>(0, batch - 1)(random);
    std::vector<int> rows = applyPlan(order, width, live);
    for (int64_t i = 0; i < batch; ++i)
      for (int64_t e = 0; e < width; ++e)
        // Live elements come from order[i]; the rest stay.
        ASSERT_EQ(rows[i * width + e], (e < live ? order[i] : i) * width + e)
            << "trial " << trial;
  }
}

TEST(SequenceGather, SavesOnlyWhatIsOverwrittenAndStillRead) {
  std::string error;
  // Beams 0 and 1 continue beam 0, 2 and 3 continue beam 2: nothing read
  // is overwritten first.
  std::vector<int64_t> beams = {0, 0, 2, 2};
  SequenceGather gather = SequenceGather::plan(beams.data(), 4, error);
  EXPECT_TRUE(gather.saved.empty());
  EXPECT_EQ(gather.copies.size(), 2u);
  // A swap saves both; the identity copies nothing.
  std::vector<int64_t> swap = {1, 0, 2};
  EXPECT_EQ(SequenceGather::plan(swap.data(), 3, error).saved.size(), 2u);
  std::vector<int64_t> same = {0, 1, 2};
  EXPECT_TRUE(SequenceGather::plan(same.data(), 3, error).empty());
  EXPECT_EQ(error, "");
}

TEST(SequenceGather, NamesAnEntryOutsideTheBatch) {
  std::string error;
  std::vector<int64_t> order = {0, 2};
  SequenceGather::plan(order.data(), 2, error);
  EXPECT_EQ(error, "order[1] is 2, not a sequence of the batch [0, 2)");
  order = {-1, 0};
  SequenceGather::plan(order.data(), 2, error);
  EXPECT_EQ(error, "order[0] is -1, not a sequence of the batch [0, 2)");
}

TEST(SequenceGather, CacheRowsOfEveryElement) {
  // Two sequences of 2 rows of 2 elements; the first row of each holds a
  // token.
  for (CacheElement element : {CacheElement::F32, CacheElement::BF16,
                               CacheElement::F16, CacheElement::F8E4M3FN}) {
    CacheRows rows;
    rows.allocate(8, element);
    float tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    rows.store(nullptr, tokens, {0, 2}, /*rows=*/2, /*first=*/0,
               /*count=*/2, 2);
    std::vector<int64_t> order = {1, 1};
    std::string error;
    rows.gather(SequenceGather::plan(order.data(), 2, error), 2, /*live=*/2);
    float out[8] = {};
    rows.widen(nullptr, out, {0, 2}, 2, 0, 2, 2);
    // Sequence 0's first row is sequence 1's; its second row stays.
    EXPECT_EQ(std::vector<float>(out, out + 8),
              (std::vector<float>{5, 6, 3, 4, 5, 6, 7, 8}));
  }
}
