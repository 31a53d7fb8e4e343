//===- StepKernel.cpp - Which CPU kernel runs a decode step ---------------===//

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

StepKernel hybrid::rt::getFixedStepKernel(std::string &error) {
  const char *env = std::getenv("HYBRID_CPU_STEP_KERNEL");
  if (!env || !*env)
    return StepKernel::Automatic;
  std::string value = env;
  if (value == "decode")
    return StepKernel::Decode;
  if (value == "flash")
    return StepKernel::Flash;
  error = "HYBRID_CPU_STEP_KERNEL: expected 'decode' or 'flash', got '" +
          value + "'";
  return StepKernel::Automatic;
}
