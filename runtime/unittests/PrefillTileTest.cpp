//===- PrefillTileTest.cpp - Query positions per CPU prefill work item ----===//

#include "PrefillTile.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace hybrid::rt;

TEST(PrefillTile, LongPromptsTakeTheWholeTile) {
  // 8 kv heads, 16K positions: 64 items of 256 positions for 2 threads.
  EXPECT_EQ(choosePrefillTile(256, 1, 16384, 8, 2), 256);
  // GQA 4: 64 positions (256 rows), one kv head, 4K positions.
  EXPECT_EQ(choosePrefillTile(64, 4, 4096, 1, 2), 64);
}

TEST(PrefillTile, ShortPromptsGiveEveryThreadWork) {
  // 8 kv heads, 512 positions, 2 threads: 256 positions make 16 items.
  EXPECT_EQ(choosePrefillTile(256, 1, 512, 8, 2), 256);
  // 64 threads want 512 items: 8 positions would be 512, but 32 rows (32
  // positions at GQA 1) are the smallest block.
  EXPECT_EQ(choosePrefillTile(256, 1, 512, 8, 64), 32);
  // 16 threads want 128: 64 positions give 8 * 8 = 64, 32 give 128.
  EXPECT_EQ(choosePrefillTile(256, 1, 512, 8, 16), 32);
  // 4 threads want 32: 128 positions give 8 * 4 = 32.
  EXPECT_EQ(choosePrefillTile(256, 1, 512, 8, 4), 128);
  // GQA 4 (8 positions per 32 rows), one kv head, 100 positions, 2
  // threads: 16 items need 8 positions (13 items, the smallest block).
  EXPECT_EQ(choosePrefillTile(64, 4, 100, 1, 2), 8);
  // GQA 3: a 32-row block is 32 positions (96 rows), no smaller.
  EXPECT_EQ(choosePrefillTile(96, 3, 10, 1, 8), 32);
}

TEST(PrefillTile, TilesAreWholeRowBlocks) {
  for (int64_t group : {1, 2, 4, 8, 16})
    for (int64_t seq : {1, 7, 100, 1000, 5000})
      for (int threads : {1, 2, 7, 64}) {
        int64_t max = 256 / group;
        for (int64_t tile : {choosePrefillTile(max, group, seq, 2, threads),
                             chooseStepTile(max, group, seq, 2, threads)}) {
          EXPECT_GE(tile, 1);
          EXPECT_LE(tile, max);
          EXPECT_EQ(tile * group % 32, 0) << "group " << group << ", seq "
                                          << seq << ", threads " << threads;
        }
      }
}

TEST(PrefillTile, StepsTakeAnItemPerThread) {
  // 8 kv heads, 2 threads: each head's step in one item (whole blocks).
  EXPECT_EQ(chooseStepTile(256, 1, 64, 8, 2), 64);
  EXPECT_EQ(chooseStepTile(256, 1, 20, 8, 2), 32);
  EXPECT_EQ(chooseStepTile(256, 1, 512, 8, 2), 256);
  // One kv head at GQA 4 (8 positions per block): two even items.
  EXPECT_EQ(chooseStepTile(64, 4, 64, 1, 2), 32);
  EXPECT_EQ(chooseStepTile(64, 4, 40, 1, 2), 24);
  EXPECT_EQ(chooseStepTile(64, 4, 512, 1, 2), 64);
  // More threads than kv heads: 4 items per head for 16 threads.
  EXPECT_EQ(chooseStepTile(256, 1, 128, 4, 16), 32);
}

TEST(PrefillTile, EnvironmentFixesIt) {
  std::string error;
  unsetenv("HYBRID_CPU_Q_TILE");
  EXPECT_EQ(getFixedPrefillTile(error), 0);
  setenv("HYBRID_CPU_Q_TILE", "", 1);
  EXPECT_EQ(getFixedPrefillTile(error), 0);
  setenv("HYBRID_CPU_Q_TILE", "5", 1);
  EXPECT_EQ(getFixedPrefillTile(error), 5);
  EXPECT_EQ(error, "");
  for (const char *bad : {"0", "-3", "12x", "x"}) {
    setenv("HYBRID_CPU_Q_TILE", bad, 1);
    error.clear();
    EXPECT_EQ(getFixedPrefillTile(error), 0);
    EXPECT_EQ(error, std::string("HYBRID_CPU_Q_TILE: expected a positive "
                                 "number of query positions, got '") +
                         bad + "'");
  }
  unsetenv("HYBRID_CPU_Q_TILE");
}
