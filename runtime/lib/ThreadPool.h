//===- ThreadPool.h - Dynamic parallel-for over work items ------*- C++ -*-===//
//
// Kernels take a range of work items (batch x kv head x query tile, heaviest
// first); threads claim chunks of it from an atomic counter, so causal tiles
// of unequal cost still balance. The calling thread works too.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_THREADPOOL_H
#define HYBRID_RT_LIB_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hybrid::rt {

class ThreadPool {
public:
  /// `numThreads` threads in all, the caller included.
  explicit ThreadPool(int numThreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return int(workers.size()) + 1; }

  using Body = std::function<void(int64_t begin, int64_t end)>;
  /// Runs `body` over [0, count) in chunks of at most `grain` items and
  /// returns when all are done. Not reentrant.
  void parallelFor(int64_t count, int64_t grain, const Body &body);

private:
  void work();
  void drain();

  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, done;
  uint64_t generation = 0;
  int busy = 0;
  bool stopping = false;

  // The job being run.
  const Body *body = nullptr;
  int64_t count = 0, grain = 1;
  std::atomic<int64_t> next{0};
};

/// $HYBRID_NUM_THREADS if set and positive, else the hardware threads.
int defaultNumThreads();

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_THREADPOOL_H
