//===- HFFamilies.h - Per-family rules of Hugging Face configs --*- C++ -*-===//
//
// What differs between model families in transformers: which layer kind each
// index gets when `layer_types` is absent, which defaults the configuration
// classes fill in, and how large the recurrent state of linear-attention and
// Mamba mixers is. HFConfig.cpp turns these into LayerSpecs.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_IMPORT_HFFAMILIES_H
#define HYBRID_LIB_IMPORT_HFFAMILIES_H

#include "JSONUtil.h"

#include <optional>
#include <string>
#include <vector>

namespace hybrid::spec::detail {

enum class Family {
  Llama,
  MistralLike, // mistral, mixtral, phi3, ministral, starcoder2: every layer
               // sliding when a window is set
  Qwen2,
  Qwen3,
  Qwen2Moe,
  Qwen3Moe,
  Qwen3Next,
  Gemma2, // and vaultgemma
  Gemma3,
  Gemma3n,
  Gemma4,
  Cohere2,
  Cohere2Moe,
  GptOss,
  Llama4,
  Jamba,
  Zamba2,
  FalconH1,
  MiniMax,
  Olmo3,
  Exaone4, // and exaone_moe
  SmolLM3,
  Cwm,
  Afmoe,
  GraniteSwa, // granite_swa, granitemoe_swa
  MiMoV2Flash,
  Ministral3, // Mistral 3's text model
  Bamba,
  GraniteMoeHybrid, // Granite 4.0-H
  OlmoHybrid,
  NemotronH, // Mamba-2, attention and mixer-less MLP / MoE blocks
  Lfm2,      // lfm2, lfm2_moe: short convolutions and attention
  Glm,       // glm, glm4: half the head rotating, in interleaved pairs
  Glm4Moe,   // GLM-4.5 and later: half the head rotating; sarvam_moe
  Granite,   // granite, granitemoe(shared): the attention multiplier as scale
  MiniMaxM2, // part of the head rotating, from rotary_dim
  Ernie45,   // ernie4_5, ernie4_5_moe: interleaved pairs
  SeedOss,   // plain full attention with their own defaults:
  SolarOpen, //   head dim 128, 8 KV heads, RoPE bases
  HyV3,
  Step3p5, // step3p5, step3p7: sliding and full layers, per-layer RoPE lists
  Apertus, // apertus, apertus1p5(_text): Llama 3 scaled RoPE by default
  Dots1,   // Qwen 2's rule, without use_sliding_window
  DeepseekMla,   // deepseek_v2, deepseek_v3 (kimi_k2, kimi_k25), youtu,
                 // sarvam_mla: multi-head latent attention as transformers
                 // computes it, decompressed per head
  LongcatFlash,  // LongCat-Flash: two MLA sublayers per block
  KimiLinear,    // Kimi Linear: KDA layers and NoPE MLA layers
  BailingHybrid, // Ling 3: KDA layers and every 6th an MLA layer
};

/// Whether the family's attention is multi-head latent attention.
inline bool usesMla(Family family) {
  return family == Family::DeepseekMla || family == Family::LongcatFlash ||
         family == Family::KimiLinear || family == Family::BailingHybrid;
}

/// The family of a `model_type`, or nullopt when we do not support it.
std::optional<Family> lookupFamily(llvm::StringRef modelType);
/// "llama, mistral, ..." for the unknown-model-type message.
std::string supportedModelTypes();
/// Why the kernels cannot compute the attention of `modelType`, a model
/// type transformers knows; nullopt for the others.
std::optional<llvm::StringRef> unsupportedReason(llvm::StringRef modelType);

/// The text config of one model and the fields every family needs.
struct HFContext {
  ObjectView cfg;
  Family family;
  std::string modelType; // of the text config's family, for messages
  int64_t numLayers = 0;
  int64_t hiddenSize = 0;
  int64_t maxPositionEmbeddings = 0; // 0: not stated
};

/// transformers' name of a layer kind in `layer_types`.
llvm::StringRef layerTypeName(LayerKind kind);

/// The kind of every layer: from `layer_types` when present (it wins over
/// every legacy field), else from the family's own fields and defaults.
llvm::Expected<std::vector<LayerKind>> resolveLayerKinds(const HFContext &ctx);

/// The layer count of families whose layer list is the only count
/// transformers reads (Nemotron-H: `num_hidden_layers` is derived), checked
/// against a stated `num_hidden_layers`; nullopt for the others.
llvm::Expected<std::optional<int64_t>> listedLayerCount(const HFContext &ctx);

/// Cohere 2 MoE's count of leading dense-MLP layers
/// (`first_k_dense_replace`, which its config class reads but never stores).
llvm::Expected<int64_t> cohere2MoeDensePrefix(const HFContext &ctx);

/// Llama 4 and SmolLM3: whether each layer applies RoPE (`no_rope_layers[i]`
/// is 1), with transformers' default from `no_rope_layer_interval` when the
/// list is absent.
llvm::Expected<std::vector<bool>> noRopeLayers(const HFContext &ctx);

/// Reads a per-layer list (null when absent), checking its length against
/// num_hidden_layers (Step 3.5: plus its MTP layers, whose entries follow
/// and are not read).
llvm::Expected<const json *> readLayerList(const HFContext &ctx,
                                           llvm::StringRef key);

/// Whether the config asks for a sliding window: transformers treats an
/// absent key as the class default and an explicit null as "no window".
bool windowConfigured(const HFContext &ctx);

/// transformers' default `sliding_window` of the family, when it has one.
std::optional<int64_t> defaultSlidingWindow(const HFContext &ctx);
/// transformers' default `head_dim`, when the configuration class declares one.
std::optional<int64_t> defaultHeadDim(const HFContext &ctx);
/// transformers' default `num_key_value_heads`, when it is not the query
/// head count.
std::optional<int64_t> defaultKVHeads(const HFContext &ctx);
/// transformers' default RoPE base for layers of `kind`, when it has one.
std::optional<double> defaultRopeTheta(const HFContext &ctx, LayerKind kind);
/// transformers' default `partial_rotary_factor`, when the family rotates
/// part of the head without one.
std::optional<double> defaultRotaryFraction(const HFContext &ctx);

/// Shape of a linear-attention layer (Qwen3-Next gated DeltaNet, MiniMax
/// lightning attention) and its state.
struct LinearLayerShape {
  int64_t numHeads = 0;   // value heads
  int64_t numKVHeads = 0; // key heads
  int64_t headDim = 0;    // key head dim
  int64_t vHeadDim = 0;
  double scale = 1.0;
  RecurrentState state;
};
llvm::Expected<LinearLayerShape> linearLayerShape(const HFContext &ctx);

/// Per-sequence state of the Mamba mixer of Mamba and hybrid layers.
llvm::Expected<RecurrentState> mambaState(const HFContext &ctx);

/// Per-sequence state of LFM2's short convolutions: their last
/// `conv_L_cache` inputs.
llvm::Expected<RecurrentState> shortConvState(const HFContext &ctx);

} // namespace hybrid::spec::detail

#endif // HYBRID_LIB_IMPORT_HFFAMILIES_H
