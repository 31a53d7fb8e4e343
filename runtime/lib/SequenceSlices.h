//===- SequenceSlices.h - What one session call runs together ---*- C++ -*-===//
//
// Continuous batching: a session's calls act on the sequences the caller
// selected (hybrid_rt_session_select), each of which may stand at its own
// length. Kernels take one position per call, so a call runs its sequences
// in slices: runs of sequences consecutive in the batch and in the
// selection that stand at one progress in every layer, each slice one
// batch over its sequences' cache rows and its entries of the call's
// tensors. A call on every sequence at one length is one slice, as if
// sequences could not differ.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_SEQUENCESLICES_H
#define HYBRID_RT_LIB_SEQUENCESLICES_H

#include "CacheRows.h"
#include "hybrid-rt/hybrid_rt.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hybrid::rt {

/// Sequences [first, first + batch) of a session, which are entries
/// [entry, entry + batch) of the call's tensors.
struct Slice {
  int64_t first = 0, batch = 0, entry = 0;
  SequenceRange sequences() const { return {first, batch}; }
};

/// A selection's entry that names no sequence (hybrid_rt_session_select):
/// the calls skip it, and a CUDA graph's step keeps its batch full with it.
constexpr int64_t kPaddingEntry = -1;
/// The slices of a call on `selected` (empty: every sequence of `batch`, in
/// order), merging sequence b into the slice before it when that ends at
/// b - 1, the entries too, and together(b - 1, b) holds; padding entries
/// are in none.
std::vector<Slice>
planSlices(const std::vector<int64_t> &selected, int64_t batch,
           const std::function<bool(int64_t, int64_t)> &together);

/// "sequence 3" or "sequences 3 to 5", for messages.
std::string describeSlice(const Slice &slice);

/// "" if sequences[0, count) can be a selection of a batch of `batch`:
/// distinct, in [0, batch), or padding (kPaddingEntry); else the first
/// that is not.
std::string checkSelection(const int64_t *sequences, int64_t count,
                           int64_t batch);

/// A call's operand [N, ...] (rank 4) restricted to a slice's entries: `t`
/// itself where they are all of it (and null for null), else a view of
/// them. Not copyable: get() may point into it.
/// Bytes of one batch entry of `t` ([B, ...] f32, bf16 or f16).
int64_t getEntryBytes(const hybrid_rt_tensor &t);

class OperandSlice {
public:
  OperandSlice(const hybrid_rt_tensor *t, const Slice &slice);
  OperandSlice(const OperandSlice &) = delete;
  OperandSlice &operator=(const OperandSlice &) = delete;
  hybrid_rt_tensor *get() const { return tensor; }

private:
  hybrid_rt_tensor view{};
  hybrid_rt_tensor *tensor;
};

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_SEQUENCESLICES_H
