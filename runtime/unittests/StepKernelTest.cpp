//===- StepKernelTest.cpp - Which kernel runs a decode step ---------------===//

#include "StepKernel.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace hybrid::rt;

TEST(StepKernel, FewRowsTakeTheDecodeKernel) {
  // One token (the usual step), and speculative drafts of a few.
  EXPECT_FALSE(prefersFlashForStep(1, 1, 8, 2));
  EXPECT_FALSE(prefersFlashForStep(8, 1, 8, 2));
  EXPECT_FALSE(prefersFlashForStep(1, 8, 8, 2));
  EXPECT_FALSE(prefersFlashForStep(4, 3, 8, 2));
}

TEST(StepKernel, ManyRowsTakeTheFlashKernel) {
  // From 16 rows per kv head: 16 tokens without GQA, 4 at GQA 4.
  EXPECT_TRUE(prefersFlashForStep(1, 16, 8, 2));
  EXPECT_TRUE(prefersFlashForStep(4, 4, 8, 2));
  // Chunks of a prompt.
  EXPECT_TRUE(prefersFlashForStep(2, 512, 16, 2));
}

TEST(StepKernel, TheFlashKernelNeedsAnItemPerThread) {
  // One kv head at GQA 4: 8 positions fill one 32-row block, one item.
  EXPECT_FALSE(prefersFlashForStep(4, 8, 1, 2));
  EXPECT_TRUE(prefersFlashForStep(4, 8, 1, 1));
  EXPECT_TRUE(prefersFlashForStep(4, 16, 1, 2));
  // GQA 3: a block is 32 positions (96 rows).
  EXPECT_FALSE(prefersFlashForStep(3, 32, 1, 2));
  EXPECT_TRUE(prefersFlashForStep(3, 33, 1, 2));
  // A batch gives items too.
  EXPECT_TRUE(prefersFlashForStep(4, 8, 2, 2));
}

TEST(StepKernel, EnvironmentFixesIt) {
  std::string error;
  unsetenv("HYBRID_CPU_STEP_KERNEL");
  EXPECT_EQ(getFixedStepKernel("HYBRID_CPU_STEP_KERNEL", error),
            StepKernel::Automatic);
  setenv("HYBRID_CPU_STEP_KERNEL", "flash", 1);
  EXPECT_EQ(getFixedStepKernel("HYBRID_CPU_STEP_KERNEL", error),
            StepKernel::Flash);
  setenv("HYBRID_CPU_STEP_KERNEL", "decode", 1);
  EXPECT_EQ(getFixedStepKernel("HYBRID_CPU_STEP_KERNEL", error),
            StepKernel::Decode);
  EXPECT_TRUE(error.empty());
  setenv("HYBRID_CPU_STEP_KERNEL", "Flash", 1);
  EXPECT_EQ(getFixedStepKernel("HYBRID_CPU_STEP_KERNEL", error),
            StepKernel::Automatic);
  EXPECT_EQ(
      error,
      "HYBRID_CPU_STEP_KERNEL: expected 'decode' or 'flash', got 'Flash'");
  unsetenv("HYBRID_CPU_STEP_KERNEL");
}

TEST(StepKernel, GpuStepsWithoutSplitKTakeTheFlashKernelForManyRowsPerSm) {
  // H100: 132 SMs; GQA 4 in 128-row CTAs (32 positions each).
  // One token, and a step of 16 over 8 kv heads (128 rows a position).
  EXPECT_FALSE(prefersFlashForGpuStep(1, 4, 8, 32, 128, 132, false));
  EXPECT_FALSE(prefersFlashForGpuStep(16, 4, 8, 32, 128, 132, false));
  EXPECT_TRUE(prefersFlashForGpuStep(32, 4, 8, 32, 128, 132, false));
  // One kv head (Gemma 3 1B): 64 tokens are two CTAs, each reading every
  // key for 128 rows; 512 tokens are 16.
  EXPECT_FALSE(prefersFlashForGpuStep(64, 4, 1, 32, 128, 132, false));
  EXPECT_TRUE(prefersFlashForGpuStep(512, 4, 1, 32, 128, 132, false));
  // Many waves: a 4096-token chunk over 8 kv heads.
  EXPECT_TRUE(prefersFlashForGpuStep(4096, 4, 8, 32, 128, 132, false));
}

TEST(StepKernel, GpuStepsWithSplitKTakeTheFlashKernelFrom16RowsPerKvHead) {
  // GQA 4: one token and a 3-token step stay on the decode kernel, a
  // 4-token speculative step (16 rows) takes the flash kernel, whatever
  // the heads.
  EXPECT_FALSE(prefersFlashForGpuStep(1, 4, 8, 32, 128, 132, true));
  EXPECT_FALSE(prefersFlashForGpuStep(3, 4, 8, 32, 128, 132, true));
  EXPECT_TRUE(prefersFlashForGpuStep(4, 4, 8, 32, 128, 132, true));
  EXPECT_TRUE(prefersFlashForGpuStep(4, 4, 1, 32, 128, 132, true));
  // Multi-head attention (G = 1): from 16 tokens.
  EXPECT_FALSE(prefersFlashForGpuStep(15, 1, 32, 64, 64, 132, true));
  EXPECT_TRUE(prefersFlashForGpuStep(16, 1, 32, 64, 64, 132, true));
}

TEST(StepKernel, FlashSplitsFillOneWaveOfWholeTileRuns) {
  // 8 CTAs (one query tile over 8 kv heads) on 132 SMs holding 2 each:
  // 33 splits, when the keys have 4 tiles for each.
  EXPECT_EQ(getFlashKeySplits(8, 512, 264), 33);
  // Fewer tiles: 4 per split at least (and never 0 splits).
  EXPECT_EQ(getFlashKeySplits(8, 40, 264), 10);
  EXPECT_EQ(getFlashKeySplits(8, 3, 264), 1);
  // A launch of more than half a wave is not split.
  EXPECT_EQ(getFlashKeySplits(133, 512, 264), 1);
  EXPECT_EQ(getFlashKeySplits(132, 512, 264), 2);
  EXPECT_EQ(getFlashKeySplits(1000, 512, 264), 1);
}
