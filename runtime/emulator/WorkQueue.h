//===- WorkQueue.h - Stream work that runs when the host waits --*- C++ -*-===//
//
// A GPU runs a stream's copies, memsets and kernels after the call that
// queued them has returned, and a host wait is over once what it waits for
// has run, whatever other streams still hold; the emulator does the same,
// so that a caller reading results before it waits for them reads stale
// memory, and work that a wait does not depend on (another stream's, with
// nothing ordering the two) has not run yet. Each work item depends on its
// stream's previous item and on the items given when it is queued (an
// event's record, the legacy default stream's implicit waits); waiting for
// an item runs it and what it depends on, transitively, in queue order or,
// shuffled, in a random order that keeps every dependency (a race between
// streams then shows as results that change with the seed).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_WORKQUEUE_H
#define HYBRID_EMULATOR_WORKQUEUE_H

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace hybrid::emu {

class WorkQueue {
public:
  /// Work that returns its fault, empty if none.
  using Work = std::function<std::string()>;

  /// Queues `work` on `stream` (an opaque handle), after the stream's
  /// earlier work and the work of tickets `after`; returns its ticket.
  uint64_t push(const void *stream, Work work,
                const std::vector<uint64_t> &after = {});
  /// The ticket of the last work queued on `stream` (0: none).
  uint64_t lastOn(const void *stream) const;
  /// The last work queued on each stream.
  const std::map<const void *, uint64_t> &lastOnEach() const { return last; }
  /// Runs the work of `ticket` and, before it, what it depends on, in
  /// queue order; the rest stays queued. A fault drops the rest of what
  /// this wait would run (a faulted GPU runs no more of it) and is
  /// returned.
  std::string runThrough(uint64_t ticket);
  /// Runs everything queued.
  std::string runAll();
  /// Waits run what they depend on in a random order drawn from `seed`
  /// that keeps every dependency (0: in queue order).
  void shuffle(uint64_t seed) {
    shuffled = seed != 0;
    random.seed(seed);
  }
  /// True if the work of `ticket` has run (or was dropped).
  bool done(uint64_t ticket) const {
    return ticket <= issued && !pending.count(ticket);
  }

private:
  struct Entry {
    Work work;
    std::vector<uint64_t> after; // its stream's previous work, and more
  };
  std::map<uint64_t, Entry> pending;
  std::map<const void *, uint64_t> last;
  uint64_t issued = 0;
  bool shuffled = false;
  std::mt19937_64 random;

  /// Runs the pending work of `tickets`, which holds the pending work each
  /// of them depends on, in an order that keeps every dependency.
  std::string run(const std::vector<uint64_t> &tickets);
  /// `tickets` (ascending) in queue order, or shuffled.
  std::vector<uint64_t> getOrder(const std::vector<uint64_t> &tickets);
};

} // namespace hybrid::emu

#endif // HYBRID_EMULATOR_WORKQUEUE_H
