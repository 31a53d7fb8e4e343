//===- SequenceSlicesTest.cpp - Slices of a call's sequences --------------===//

#include "SequenceSlices.h"

#include <gtest/gtest.h>

using namespace hybrid::rt;

namespace {
std::string describe(const std::vector<Slice> &slices) {
  std::string text;
  for (const Slice &x : slices)
    text += "[" + std::to_string(x.first) + "+" + std::to_string(x.batch) +
            "@" + std::to_string(x.entry) + "]";
  return text;
}
} // namespace

/// Every sequence at one progress is one slice, the whole batch.
TEST(SequenceSlices, AWholeBatchTogetherIsOneSlice) {
  auto always = [](int64_t, int64_t) { return true; };
  EXPECT_EQ(describe(planSlices({}, 4, always)), "[0+4@0]");
  EXPECT_EQ(describe(planSlices({0, 1, 2, 3}, 4, always)), "[0+4@0]");
}

/// Runs break where the batch's order, the selection's order or the
/// sequences' progress does.
TEST(SequenceSlices, BreaksWhereSequencesDiffer) {
  // Sequences 0-2 at one progress, 3 and 4 at another.
  auto together = [](int64_t a, int64_t b) { return (a < 3) == (b < 3); };
  EXPECT_EQ(describe(planSlices({}, 5, together)), "[0+3@0][3+2@3]");
  EXPECT_EQ(describe(planSlices({4, 3, 1, 2, 0}, 5, together)),
            "[4+1@0][3+1@1][1+2@2][0+1@4]");
  EXPECT_EQ(describe(planSlices({2, 3}, 5, together)), "[2+1@0][3+1@1]");
  EXPECT_EQ(describe(planSlices({0, 2}, 5, together)), "[0+1@0][2+1@1]");
}

/// Padding entries are in no slice, and the slices on either side of one
/// stay apart (their entries are not consecutive).
TEST(SequenceSlices, SkipsPadding) {
  auto always = [](int64_t, int64_t) { return true; };
  EXPECT_EQ(describe(planSlices({0, -1, 1, 2, -1}, 4, always)),
            "[0+1@0][1+2@2]");
  EXPECT_EQ(describe(planSlices({-1, -1}, 4, always)), "");
}

TEST(SequenceSlices, DescribesSlices) {
  EXPECT_EQ(describeSlice({3, 1, 0}), "sequence 3");
  EXPECT_EQ(describeSlice({3, 3, 1}), "sequences 3 to 5");
}

TEST(SequenceSlices, ChecksSelections) {
  std::vector<int64_t> fine = {3, 0, 2}, outside = {1, 4}, negative = {-2},
                       repeated = {2, 0, 2}, padded = {-1, 1, -1};
  EXPECT_EQ(checkSelection(fine.data(), 3, 4), "");
  EXPECT_EQ(checkSelection(padded.data(), 3, 4), "");
  EXPECT_EQ(checkSelection(outside.data(), 2, 4),
            "sequences[1] is 4, outside the batch [0, 4) (-1: padding)");
  EXPECT_EQ(checkSelection(negative.data(), 1, 4),
            "sequences[0] is -2, outside the batch [0, 4) (-1: padding)");
  EXPECT_EQ(checkSelection(repeated.data(), 3, 4),
            "sequences[2] is 2, as sequences[0] is: a selection names each "
            "sequence once");
}

/// An operand slice views the slice's entries: itself for all of them.
TEST(SequenceSlices, SlicesOperands) {
  float data[4 * 2 * 3 * 5] = {};
  hybrid_rt_tensor t{data, HYBRID_RT_F32, 4, {4, 2, 3, 5}, HYBRID_RT_HOST};
  OperandSlice whole(&t, {2, 4, 0});
  EXPECT_EQ(whole.get(), &t);
  OperandSlice part(&t, {0, 2, 1});
  EXPECT_EQ(part.get()->data, data + 1 * 2 * 3 * 5);
  EXPECT_EQ(part.get()->shape[0], 2);
  EXPECT_EQ(part.get()->shape[1], 2);
  EXPECT_EQ(t.shape[0], 4);
  hybrid_rt_tensor half = t;
  half.dtype = HYBRID_RT_BF16;
  OperandSlice last(&half, {0, 1, 3});
  EXPECT_EQ(last.get()->data,
            static_cast<void *>(reinterpret_cast<char *>(data) + 3 * 30 * 2));
  OperandSlice none(nullptr, {0, 1, 3});
  EXPECT_EQ(none.get(), nullptr);
}
