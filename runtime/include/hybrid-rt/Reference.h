//===- Reference.h - Attention as DESIGN.md defines it, float64 -*- C++ -*-===//
//
// The independent reference every kernel test compares against: written for
// clarity from shared/DESIGN.md and transformers' RoPE formulas, sharing no
// code with the compiler. Accumulates in double.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_REFERENCE_H
#define HYBRID_RT_REFERENCE_H

#include "hybrid-rt/Manifest.h"

#include <vector>

namespace hybrid::rt::reference {

/// How one head vector rotates: pair (i, i + half) turns by
/// `position * inverseFrequencies[i]`, and rotated pairs are multiplied by
/// `attentionFactor` (yarn). Dims from 2 * half on pass through.
struct Rotation {
  int64_t half = 0;
  std::vector<double> inverseFrequencies; // one per pair, size half
  double attentionFactor = 1;
};

/// transformers' inverse frequencies (default, linear, llama3, yarn) for
/// rope, partial and proportional rotations of `headDim`-wide heads.
Rotation getRotation(const Positional &positional, int64_t headDim);

/// Layer `layer`'s attention: q [B, Sq, Hq, D], k [B, Skv, Hkv, D],
/// v [B, Skv, Hkv, Dv], sinks [Hq] or null; queries sit at positions
/// Skv - Sq + i, keys at 0..Skv-1. Returns out [B, Sq, Hq, Dv].
std::vector<double> attention(const LayerSpec &layer, int64_t batch,
                              int64_t numQueries, int64_t numKeys,
                              const float *q, const float *k, const float *v,
                              const float *sinks);

} // namespace hybrid::rt::reference

#endif // HYBRID_RT_REFERENCE_H
