//===- ModelSpec.h - Plain description of a hybrid schedule -----*- C++ -*-===//
//
// The importers (Hugging Face config.json, the project's own spec) produce a
// ModelSpec; `buildSchedule` turns it into a `hybrid.schedule` op. Keeping this
// model free of MLIR lets the importers be tested and fuzzed on their own.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_IMPORT_MODELSPEC_H
#define HYBRID_IMPORT_MODELSPEC_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hybrid::spec {

/// What mixes tokens in a layer.
/// Mlp: none (an MLP or MoE block on its own, Nemotron-H); Conv: a gated
/// short convolution (LFM2).
enum class LayerKind {
  Full,
  Sliding,
  Chunked,
  Linear,
  Mamba,
  Hybrid,
  Mlp,
  Conv
};

/// Kinds with an attention (hybrid: beside its Mamba mixer).
inline bool attends(LayerKind kind) {
  return kind == LayerKind::Full || kind == LayerKind::Sliding ||
         kind == LayerKind::Chunked || kind == LayerKind::Hybrid;
}
/// Kinds with a fixed per-sequence state.
inline bool hasState(LayerKind kind) {
  return kind == LayerKind::Linear || kind == LayerKind::Mamba ||
         kind == LayerKind::Hybrid || kind == LayerKind::Conv;
}
/// Kinds that have head fields: attention and linear attention.
inline bool hasHeads(LayerKind kind) {
  return attends(kind) || kind == LayerKind::Linear;
}

/// Which keys a query sees (see DESIGN.md "Masks").
enum class MaskKind { Full, SlidingWindow, Chunked };

struct Mask {
  MaskKind kind = MaskKind::Full;
  /// false for the bidirectional variants (encoders, vision tokens).
  bool causal = true;
  /// Keys visible including self, for SlidingWindow.
  std::optional<int64_t> window;
  /// Chunk length, for Chunked.
  std::optional<int64_t> chunk;
};

enum class RopeScalingKind { Linear, Llama3, Yarn };

struct RopeScaling {
  RopeScalingKind kind = RopeScalingKind::Linear;
  double factor = 1.0;
  std::optional<int64_t> originalMaxPosition; // llama3, yarn
  std::optional<double> lowFreqFactor;        // llama3
  std::optional<double> highFreqFactor;       // llama3
  std::optional<double> betaFast;             // yarn
  std::optional<double> betaSlow;             // yarn
  std::optional<double> attentionFactor;      // yarn
  /// yarn: round the correction range to whole dimensions (floor/ceil), as
  /// transformers does by default; GPT-OSS sets `truncate: false`.
  bool truncate = true;
};

enum class PositionalKind { None, Rope, Partial, Proportional };

struct Positional {
  PositionalKind kind = PositionalKind::None;
  double theta = 0.0;
  /// Partial: how many dims rotate (even, < head dim), from `rotaryOffset`
  /// on (the leading ones by default; MLA's the trailing ones).
  std::optional<int64_t> rotaryDim;
  int64_t rotaryOffset = 0;
  /// Proportional: n = floor(fraction * D / 2) pairs rotate.
  std::optional<double> fraction;
  std::optional<RopeScaling> scaling;
  /// Pairs of adjacent dims (2i, 2i + 1) instead of (i, i + rotating / 2).
  bool interleaved = false;
};

/// Llama 4 NoPE layers: q *= log(floor((p + 1) / floorScale) + 1) * attnScale
/// + 1.
struct TemperatureTuning {
  double floorScale = 8192.0;
  double attnScale = 0.1;
  /// Added to the position: 1 (Llama 4) or 0 (Mistral 3).
  int64_t offset = 1;
};

/// Fixed per-sequence state of a non-attention mixer, in elements.
struct RecurrentState {
  int64_t recurrentElements = 0;
  int64_t convElements = 0;
};

struct LayerSpec {
  LayerKind kind = LayerKind::Full;
  // Attention shape; unused (0) for Mamba, MLP and conv layers.
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t vHeadDim = 0;
  Mask mask;
  Positional positional;
  double scale = 0.0;
  std::optional<double> softcap;
  bool sinks = false;
  std::optional<TemperatureTuning> temperature;
  /// Reads the cache of this earlier layer instead of storing its own.
  std::optional<int64_t> sharedSource;
  /// One stored tensor serves as keys and values.
  bool kEqV = false;
  /// The keys' first vHeadDim dims are the values (MLA's latent cache,
  /// absorbed): one stored tensor, the keys.
  bool latent = false;
  /// Linear attention, Mamba, hybrid and conv layers.
  std::optional<RecurrentState> state;
};

struct ModelSpec {
  /// `model_type` of the config, or "spec" for the project's own format.
  std::string modelType;
  /// Symbol name of the schedule.
  std::string name;
  int64_t hiddenSize = 0;
  int64_t maxPositionEmbeddings = 0;
  std::vector<LayerSpec> layers;
};

} // namespace hybrid::spec

#endif // HYBRID_IMPORT_MODELSPEC_H
