//===- WorkQueueTest.cpp - Queued work runs in order, when waited for -----===//

#include "emulator/WorkQueue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace hybrid::emu;

namespace {
int streamA, streamB; // two stream handles
} // namespace

TEST(WorkQueue, RunsInQueueOrderOnlyWhenWaitedFor) {
  WorkQueue queue;
  std::vector<int> ran;
  auto work = [&](int id) {
    return [&ran, id] {
      ran.push_back(id);
      return std::string();
    };
  };
  uint64_t first = queue.push(&streamA, work(1));
  queue.push(&streamB, work(2));
  queue.push(&streamA, work(3));
  queue.push(&streamB, work(4));
  EXPECT_TRUE(ran.empty());
  EXPECT_FALSE(queue.done(first));
  // Waiting for stream A runs everything queued before its last work.
  EXPECT_EQ(queue.runThrough(queue.lastOn(&streamA)), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(queue.done(first));
  EXPECT_EQ(queue.lastOn(&ran), 0u); // never used as a stream
  EXPECT_EQ(queue.runAll(), "");
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 4}));
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
