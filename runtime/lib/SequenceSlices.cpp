//===- SequenceSlices.cpp - The sequences one session call runs together --===//

#include "SequenceSlices.h"

#include <algorithm>

using namespace hybrid::rt;

std::vector<Slice>
hybrid::rt::planSlices(const std::vector<int64_t> &selected, int64_t batch,
                       const std::function<bool(int64_t, int64_t)> &together) {
  int64_t count = selected.empty() ? batch : int64_t(selected.size());
  std::vector<Slice> slices;
  for (int64_t i = 0; i < count; ++i) {
    int64_t b = selected.empty() ? i : selected[i];
    if (b == kPaddingEntry)
      continue;
    if (!slices.empty()) {
      Slice &last = slices.back();
      if (last.first + last.batch == b && last.entry + last.batch == i &&
          together(b - 1, b)) {
        ++last.batch;
        continue;
      }
    }
    slices.push_back({b, 1, i});
  }
  return slices;
}

std::string hybrid::rt::describeSlice(const Slice &slice) {
  if (slice.batch == 1)
    return "sequence " + std::to_string(slice.first);
  return "sequences " + std::to_string(slice.first) + " to " +
         std::to_string(slice.first + slice.batch - 1);
}

std::string hybrid::rt::checkSelection(const int64_t *sequences, int64_t count,
                                       int64_t batch) {
  std::vector<int64_t> seenAt(size_t(batch), -1);
  for (int64_t i = 0; i < count; ++i) {
    int64_t b = sequences[i];
    std::string entry =
        "sequences[" + std::to_string(i) + "] is " + std::to_string(b);
    if (b == kPaddingEntry)
      continue;
    if (b < 0 || b >= batch)
      return entry + ", outside the batch [0, " + std::to_string(batch) +
             ") (-1: padding)";
    if (seenAt[b] >= 0)
      return entry + ", as sequences[" + std::to_string(seenAt[b]) +
             "] is: a selection names each sequence once";
    seenAt[b] = i;
  }
  return "";
}

int64_t hybrid::rt::getEntryBytes(const hybrid_rt_tensor &t) {
  int64_t elementBytes = t.dtype == HYBRID_RT_F32 ? 4 : 2;
  return t.shape[1] * t.shape[2] * t.shape[3] * elementBytes;
}

OperandSlice::OperandSlice(const hybrid_rt_tensor *t, const Slice &slice)
    : tensor(const_cast<hybrid_rt_tensor *>(t)) {
  if (!t || (slice.entry == 0 && slice.batch == t->shape[0]))
    return;
  view = *t;
  view.data = static_cast<char *>(t->data) + slice.entry * getEntryBytes(*t);
  view.shape[0] = slice.batch;
  tensor = &view;
}
