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

bool hybrid::rt::prefersFlashForGpuStep(int64_t stepTokens, int64_t heads,
                                        int64_t queryTile, int64_t ctaRows,
                                        int64_t multiprocessors) {
  // A model, not yet a measurement (no GPU has run it): per key, the decode
  // kernel moves T (stepTokens) key and value rows per kv head through the
  // memory system, the flash kernel computes ctaRows rows of products per
  // CTA, in waves of one CTA per SM; an SM's tensor-core rate (about 3
  // TFLOP/s useful of an H100's 400) is about the GPU's memory bandwidth (3
  // TB/s), so the flash kernel wins when T * heads > waves * ctaRows.
  // $HYBRID_CUDA_STEP_KERNEL forces either for measuring.
  int64_t ctas = heads * ((stepTokens + queryTile - 1) / queryTile);
  int64_t waves =
      (ctas + multiprocessors - 1) / std::max<int64_t>(1, multiprocessors);
  return stepTokens * heads > waves * ctaRows;
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
