//===- Rope.h - RoPE frequencies of a positional encoding -------*- C++ -*-===//

#ifndef HYBRID_DIALECT_HYBRID_UTILS_ROPE_H
#define HYBRID_DIALECT_HYBRID_UTILS_ROPE_H

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"
#include "llvm/ADT/SmallVector.h"

namespace hybrid {

/// How a head of `headDim` dims rotates: dims `offset + i` and
/// `offset + i + half` (or, when `interleaved`, `offset + 2i` and
/// `offset + 2i + 1`) form pair `i` for `i < inverseFrequencies.size()`, with
/// angle `position * inverseFrequencies[i]`; cos and sin are multiplied by
/// `attentionFactor` (yarn). Dims not in a pair pass through.
struct RopeTable {
  int64_t offset = 0;
  int64_t half = 0;
  bool interleaved = false;
  llvm::SmallVector<double> inverseFrequencies;
  double attentionFactor = 1.0;
};

/// The rotation `pos` states for a head of `headDim` dims, with transformers'
/// frequency formulas (default, linear, llama3, yarn; partial and
/// proportional). Empty for `none`.
RopeTable computeRopeTable(PositionalAttr pos, int64_t headDim);

} // namespace hybrid

#endif // HYBRID_DIALECT_HYBRID_UTILS_ROPE_H
