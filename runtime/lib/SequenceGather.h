//===- SequenceGather.h - Sequences of a cache taking others' rows -*- C++
//-*-===//
//
// Beam search keeps a batch of sequences whose prefixes are others' after
// each step: sequence i continues what sequence order[i] held, entries may
// repeat (transformers' reorder_cache, vLLM's forks). A cache is
// [B, rows, ...] with each sequence's rows contiguous, so the reordering is
// a copy of whole slices, done in place: a slice that is overwritten while
// another sequence still reads it is saved to scratch first, and no other.
// CPU caches (CacheRows) and device caches (the CUDA backend) share the plan.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_SEQUENCEGATHER_H
#define HYBRID_RT_LIB_SEQUENCEGATHER_H

#include <cstdint>
#include <string>
#include <vector>

namespace hybrid::rt {

struct SequenceGather {
  /// Sequences copied to scratch first, scratch slot j holding saved[j].
  std::vector<int64_t> saved;
  /// Then each copy: sequence `to` takes sequence `from`'s rows, from
  /// scratch slot `from` where `fromScratch`.
  struct Copy {
    int64_t to, from;
    bool fromScratch;
  };
  std::vector<Copy> copies;

  /// The plan for order[0, batch); "" or why `order` is not one (an entry
  /// outside [0, batch)) in `error`.
  static SequenceGather plan(const int64_t *order, int64_t batch,
                             std::string &error);
  bool empty() const { return copies.empty(); }
};

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_SEQUENCEGATHER_H
