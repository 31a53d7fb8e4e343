//===- StepKernel.h - Which kernel runs a decode step -----------*- C++ -*-===//
//
// A decode step of T tokens can run either kernel, on CPUs and on GPUs.
//
// CPUs: the decode kernel keeps vectors along the head dim: each key and
// value vector it loads serves the step's rows through per-row dot products
// and lane sums, and the key range splits across threads, which suits the
// usual steps of one to a few tokens. The flash kernel keeps rows along vector
// lanes (broadcast-FMA micro-kernels, no lane sums) but gives each thread whole
// query tiles of one kv head: it suits steps of many rows, i.e. chunked
// prefill and a follow-up prompt appended to a cache.
//
// GPUs: the decode kernel (SIMT, split across CTAs over the key range)
// reads every cached key and value once per query position of the step and
// computes every row's products on the CUDA cores; the flash kernel (tensor
// cores) reads them once per CTA of ctaRows (position, head) rows. Its
// split-K twin splits the keys of few query tiles across CTAs too; without
// one (a bidirectional layer, older artifacts), a step of few tiles leaves
// most multiprocessors idle.
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

/// Whether a GPU step of `stepTokens` tokens of `groupSize` query heads per
/// kv head, over `heads` kv heads times the batch, runs the flash kernel,
/// whose CTAs take `ctaRows` rows of `queryTile` positions each, on
/// `multiprocessors` SMs; `splitKeys`: it has a split-K twin.
bool prefersFlashForGpuStep(int64_t stepTokens, int64_t groupSize,
                            int64_t heads, int64_t queryTile, int64_t ctaRows,
                            int64_t multiprocessors, bool splitKeys);

/// Splits of each query tile's key range for a flash launch of `ctas` CTAs
/// whose heaviest query tile visits `keyTiles` key tiles, on a GPU that
/// holds `wave` of them at once: as many as keep the launch within one
/// wave, each at least kMinTilesPerSplit tiles; 1 for a launch of more
/// than half a wave.
int64_t getFlashKeySplits(int64_t ctas, int64_t keyTiles, int64_t wave);

/// Key tiles a split of the flash kernel covers at least: its partials
/// (written, then read by the combine kernel) cost about one tile's loads.
constexpr int64_t kMinTilesPerSplit = 4;

/// CPUs, values-only caches (K=V): the flash kernel reads keys derived
/// into scratch first (libm cos and sin per key and pair: about the work of
/// a few tokens' attention), so steps shorter than this stay with the
/// decode kernel, which derives keys as it loads them.
constexpr int64_t kMinFlashStepDerivingKeys = 32;

/// The kernel environment variable `variable` fixes ("decode" or "flash",
/// for experiments and tests), Automatic when it is unset; sets `error` for
/// any other value.
StepKernel getFixedStepKernel(const char *variable, std::string &error);

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_STEPKERNEL_H
