//===- Rope.cpp - RoPE frequencies as transformers computes them ---------===//

#include "hybrid/Dialect/Hybrid/Utils/Rope.h"

#include <algorithm>
#include <cmath>

using namespace hybrid;

/// Frequency scaling of `modeling_rope_utils.py`: `dim` is the rotary dim the
/// frequencies are computed over.
static void applyScaling(RopeScalingAttr scaling, double theta, int64_t dim,
                         RopeTable &table) {
  llvm::SmallVectorImpl<double> &invFreq = table.inverseFrequencies;
  double factor = scaling.getFactor();
  switch (scaling.getKind()) {
  case RopeScalingKind::linear:
    for (double &f : invFreq)
      f /= factor;
    return;
  case RopeScalingKind::llama3: {
    double context = scaling.getOriginalMaxPosition();
    double low = scaling.getLowFreqFactor(), high = scaling.getHighFreqFactor();
    double lowFreqWavelen = context / low, highFreqWavelen = context / high;
    for (double &f : invFreq) {
      double wavelen = 2 * M_PI / f;
      if (wavelen > lowFreqWavelen) {
        f /= factor;
      } else if (wavelen >= highFreqWavelen) {
        double smooth = (context / wavelen - low) / (high - low);
        f = (1 - smooth) * f / factor + smooth * f;
      }
    }
    return;
  }
  case RopeScalingKind::yarn: {
    double betaFast =
        scaling.getBetaFast() != 0 ? double(scaling.getBetaFast()) : 32.0;
    double betaSlow =
        scaling.getBetaSlow() != 0 ? double(scaling.getBetaSlow()) : 1.0;
    double context = scaling.getOriginalMaxPosition();
    auto correctionDim = [&](double rotations) {
      return dim * std::log(context / (rotations * 2 * M_PI)) /
             (2 * std::log(theta));
    };
    double low = correctionDim(betaFast), high = correctionDim(betaSlow);
    if (scaling.getTruncate()) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high)
      high += 0.001; // avoid a division by zero, as transformers does
    for (auto [i, f] : llvm::enumerate(invFreq)) {
      double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      double extrapolation = f, interpolation = f / factor;
      double extrapolationWeight = 1 - ramp;
      f = interpolation * (1 - extrapolationWeight) +
          extrapolation * extrapolationWeight;
    }
    table.attentionFactor =
        scaling.getAttentionFactor() != 0
            ? double(scaling.getAttentionFactor())
            : (factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1);
    return;
  }
  }
}

RopeTable hybrid::computeRopeTable(PositionalAttr pos, int64_t headDim) {
  RopeTable table;
  int64_t rotaryDim = headDim, pairs = headDim / 2;
  switch (pos.getKind()) {
  case PositionalKind::none:
    return table;
  case PositionalKind::rope:
    break;
  case PositionalKind::partial:
    rotaryDim = pos.getRotaryDim();
    pairs = rotaryDim / 2;
    table.offset = pos.getRotaryOffset();
    break;
  case PositionalKind::proportional:
    // Frequencies over the full head dim, only the first pairs rotate.
    pairs = static_cast<int64_t>(std::floor(pos.getFraction() * headDim / 2));
    break;
  }
  table.half = rotaryDim / 2;
  table.interleaved = pos.getInterleaved();
  double theta = pos.getTheta();
  for (int64_t i = 0; i < pairs; ++i)
    table.inverseFrequencies.push_back(
        1.0 / std::pow(theta, double(2 * i) / double(rotaryDim)));
  if (RopeScalingAttr scaling = pos.getScaling())
    applyScaling(scaling, theta, rotaryDim, table);
  // Proportional RoPE's other pairs have frequency 0, and transformers'
  // cos and sin tables scale them by yarn's attention factor too: they
  // pass through scaled, not untouched.
  if (table.attentionFactor != 1.0)
    table.inverseFrequencies.resize(table.half, 0.0);
  return table;
}
