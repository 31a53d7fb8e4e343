//===- WorkQueue.h - Stream work that runs when the host waits --*- C++ -*-===//
//
// A GPU runs a stream's copies, memsets and kernels after the call that
// queued them has returned; the emulator does the same, so that a caller
// reading results before it waits for them reads stale memory, as it
// would on a GPU. Work of every stream goes into one queue, in the order
// it was queued, which keeps each stream's order and every cross-stream
// wait (an event is always recorded before it is waited for); waiting for
// a stream or an event runs the queue up to that stream's last work or the
// event's record.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_WORKQUEUE_H
#define HYBRID_EMULATOR_WORKQUEUE_H

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

namespace hybrid::emu {

class WorkQueue {
public:
  /// Work that returns its fault, empty if none.
  using Work = std::function<std::string()>;

  /// Queues `work` on `stream` (an opaque handle); returns its ticket.
  uint64_t push(const void *stream, Work work);
  /// The ticket of the last work queued on `stream` (0: none).
  uint64_t lastOn(const void *stream) const;
  /// Runs the queue up to ticket `ticket`. A fault drops that work and the
  /// work queued before `ticket` after it (a faulted GPU runs no more of
  /// it) and is returned.
  std::string runThrough(uint64_t ticket);
  std::string runAll() { return runThrough(issued); }
  /// True if the work of `ticket` has run (or was dropped).
  bool done(uint64_t ticket) const { return ticket <= finished; }

private:
  struct Entry {
    uint64_t ticket;
    Work work;
  };
  std::deque<Entry> pending;
  std::map<const void *, uint64_t> last;
  uint64_t issued = 0, finished = 0;
};

} // namespace hybrid::emu

#endif // HYBRID_EMULATOR_WORKQUEUE_H
