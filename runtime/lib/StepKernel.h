//===- StepKernel.h - Which CPU kernel runs a decode step -------*- C++ -*-===//
//
// A decode step of T tokens can run either CPU kernel. The decode kernel
// keeps vectors along the head dim: each key and value vector it loads
// serves the step's rows through per-row dot products and lane sums, and
// the key range splits across threads, which suits the usual steps of one
// to a few tokens. The flash kernel keeps rows along vector lanes
// (broadcast-FMA micro-kernels, no lane sums) but gives each thread whole
// query tiles of one kv head: it suits steps of many rows, i.e. chunked
// prefill and a follow-up prompt appended to a cache.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_STEPKERNEL_H
#define HYBRID_RT_LIB_STEPKERNEL_H

#include <cstdint>
#include <string>

namespace hybrid::rt {

enum class StepKernel { Automatic, Decode, Flash };

/// Whether a step of `stepTokens` tokens of `groupSize` query heads per kv
/// head, over `heads` kv heads times the batch, runs the flash kernel.
bool prefersFlashForStep(int64_t groupSize, int64_t stepTokens, int64_t heads,
                         int threads);

/// The kernel $HYBRID_CPU_STEP_KERNEL fixes ("decode" or "flash", for
/// experiments and tests), Automatic when it is unset; sets `error` for any
/// other value.
StepKernel getFixedStepKernel(std::string &error);

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_STEPKERNEL_H
