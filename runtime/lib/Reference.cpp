//===- Reference.cpp - Attention as DESIGN.md defines it, in float64 ------===//

#include "hybrid-rt/Reference.h"
#include "ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace hybrid::rt;
using namespace hybrid::rt::reference;

//===----------------------------------------------------------------------===//
// RoPE frequencies (transformers' modeling_rope_utils)
//===----------------------------------------------------------------------===//

static void applyLlama3(std::vector<double> &invFreq, const RopeScaling &s) {
  double lowWavelen = s.originalMaxPosition / s.lowFreqFactor;
  double highWavelen = s.originalMaxPosition / s.highFreqFactor;
  for (double &f : invFreq) {
    double wavelen = 2 * M_PI / f;
    if (wavelen > lowWavelen) {
      f /= s.factor; // low frequencies: interpolate
    } else if (wavelen >= highWavelen) {
      double smooth = (s.originalMaxPosition / wavelen - s.lowFreqFactor) /
                      (s.highFreqFactor - s.lowFreqFactor);
      f = (1 - smooth) * f / s.factor + smooth * f;
    } // high frequencies stay
  }
}

/// Dim index at which `rotations` full turns fit in the original context.
static double yarnCorrectionDim(double rotations, double dim, double base,
                                double maxPosition) {
  return dim * std::log(maxPosition / (rotations * 2 * M_PI)) /
         (2 * std::log(base));
}

static double applyYarn(std::vector<double> &invFreq, const RopeScaling &s,
                        double base, int64_t dim) {
  double low = yarnCorrectionDim(s.betaFast, dim, base, s.originalMaxPosition);
  double high = yarnCorrectionDim(s.betaSlow, dim, base, s.originalMaxPosition);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high)
    high += 0.001;
  for (size_t i = 0; i < invFreq.size(); ++i) {
    double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    double extrapolation = 1 - ramp; // weight of the unscaled frequency
    invFreq[i] = invFreq[i] / s.factor * (1 - extrapolation) +
                 invFreq[i] * extrapolation;
  }
  if (s.attentionFactor != 0)
    return s.attentionFactor;
  return s.factor <= 1 ? 1.0 : 0.1 * std::log(s.factor) + 1.0;
}

Rotation reference::getRotation(const Positional &p, int64_t headDim) {
  Rotation r;
  if (p.kind == PositionalKind::none)
    return r;
  // Frequencies run over the rotating dims for partial RoPE, over the whole
  // head otherwise; proportional RoPE rotates only the first pairs.
  int64_t dim = p.kind == PositionalKind::partial ? p.rotaryDim : headDim;
  r.half = dim / 2;
  r.interleaved = p.interleaved;
  if (p.kind == PositionalKind::partial)
    r.offset = p.rotaryOffset;
  for (int64_t i = 0; i < r.half; ++i)
    r.inverseFrequencies.push_back(std::pow(p.theta, -2.0 * i / dim));
  const RopeScaling &s = p.scaling;
  if (s.type == "linear")
    for (double &f : r.inverseFrequencies)
      f /= s.factor;
  else if (s.type == "llama3")
    applyLlama3(r.inverseFrequencies, s);
  else if (s.type == "yarn")
    r.attentionFactor = applyYarn(r.inverseFrequencies, s, p.theta, dim);
  if (p.kind == PositionalKind::proportional)
    for (int64_t i = p.rotaryDim / 2; i < r.half; ++i)
      r.inverseFrequencies[i] = 0;
  return r;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// Rotates every head of `rows` [n, heads, dim] rows in place; row i sits at
/// position firstPosition + i % seq.
static void rotate(std::vector<double> &x, int64_t seq, int64_t heads,
                   int64_t dim, const Rotation &r, int64_t firstPosition) {
  if (r.half == 0)
    return;
  for (size_t row = 0; row < x.size() / (heads * dim); ++row) {
    double position = double(firstPosition + int64_t(row) % seq);
    for (int64_t h = 0; h < heads; ++h) {
      double *v = &x[(row * heads + h) * dim + r.offset];
      for (int64_t i = 0; i < r.half; ++i) {
        double angle = position * r.inverseFrequencies[i];
        double c = std::cos(angle) * r.attentionFactor;
        double s = std::sin(angle) * r.attentionFactor;
        int64_t first = r.interleaved ? 2 * i : i;
        int64_t second = r.interleaved ? 2 * i + 1 : i + r.half;
        double a = v[first], b = v[second];
        v[first] = a * c - b * s;
        v[second] = b * c + a * s;
      }
    }
  }
}

/// attention(), with the rotated keys as caches of `keysCachedAs` and scale
/// `keyScale` read them back.
static std::vector<double>
attend(const LayerSpec &l, int64_t batch, int64_t numQueries, int64_t numKeys,
       const float *q, const float *k, const float *v, const float *sinks,
       const std::string &keysCachedAs, float keyScale = 1) {
  const int64_t hq = l.numHeads, hkv = l.numKvHeads, d = l.headDim,
                dv = l.vHeadDim, group = hq / hkv;
  const int64_t firstQuery = numKeys - numQueries;
  std::vector<double> qs(q, q + batch * numQueries * hq * d);
  std::vector<double> ks(k, k + batch * numKeys * hkv * d);
  Rotation rotation = getRotation(l.positional, d);
  rotate(qs, numQueries, hq, d, rotation, firstQuery);
  rotate(ks, numKeys, hkv, d, rotation, 0);
  if (keysCachedAs != "f32" || keyScale != 1)
    for (double &x : ks)
      x = roundAsCached(keysCachedAs, float(x), keyScale);

  std::vector<double> out(batch * numQueries * hq * dv, 0.0);
  // One (batch, query, head) row per work item: rows are independent, and
  // the checks of long sequences and caches are dominated by this loop.
  auto rows = [&](int64_t begin, int64_t end) {
    std::vector<double> scores(numKeys);
    for (int64_t item = begin; item < end; ++item) {
      int64_t b = item / (numQueries * hq), i = item / hq % numQueries,
              h = item % hq;
      int64_t pq = firstQuery + i;
      double factor = l.scale;
      if (l.temperature)
        factor *= std::log(std::floor((pq + l.temperature->offset) /
                                      l.temperature->floorScale) +
                           1.0) *
                      l.temperature->attnScale +
                  1.0;
      const double *qv = &qs[((b * numQueries + i) * hq + h) * d];
      int64_t kvh = h / group;
      double max =
          sinks ? double(sinks[h]) : -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < numKeys; ++j) {
        scores[j] = -std::numeric_limits<double>::infinity();
        if (!l.visible(pq, j))
          continue;
        const double *kv = &ks[((b * numKeys + j) * hkv + kvh) * d];
        double s = 0;
        for (int64_t e = 0; e < d; ++e)
          s += qv[e] * kv[e];
        s *= factor;
        if (l.softcap != 0)
          s = l.softcap * std::tanh(s / l.softcap);
        scores[j] = s;
        max = std::max(max, s);
      }
      if (max == -std::numeric_limits<double>::infinity())
        continue; // no visible key and no sink: zeros
      double sum = sinks ? std::exp(double(sinks[h]) - max) : 0.0;
      double *o = &out[((b * numQueries + i) * hq + h) * dv];
      for (int64_t j = 0; j < numKeys; ++j) {
        if (scores[j] == -std::numeric_limits<double>::infinity())
          continue;
        double p = std::exp(scores[j] - max);
        sum += p;
        const float *vv = &v[((b * numKeys + j) * hkv + kvh) * dv];
        for (int64_t e = 0; e < dv; ++e)
          o[e] += p * vv[e];
      }
      for (int64_t e = 0; e < dv; ++e)
        o[e] /= sum;
    }
  };
  // No more threads than chunks of 16 rows (a decode step has few).
  const int64_t items = batch * numQueries * hq, grain = 16;
  ThreadPool pool(int(std::clamp<int64_t>((items + grain - 1) / grain, 1,
                                          defaultNumThreads())));
  pool.parallelFor(items, grain, rows);
  return out;
}

/// A latent layer's values: the first vHeadDim dims of each of its keys
/// `k` [batch * numKeys * Hkv, D] (before RoPE, which rotates later dims).
static std::vector<float> valuesOfKeys(const LayerSpec &l, int64_t rows,
                                       const float *k) {
  std::vector<float> v(rows * l.vHeadDim);
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(k + r * l.headDim, l.vHeadDim, v.data() + r * l.vHeadDim);
  return v;
}

std::vector<double> reference::attention(const LayerSpec &l, int64_t batch,
                                         int64_t numQueries, int64_t numKeys,
                                         const float *q, const float *k,
                                         const float *v, const float *sinks) {
  std::vector<float> latent;
  if (l.latent) {
    latent = valuesOfKeys(l, batch * numKeys * l.numKvHeads, k);
    v = latent.data();
  }
  return attend(l, batch, numQueries, numKeys, q, k, v, sinks, "f32");
}

std::vector<double> reference::sessionAttention(
    const LayerSpec &l, int64_t batch, int64_t numKeys, int64_t prompt,
    const CacheFormat &cached, const float *q, const float *k, const float *v,
    const float *sinks, const std::vector<float> &keyScale) {
  int64_t kw = l.numKvHeads * l.headDim, vw = l.numKvHeads * l.vHeadDim,
          qw = l.numHeads * l.headDim, ow = l.numHeads * l.vHeadDim;
  auto scaled = [&](std::vector<float> keys) {
    for (size_t i = 0; i < keys.size() && !keyScale.empty(); ++i)
      keys[i] *= keyScale[i % keyScale.size()];
    return keys;
  };
  std::vector<float> keys = scaled({k, k + batch * numKeys * kw});
  std::vector<float> latent;
  if (l.latent) {
    latent = valuesOfKeys(l, batch * numKeys * l.numKvHeads, k);
    v = latent.data();
  }
  std::vector<double> out =
      attend(l, batch, numKeys, numKeys, q, keys.data(), v, sinks, "f32");
  if ((cached.dtype == "f32" && cached.keyScale == 1 &&
       cached.valueScale == 1) ||
      prompt >= numKeys)
    return out;
  // The steps' queries, over the cache's keys and values: K=V caches hold
  // the values, from which keys are derived; other caches, rotated keys.
  int64_t steps = numKeys - prompt;
  std::vector<float> stepQ(batch * steps * qw);
  std::vector<float> cachedK(k, k + batch * numKeys * kw),
      cachedV(v, v + batch * numKeys * vw);
  for (int64_t b = 0; b < batch; ++b)
    std::copy_n(&q[(b * numKeys + prompt) * qw], steps * qw,
                &stepQ[b * steps * qw]);
  // Values in f32, as the kernels read them (times the scale: one more
  // rounding, as the kernels' output scaling); a latent layer's are its
  // keys' first dims, stored at the keys' scale.
  float valueScale = l.latent ? cached.keyScale : cached.valueScale;
  auto round = [&](std::vector<float> &x) {
    for (float &e : x)
      e = float(roundAsCached(cached.dtype, e, valueScale));
  };
  round(cachedV);
  if (l.kEqV) {
    round(cachedK);
    cachedK = scaled(std::move(cachedK));
  }
  // K=V keys are derived from the values rounded above.
  std::vector<double> stepOut = attend(
      l, batch, steps, numKeys, stepQ.data(), cachedK.data(), cachedV.data(),
      sinks, l.kEqV ? "f32" : cached.dtype, l.kEqV ? 1.f : cached.keyScale);
  for (int64_t b = 0; b < batch; ++b)
    std::copy_n(&stepOut[b * steps * ow], steps * ow,
                &out[(b * numKeys + prompt) * ow]);
  return out;
}

//===----------------------------------------------------------------------===//
// Cache element rounding
//===----------------------------------------------------------------------===//

/// x rounded to nearest even among the binary floats of `significantBits`
/// (the leading one included) whose exponents are at least `minExponent`
/// (smaller magnitudes: subnormals, the same spacing as at minExponent).
static double roundToFloat(double x, int significantBits, int minExponent) {
  if (x == 0 || !std::isfinite(x))
    return x;
  int exponent = std::ilogb(x); // |x| in [2^exponent, 2^(exponent+1))
  double spacing =
      std::ldexp(1.0, std::max(exponent, minExponent) - significantBits + 1);
  return std::nearbyint(x / spacing) * spacing; // ties to even
}

double reference::getSessionTolerance(const std::string &cacheDtype) {
  // f16's ulp is bf16's / 8, but 8 times as many rotated keys land near a
  // midpoint: seen 4e-4 (a chunked layer of scale 1, test/Runtime/Inputs/
  // scores.json).
  return cacheDtype == "f8" ? 1e-2 : cacheDtype == "f32" ? 1e-4 : 1e-3;
}

double reference::roundAsCached(const std::string &dtype, float x,
                                float scale) {
  if (scale == 1)
    return roundAsCached(dtype, x);
  return double(roundAsCached(dtype, x / scale)) * scale;
}

float reference::roundAsCached(const std::string &dtype, float x) {
  if (dtype == "bf16") {
    double largest = std::ldexp(2.0 - std::ldexp(1.0, -7), 127);
    double rounded = roundToFloat(x, 8, -126);
    return std::fabs(rounded) > largest ? std::copysign(INFINITY, x)
                                        : float(rounded);
  }
  if (dtype == "f16") {
    double rounded = roundToFloat(x, 11, -14);
    return std::fabs(rounded) > 65504.0 ? std::copysign(INFINITY, x)
                                        : float(rounded);
  }
  if (dtype == "f8") {
    if (std::isnan(x))
      return x;
    double rounded = roundToFloat(x, 4, -6);
    return float(std::clamp(rounded, -448.0, 448.0)); // infinities too
  }
  return x;
}
