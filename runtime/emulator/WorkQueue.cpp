//===- WorkQueue.cpp - Stream work that runs when the host waits ----------===//

#include "WorkQueue.h"

using namespace hybrid::emu;

uint64_t WorkQueue::push(const void *stream, Work work) {
  pending.push_back({++issued, std::move(work)});
  last[stream] = issued;
  return issued;
}

uint64_t WorkQueue::lastOn(const void *stream) const {
  auto it = last.find(stream);
  return it == last.end() ? 0 : it->second;
}

std::string WorkQueue::runThrough(uint64_t ticket) {
  std::string fault;
  while (!pending.empty() && pending.front().ticket <= ticket) {
    Entry entry = std::move(pending.front());
    pending.pop_front();
    finished = entry.ticket;
    if (fault.empty())
      fault = entry.work();
  }
  return fault;
}
