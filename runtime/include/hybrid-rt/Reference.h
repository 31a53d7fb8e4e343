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

#include <string>
#include <vector>

namespace hybrid::rt::reference {

/// How one head vector rotates: pair i, dims offset + (i, i + half) (or
/// offset + (2i, 2i + 1) when interleaved), turns by
/// `position * inverseFrequencies[i]`, and rotated pairs are multiplied by
/// `attentionFactor` (yarn). Other dims pass through.
struct Rotation {
  int64_t offset = 0;
  int64_t half = 0;
  bool interleaved = false;
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

/// How a CPU session's cache holds keys and values: elements of `dtype`
/// that are the (rotated) keys divided by `keyScale` and the values by
/// `valueScale` (f8 caches' scales, hybrid_rt_session_cache_scales_set),
/// rounded.
struct CacheFormat {
  std::string dtype = "f32";
  float keyScale = 1, valueScale = 1;
};

/// attention() as a session computes it over `numKeys` positions: a prompt
/// of the first `prompt`, whose queries attend over k and v as given, then
/// steps, whose queries attend over caches of format `cached`: values and
/// rotated keys as the caches hold them, times their scales, or for K=V
/// layers, whose caches hold the values, keys derived from those. Keys are k
/// times `keyScale` ([D] repeated; empty: none). Returns out
/// [B, numKeys, Hq, Dv].
std::vector<double> sessionAttention(const LayerSpec &layer, int64_t batch,
                                     int64_t numKeys, int64_t prompt,
                                     const CacheFormat &cached, const float *q,
                                     const float *k, const float *v,
                                     const float *sinks,
                                     const std::vector<float> &keyScale = {});

/// The relative error (max|out - ref| / max|ref|) a session over caches of
/// `cacheDtype` may show against sessionAttention() with random inputs:
/// f32's rounding (1e-4), and for bf16 and f16 (1e-3) and f8 (1e-2) keys
/// that the kernels rotate in f32 before rounding them into the cache, where
/// the reference rotates in f64: a rotated key element at a rounding midpoint
/// rounds apart by one of the cache's ulps, which moves a row that sees few
/// keys by up to about ulp * scale * |q|.
double getSessionTolerance(const std::string &cacheDtype);

/// x as a cache of `dtype` holds it ("f32": x; "bf16": rounded to 8
/// significant bits, to nearest even, past the largest finite to infinity;
/// "f16": IEEE half, 11 bits, likewise; "f8": OCP E4M3FN, 4 significant
/// bits, saturating at +-448). Written from
/// the formats' definitions, not the runtime's bit tricks: a session's steps
/// attend over their caches' keys and values, so the reference for them
/// sees those rounded by this.
float roundAsCached(const std::string &dtype, float x);
/// x as a cache of `dtype` and `scale` reads it back: x / scale (in f32, as
/// sessions divide) rounded, times the scale.
double roundAsCached(const std::string &dtype, float x, float scale);

} // namespace hybrid::rt::reference

#endif // HYBRID_RT_REFERENCE_H
