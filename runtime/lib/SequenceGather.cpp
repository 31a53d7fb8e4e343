//===- SequenceGather.cpp - Sequences of a cache taking others' rows ------===//

#include "SequenceGather.h"

using namespace hybrid::rt;

SequenceGather SequenceGather::plan(const int64_t *order, int64_t batch,
                                    std::string &error) {
  SequenceGather gather;
  for (int64_t i = 0; i < batch; ++i)
    if (order[i] < 0 || order[i] >= batch) {
      error = "order[" + std::to_string(i) + "] is " +
              std::to_string(order[i]) + ", not a sequence of the batch [0, " +
              std::to_string(batch) + ")";
      return {};
    }
  // A sequence is overwritten unless it keeps its own rows; it is read by
  // every sequence that takes it. Saved: those overwritten and read by
  // another.
  std::vector<int64_t> slot(batch, -1);
  for (int64_t i = 0; i < batch; ++i) {
    int64_t from = order[i];
    if (from == i || order[from] == from || slot[from] >= 0)
      continue;
    slot[from] = int64_t(gather.saved.size());
    gather.saved.push_back(from);
  }
  for (int64_t i = 0; i < batch; ++i) {
    int64_t from = order[i];
    if (from == i)
      continue;
    if (slot[from] >= 0)
      gather.copies.push_back({i, slot[from], true});
    else
      gather.copies.push_back({i, from, false});
  }
  return gather;
}
