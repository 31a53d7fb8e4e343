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

TEST(StepKernel, GpuStepsOfManyRowsPerSmTakeTheFlashKernel) {
  // H100: 132 SMs; GQA 4 in 128-row CTAs (32 positions each).
  // One token, and a step of 16 over 8 kv heads (128 rows a position).
  EXPECT_FALSE(prefersFlashForGpuStep(1, 8, 32, 128, 132));
  EXPECT_FALSE(prefersFlashForGpuStep(16, 8, 32, 128, 132));
  EXPECT_TRUE(prefersFlashForGpuStep(32, 8, 32, 128, 132));
  // One kv head (Gemma 3 1B): 64 tokens are two CTAs, each reading every
  // key for 128 rows; 512 tokens are 16.
  EXPECT_FALSE(prefersFlashForGpuStep(64, 1, 32, 128, 132));
  EXPECT_TRUE(prefersFlashForGpuStep(512, 1, 32, 128, 132));
  // Many waves: a 4096-token chunk over 8 kv heads.
  EXPECT_TRUE(prefersFlashForGpuStep(4096, 8, 32, 128, 132));
}
