//===- WorkQueueTest.cpp - Queued work runs when a wait depends on it -----===//

#include "emulator/WorkQueue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace hybrid::emu;

namespace {
int streamA, streamB; // two stream handles

/// Work that appends `id` to `ran`.
WorkQueue::Work record(std::vector<int> &ran, int id) {
  return [&ran, id] {
    ran.push_back(id);
    return std::string();
  };
}
} // namespace

TEST(WorkQueue, RunsOnlyWhatAWaitDependsOn) {
  WorkQueue queue;
  std::vector<int> ran;
  uint64_t first = queue.push(&streamA, record(ran, 1));
  queue.push(&streamB, record(ran, 2));
  queue.push(&streamA, record(ran, 3));
  queue.push(&streamB, record(ran, 4));
  EXPECT_TRUE(ran.empty());
  EXPECT_FALSE(queue.done(first));
  // Waiting for stream A runs A's work, in order; B's has not run yet.
  EXPECT_EQ(queue.runThrough(queue.lastOn(&streamA)), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
  EXPECT_TRUE(queue.done(first));
  EXPECT_EQ(queue.lastOn(&ran), 0u); // never used as a stream
  EXPECT_EQ(queue.runAll(), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 3, 2, 4}));
}

TEST(WorkQueue, AWaitRunsTheOtherStreamsWorkItDependsOn) {
  WorkQueue queue;
  std::vector<int> ran;
  queue.push(&streamA, record(ran, 1));
  uint64_t eventRecord =
      queue.push(&streamA, record(ran, 2)); // an event's record
  queue.push(&streamA, record(ran, 3));
  queue.push(&streamB, record(ran, 4));
  uint64_t wait = queue.push(&streamB, record(ran, 5), {eventRecord});
  queue.push(&streamB, record(ran, 6));
  // B's wait needs A's record and what precedes it on A, not A's later work.
  EXPECT_EQ(queue.runThrough(wait), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 4, 5}));
  EXPECT_FALSE(queue.done(wait + 1));
  EXPECT_EQ(queue.runThrough(queue.lastOn(&streamB)), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 4, 5, 6}));
  EXPECT_EQ(queue.runAll(), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 4, 5, 6, 3}));
}

TEST(WorkQueue, AFaultDropsTheRestOfWhatTheWaitRuns) {
  WorkQueue queue;
  std::vector<int> ran;
  queue.push(&streamA, [&] {
    ran.push_back(1);
    return std::string("fault 1");
  });
  uint64_t second = queue.push(&streamA, [&] {
    ran.push_back(2);
    return std::string();
  });
  queue.push(&streamA, [&] {
    ran.push_back(3);
    return std::string();
  });
  EXPECT_EQ(queue.runThrough(second), "fault 1");
  EXPECT_EQ(ran, (std::vector<int>{1}));
  // Work queued after the wait's ticket still runs at the next wait.
  EXPECT_EQ(queue.runAll(), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
}

TEST(WorkQueue, ShuffledWaitsKeepEveryDependency) {
  std::set<std::vector<int>> orders;
  for (uint64_t seed = 1; seed <= 32; ++seed) {
    WorkQueue queue;
    queue.shuffle(seed);
    std::vector<int> ran;
    uint64_t first = queue.push(&streamA, record(ran, 1));
    queue.push(&streamA, record(ran, 2));
    queue.push(&streamB, record(ran, 3));
    queue.push(&streamB, record(ran, 4), {first});
    EXPECT_EQ(queue.runAll(), "");
    auto at = [&](int id) { return std::find(ran.begin(), ran.end(), id); };
    ASSERT_EQ(ran.size(), 4u);
    EXPECT_LT(at(1), at(2)); // stream A's order
    EXPECT_LT(at(3), at(4)); // stream B's
    EXPECT_LT(at(1), at(4)); // B's wait for A's first
    orders.insert(ran);
  }
  // Five orders keep those three; 32 draws find more than one of them.
  EXPECT_GT(orders.size(), 1u);
}
