//===- StepKernel.cpp - Which kernel runs a decode step -------------------===//

#include "StepKernel.h"
#include "PrefillTile.h"

#include <algorithm>
#include <cstdlib>

using namespace hybrid::rt;

bool hybrid::rt::prefersFlashForStep(int64_t groupSize, int64_t stepTokens,
                                     int64_t heads, int threads) {
  // Measured (docs/CPUCodegen.md): the flash kernel wins from 16 rows per
  // kv head (half of one of its 32-row blocks) once it has a work item for
  // every thread (it does not split the keys; an item is at least a block,
  // as choosePrefillTile cuts them).
  int64_t block = getPositionsPerBlock(groupSize);
  int64_t items = heads * ((stepTokens + block - 1) / block);
  return std::max<int64_t>(groupSize, 1) * stepTokens >= 16 && items >= threads;
}

bool hybrid::rt::prefersFlashForGpuStep(int64_t stepTokens, int64_t groupSize,
                                        int64_t heads, int64_t queryTile,
                                        int64_t ctaRows,
                                        int64_t multiprocessors,
                                        bool splitKeys) {
  // Models, not yet measurements (no GPU has run them);
  // $HYBRID_CUDA_STEP_KERNEL forces either kernel for measuring.
  //
  // With split-K both kernels spread the keys over every SM. Per key of a
  // kv head (head dim 128: 512 bytes of K and V), an H100 SM's share of the
  // bandwidth (3.35 TB/s over 132) takes 20 ns; the flash kernel's tensor
  // cores compute a 64-row CTA's products for it in about 11 ns at half
  // their peak, so up to ctaRows rows per kv head it costs what its reads
  // do. The decode kernel computes T * G rows of 256 FMAs per key on the
  // CUDA cores (128 a cycle), which outlasts the 20 ns from about 16 rows
  // (at 1.7 GHz, 17 rows at full issue): there the flash kernel wins.
  if (splitKeys)
    return stepTokens * std::max<int64_t>(groupSize, 1) >= 16;
  // Without split-K: per key, the decode kernel moves T (stepTokens) key
  // and value rows per kv head through the memory system, the flash kernel
  // computes ctaRows rows of products per CTA, in waves of one CTA per SM;
  // an SM's tensor-core rate (about 3 TFLOP/s useful of an H100's 400) is
  // about the GPU's memory bandwidth (3 TB/s), so the flash kernel wins
  // when T * heads > waves * ctaRows.
  int64_t ctas = heads * ((stepTokens + queryTile - 1) / queryTile);
  int64_t waves =
      (ctas + multiprocessors - 1) / std::max<int64_t>(1, multiprocessors);
  return stepTokens * heads > waves * ctaRows;
}

int64_t hybrid::rt::getFlashKeySplits(int64_t ctas, int64_t keyTiles,
                                      int64_t wave) {
  if (ctas <= 0 || 2 * ctas > wave)
    return 1;
  return std::max<int64_t>(1,
                           std::min(wave / ctas, keyTiles / kMinTilesPerSplit));
}

StepKernel hybrid::rt::getFixedStepKernel(const char *variable,
                                          std::string &error) {
  const char *env = std::getenv(variable);
  if (!env || !*env)
    return StepKernel::Automatic;
  std::string value = env;
  if (value == "decode")
    return StepKernel::Decode;
  if (value == "flash")
    return StepKernel::Flash;
  error = std::string(variable) + ": expected 'decode' or 'flash', got '" +
          value + "'";
  return StepKernel::Automatic;
}
