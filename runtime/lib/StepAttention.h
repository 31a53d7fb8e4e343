//===- StepAttention.h - A CPU decode step's attention ----------*- C++ -*-===//
//
// The attention of a CPU decode step of T tokens per sequence over a layer's
// cache, their keys and values stored already. A call's sequences may stand
// at different lengths (continuous batching): it runs in slices, each at one
// position (SequenceSlices.h). The slices run as one batch: one dispatch
// per phase (prepare; decode and combine, or flash) whose work items map to
// their slice's queries, cache rows, position and partial results, the
// decode kernel's key ranges split so that the items weigh about alike, and
// the kernel (StepKernel.h) chosen for the whole call. A ragged batch then
// costs what its keys do, not a dispatch per slice and phase (waking the
// pool's threads for a batch-1 slice costs about what its attention does).
// K=V layers' flash steps (keys derived into scratch first) run slice after
// slice.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_STEPATTENTION_H
#define HYBRID_RT_LIB_STEPATTENTION_H

#include "Model.h"
#include "SequenceSlices.h"

#include <vector>

namespace hybrid::rt {

/// A layer's cache as a step reads it: keys (unused where it keeps values
/// only, K=V) and values [batch, rows, Hkv, *] (the keys' rows where it keeps
/// keys only, latent: read as a view of their first dims), position p in row
/// p % rows.
struct StepCache {
  const CacheRows &keys, &values;
  int64_t rows;
};

/// A slice of the call and the position of its first query.
struct StepSlice {
  Slice slice;
  int64_t position;
};

/// The attention of layer `l` for a step of `steps` tokens of every slice:
/// q [N, steps, Hq, D] (N: the call's batch, which the slices' entries
/// cover in order) at each slice's positions over the cache `cache` (the
/// layer's, or the one it reads), writing out [N, steps, Hq, Dv].
void attendStep(hybrid_rt_model &model, const LayerSpec &l,
                const KernelSpec &kernel, const StepCache &cache,
                const std::vector<StepSlice> &slices, int64_t steps,
                const hybrid_rt_tensor *q, const hybrid_rt_tensor *sinks,
                hybrid_rt_tensor *out);

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_STEPATTENTION_H
