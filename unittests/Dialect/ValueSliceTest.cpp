//===- ValueSliceTest.cpp - getFlashValueSlice against brute force --------===//

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"

#include "gtest/gtest.h"

using namespace hybrid;

namespace {

TEST(ValueSlice, IsTheLargestDivisorOfTheGranuleUpToTheBound) {
  for (TensorCores cores : {TensorCores::MmaSync, TensorCores::Wgmma}) {
    int64_t granule = cores == TensorCores::Wgmma ? 64 : 16;
    for (int64_t dim = 1; dim <= 512; ++dim)
      for (int64_t bound = granule; bound <= 256; bound += granule) {
        int64_t expected = 0;
        for (int64_t s = granule; s <= bound; s += granule)
          if (dim % s == 0)
            expected = s;
        EXPECT_EQ(getFlashValueSlice(dim, bound, cores), expected)
            << "dim " << dim << " bound " << bound << " granule " << granule;
      }
  }
}

TEST(ValueSlice, Examples) {
  // The default bound: one slice up to 256, two at Gemma 4's 512.
  EXPECT_EQ(getFlashValueSlice(128, 256, TensorCores::MmaSync), 128);
  EXPECT_EQ(getFlashValueSlice(512, 256, TensorCores::Wgmma), 256);
  EXPECT_EQ(getFlashValueSlice(512, 128, TensorCores::Wgmma), 128);
  // 320 = 5 x 64: mma.sync takes 160, wgmma's swizzled rows 64.
  EXPECT_EQ(getFlashValueSlice(320, 256, TensorCores::MmaSync), 160);
  EXPECT_EQ(getFlashValueSlice(320, 256, TensorCores::Wgmma), 64);
  EXPECT_EQ(getFlashValueSlice(256, 48, TensorCores::MmaSync), 32);
  // No multiple of the granule divides it.
  EXPECT_EQ(getFlashValueSlice(100, 256, TensorCores::MmaSync), 0);
  EXPECT_EQ(getFlashValueSlice(96, 256, TensorCores::Wgmma), 0);
}

} // namespace
