//===- WorkQueue.cpp - Stream work that runs when the host waits ----------===//

#include "WorkQueue.h"

#include <set>

using namespace hybrid::emu;

uint64_t WorkQueue::push(const void *stream, Work work,
                         const std::vector<uint64_t> &after) {
  Entry entry{std::move(work), after};
  if (uint64_t previous = lastOn(stream))
    entry.after.push_back(previous);
  pending.emplace(++issued, std::move(entry));
  last[stream] = issued;
  return issued;
}

uint64_t WorkQueue::lastOn(const void *stream) const {
  auto it = last.find(stream);
  return it == last.end() ? 0 : it->second;
}

std::string WorkQueue::runThrough(uint64_t ticket) {
  std::set<uint64_t> needed;
  std::vector<uint64_t> stack = {ticket};
  while (!stack.empty()) {
    uint64_t t = stack.back();
    stack.pop_back();
    auto it = pending.find(t);
    if (it == pending.end() || !needed.insert(t).second)
      continue;
    stack.insert(stack.end(), it->second.after.begin(), it->second.after.end());
  }
  return run(std::vector<uint64_t>(needed.begin(), needed.end()));
}

std::string WorkQueue::runAll() {
  std::vector<uint64_t> tickets;
  for (const auto &[ticket, entry] : pending)
    tickets.push_back(ticket);
  return run(tickets);
}

std::vector<uint64_t>
WorkQueue::getOrder(const std::vector<uint64_t> &tickets) {
  if (!shuffled)
    return tickets; // a dependency always has the lower ticket
  // Kahn's algorithm, drawing each next item among those whose
  // dependencies have all run (or are not pending: ran before).
  std::map<uint64_t, int> waiting;
  std::map<uint64_t, std::vector<uint64_t>> dependents;
  std::vector<uint64_t> ready, order;
  for (uint64_t ticket : tickets) {
    int count = 0;
    for (uint64_t dependency : pending.at(ticket).after)
      if (pending.count(dependency)) {
        ++count;
        dependents[dependency].push_back(ticket);
      }
    waiting[ticket] = count;
    if (!count)
      ready.push_back(ticket);
  }
  while (!ready.empty()) {
    size_t pick =
        std::uniform_int_distribution<size_t>(0, ready.size() - 1)(random);
    uint64_t ticket = ready[pick];
    ready[pick] = ready.back();
    ready.pop_back();
    order.push_back(ticket);
    for (uint64_t dependent : dependents[ticket])
      if (--waiting[dependent] == 0)
        ready.push_back(dependent);
  }
  return order;
}

std::string WorkQueue::run(const std::vector<uint64_t> &tickets) {
  std::string fault;
  for (uint64_t ticket : getOrder(tickets)) {
    auto it = pending.find(ticket);
    Entry entry = std::move(it->second);
    pending.erase(it);
    if (fault.empty())
      fault = entry.work();
  }
  return fault;
}
