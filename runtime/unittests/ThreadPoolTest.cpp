//===- ThreadPoolTest.cpp - Every work item runs exactly once -------------===//

#include "ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

using namespace hybrid::rt;

TEST(ThreadPool, EveryItemOnceForAnyCountAndGrain) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t count : {0, 1, 7, 64, 1001}) {
      for (int64_t grain : {1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(count);
        pool.parallelFor(count, grain, [&](int64_t begin, int64_t end) {
          ASSERT_LE(end - begin, grain);
          for (int64_t i = begin; i < end; ++i)
            hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < count; ++i)
          ASSERT_EQ(hits[i].load(), 1) << "item " << i << " of " << count;
      }
    }
  }
}

TEST(ThreadPool, ReusedManyTimes) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 2000; ++round)
    pool.parallelFor(16, 1, [&](int64_t begin, int64_t end) {
      total.fetch_add(end - begin);
    });
  EXPECT_EQ(total.load(), 2000 * 16);
}
