//===- MaskTest.cpp - MaskAttr visibility and key ranges ------------------===//

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"
#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "mlir/IR/MLIRContext.h"

#include "gtest/gtest.h"

using namespace hybrid;

namespace {

/// Visibility straight from DESIGN.md, written independently of MaskAttr.
bool referenceVisible(MaskKind kind, bool causal, int64_t size, int64_t q,
                      int64_t k) {
  if (causal && k > q)
    return false;
  switch (kind) {
  case MaskKind::full:
    return true;
  case MaskKind::sliding_window:
    return causal ? q - size < k : (q > k ? q - k : k - q) < size;
  case MaskKind::chunked:
    return k / size == q / size;
  }
  return false;
}

class MaskTest : public ::testing::Test {
protected:
  MaskTest() { context.loadDialect<HybridDialect>(); }
  MaskAttr get(MaskKind kind, int64_t size, bool causal) {
    return MaskAttr::get(&context, kind,
                         kind == MaskKind::sliding_window ? size : 0,
                         kind == MaskKind::chunked ? size : 0, causal);
  }
  mlir::MLIRContext context;
};

TEST_F(MaskTest, VisibilityAndKeyRangeMatchTheDefinition) {
  const int64_t numKeys = 37;
  for (MaskKind kind :
       {MaskKind::full, MaskKind::sliding_window, MaskKind::chunked})
    for (int64_t size : {1, 2, 5, 16, 64})
      for (bool causal : {true, false}) {
        MaskAttr mask = get(kind, size, causal);
        for (int64_t q = 0; q < numKeys; ++q) {
          auto [begin, end] = mask.getKeyRange(q, numKeys);
          for (int64_t k = 0; k < numKeys; ++k) {
            bool expected = referenceVisible(kind, causal, size, q, k);
            EXPECT_EQ(mask.isVisible(q, k), expected)
                << "q=" << q << " k=" << k << " size=" << size;
            // Every visible key lies in the range; the range is tight for
            // these masks (they are contiguous).
            EXPECT_EQ(k >= begin && k < end, expected)
                << "q=" << q << " k=" << k << " size=" << size;
          }
        }
      }
}

TEST_F(MaskTest, WindowOfOneSeesOnlyItself) {
  MaskAttr mask = get(MaskKind::sliding_window, 1, true);
  std::pair<int64_t, int64_t> expected = {10, 11};
  EXPECT_EQ(mask.getKeyRange(10, 100), expected);
}

} // namespace
