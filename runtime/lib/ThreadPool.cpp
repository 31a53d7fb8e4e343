//===- ThreadPool.cpp - Dynamic parallel-for over work items --------------===//

#include "ThreadPool.h"

#include <algorithm>
#include <cstdlib>

using namespace hybrid::rt;

ThreadPool::ThreadPool(int numThreads) {
  for (int i = 1; i < numThreads; ++i)
    workers.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  wake.notify_all();
  for (std::thread &t : workers)
    t.join();
}

void ThreadPool::drain() {
  for (;;) {
    int64_t begin = next.fetch_add(grain, std::memory_order_relaxed);
    if (begin >= count)
      return;
    (*body)(begin, std::min(count, begin + grain));
  }
}

void ThreadPool::work() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stopping || generation != seen; });
      if (stopping)
        return;
      seen = generation;
    }
    drain();
    std::lock_guard<std::mutex> lock(mutex);
    if (--busy == 0)
      done.notify_one();
  }
}

void ThreadPool::parallelFor(int64_t n, int64_t chunk, const Body &fn) {
  if (n <= 0)
    return;
  chunk = std::max<int64_t>(1, chunk);
  if (workers.empty() || n <= chunk) {
    for (int64_t begin = 0; begin < n; begin += chunk)
      fn(begin, std::min(n, begin + chunk));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    body = &fn;
    count = n;
    grain = chunk;
    next.store(0, std::memory_order_relaxed);
    busy = int(workers.size());
    ++generation;
  }
  wake.notify_all();
  drain();
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return busy == 0; });
  body = nullptr;
}

int hybrid::rt::defaultNumThreads() {
  if (const char *env = std::getenv("HYBRID_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0)
      return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}
