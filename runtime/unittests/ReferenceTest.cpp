//===- ReferenceTest.cpp - The reference against hand-worked cases --------===//

#include "hybrid-rt/Reference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

using namespace hybrid::rt;

static LayerSpec layer(int64_t heads, int64_t kvHeads, int64_t dim) {
  LayerSpec l;
  l.kind = "full";
  l.kernel = "k";
  l.numHeads = heads;
  l.numKvHeads = kvHeads;
  l.headDim = l.vHeadDim = dim;
  l.scale = 1 / std::sqrt(double(dim));
  return l;
}

// Zero queries give equal scores: each output is the mean of the visible
// values, which checks the mask and the GQA head mapping.
TEST(Reference, ZeroQueriesAverageVisibleValues) {
  LayerSpec l = layer(4, 2, 2);
  l.window = 3;
  const int64_t n = 6;
  std::vector<float> q(n * 4 * 2, 0.f), k(n * 2 * 2, 1.f), v(n * 2 * 2);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t e = 0; e < 2; ++e)
        v[(j * 2 + h) * 2 + e] = float(j + 10 * h + 100 * e);
  std::vector<double> out =
      reference::attention(l, 1, n, n, q.data(), k.data(), v.data(), nullptr);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < 4; ++h) {
      int64_t first = std::max<int64_t>(0, i - 2);
      double mean = (first + i) / 2.0 + 10 * (h / 2);
      EXPECT_NEAR(out[(i * 4 + h) * 2], mean, 1e-12) << i << " " << h;
      EXPECT_NEAR(out[(i * 4 + h) * 2 + 1], mean + 100, 1e-12);
    }
}

TEST(Reference, SinkJoinsTheDenominatorOnly) {
  LayerSpec l = layer(1, 1, 2);
  l.sinks = true;
  std::vector<float> q = {0, 0}, k = {1, 1}, v = {3, -2}, sinks = {0.5f};
  std::vector<double> out = reference::attention(l, 1, 1, 1, q.data(), k.data(),
                                                 v.data(), sinks.data());
  double weight = 1 / (1 + std::exp(0.5));
  EXPECT_NEAR(out[0], 3 * weight, 1e-12);
  EXPECT_NEAR(out[1], -2 * weight, 1e-12);
}

TEST(Reference, SoftcapBoundsScores) {
  // Two keys with scores 0 and 100 (before the cap): with cap 1 the weights
  // are softmax(0, tanh(100)) instead of almost (0, 1).
  LayerSpec l = layer(1, 1, 1);
  l.scale = 1;
  l.softcap = 1;
  std::vector<float> q = {10}, k = {0, 10}, v = {0, 1};
  std::vector<double> out =
      reference::attention(l, 1, 1, 2, q.data(), k.data(), v.data(), nullptr);
  double e = std::exp(std::tanh(100.0));
  EXPECT_NEAR(out[0], e / (1 + e), 1e-12);
}

// RoPE makes scores depend on the distance between positions only.
TEST(Reference, RopeScoresDependOnDistance) {
  LayerSpec l = layer(1, 1, 8);
  l.scale = 1;
  l.positional.kind = PositionalKind::rope;
  l.positional.theta = 100;
  reference::Rotation r = reference::getRotation(l.positional, 8);
  ASSERT_EQ(r.half, 4);
  EXPECT_DOUBLE_EQ(r.inverseFrequencies[1], std::pow(100.0, -2.0 / 8));
  // The weight of key p-2 (value 1) against key p-1 (value 0), the only
  // keys a window of 2 shows the last query, at two different positions p.
  auto weight = [&](int64_t n) {
    LayerSpec w = l;
    w.window = 2;
    w.vHeadDim = 1;
    std::vector<float> q(8), k(n * 8), v(n, 0.f);
    std::iota(q.begin(), q.end(), 1.f);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t e = 0; e < 8; ++e)
        k[j * 8 + e] = float((e * 7 + j % 2) % 5) - 2;
    v[n - 2] = 1;
    return reference::attention(w, 1, 1, n, q.data(), k.data(), v.data(),
                                nullptr)[0];
  };
  EXPECT_GT(weight(10), 0.0);
  EXPECT_LT(weight(10), 1.0);
  EXPECT_NEAR(weight(10), weight(30), 1e-9);
}

// Interleaved pairs are the rotate-half ones with the dims reordered
// (2i -> i, 2i + 1 -> i + half): the same scores for reordered q and k.
TEST(Reference, InterleavedRopeRotatesAdjacentDims) {
  LayerSpec l = layer(1, 1, 8);
  l.positional.kind = PositionalKind::rope;
  l.positional.theta = 100;
  LayerSpec interleaved = l;
  interleaved.positional.interleaved = true;
  int64_t n = 9;
  std::vector<float> q(n * 8), k(n * 8), v(n * 8), qHalf(n * 8), kHalf(n * 8);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t e = 0; e < 8; ++e) {
      q[j * 8 + e] = float((e * 5 + j * 3) % 7) - 3;
      k[j * 8 + e] = float((e * 7 + j) % 5) - 2;
      v[j * 8 + e] = float((e + j * 2) % 3);
      int64_t to = e % 2 ? e / 2 + 4 : e / 2;
      qHalf[j * 8 + to] = q[j * 8 + e];
      kHalf[j * 8 + to] = k[j * 8 + e];
    }
  std::vector<double> a = reference::attention(interleaved, 1, n, n, q.data(),
                                               k.data(), v.data(), nullptr);
  std::vector<double> b = reference::attention(l, 1, n, n, qHalf.data(),
                                               kHalf.data(), v.data(), nullptr);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], 1e-12) << i;
  // ... and not the rotate-half scores of the same q and k.
  std::vector<double> c =
      reference::attention(l, 1, n, n, q.data(), k.data(), v.data(), nullptr);
  double most = 0;
  for (size_t i = 0; i < a.size(); ++i)
    most = std::max(most, std::abs(a[i] - c[i]));
  EXPECT_GT(most, 1e-3);
}

TEST(Reference, PartialAndProportionalRotateSomePairs) {
  Positional partial{PositionalKind::partial, 10000, 32, 0, {}};
  reference::Rotation p = reference::getRotation(partial, 128);
  EXPECT_EQ(p.half, 16);
  EXPECT_DOUBLE_EQ(p.inverseFrequencies[1], std::pow(10000.0, -2.0 / 32));

  Positional proportional{PositionalKind::proportional, 10000, 32, 0.25, {}};
  reference::Rotation q = reference::getRotation(proportional, 128);
  EXPECT_EQ(q.half, 64);
  EXPECT_DOUBLE_EQ(q.inverseFrequencies[15], std::pow(10000.0, -30.0 / 128));
  EXPECT_EQ(q.inverseFrequencies[16], 0);
}

TEST(Reference, Llama3KeepsHighAndDividesLowFrequencies) {
  Positional p{PositionalKind::rope, 500000, 0, 0, {}};
  p.scaling.type = "llama3";
  p.scaling.factor = 8;
  p.scaling.originalMaxPosition = 8192;
  p.scaling.lowFreqFactor = 1;
  p.scaling.highFreqFactor = 4;
  reference::Rotation r = reference::getRotation(p, 128);
  EXPECT_DOUBLE_EQ(r.inverseFrequencies[0], 1.0); // wavelength 2*pi
  double base = std::pow(500000.0, -126.0 / 128); // wavelength >> 8192
  EXPECT_DOUBLE_EQ(r.inverseFrequencies[63], base / 8);
}

TEST(Reference, YarnAttentionFactorDefaultsFromFactor) {
  Positional p{PositionalKind::rope, 10000, 0, 0, {}};
  p.scaling.type = "yarn";
  p.scaling.factor = 4;
  p.scaling.originalMaxPosition = 4096;
  reference::Rotation r = reference::getRotation(p, 64);
  EXPECT_DOUBLE_EQ(r.attentionFactor, 0.1 * std::log(4.0) + 1);
  // The fastest pair extrapolates (unchanged), the slowest interpolates.
  EXPECT_DOUBLE_EQ(r.inverseFrequencies[0], 1.0);
  EXPECT_DOUBLE_EQ(r.inverseFrequencies[31], std::pow(10000.0, -62.0 / 64) / 4);
}

TEST(Reference, PartialRotationFromAnOffset) {
  // MLA's decoupled RoPE: the last 4 of 8 dims rotate, interleaved.
  Positional p{PositionalKind::partial, 10000, 4, 0, {}, true, 4};
  reference::Rotation r = reference::getRotation(p, 8);
  EXPECT_EQ(r.offset, 4);
  EXPECT_EQ(r.half, 2);
  LayerSpec l;
  l.numHeads = l.numKvHeads = 1;
  l.headDim = l.vHeadDim = 8;
  l.scale = 1;
  l.positional = p;
  // Two keys at positions 0 and 1; the query at 1 (unit vectors): only the
  // rotating dims' scores depend on the position.
  std::vector<float> q = {1, 0, 0, 0, 1, 0, 0, 0};
  std::vector<float> k = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  std::vector<float> v = {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  std::vector<double> out =
      reference::attention(l, 1, 1, 2, q.data(), k.data(), v.data(), nullptr);
  // q.k at distance 1 is 1 + cos(1) (pair 0, frequency 1), at 0 it is 2.
  double s0 = 1 + std::cos(1.0), s1 = 2;
  double w0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
  EXPECT_NEAR(out[0], w0, 1e-12);
  EXPECT_NEAR(out[1], 1 - w0, 1e-12);
}
