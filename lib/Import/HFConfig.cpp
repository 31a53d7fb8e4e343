//===- HFConfig.cpp - Hugging Face config.json importer -------------------===//
//
// Turns a Hugging Face config into a ModelSpec the way transformers would
// build the model: the layer schedule comes from HFFamilies.cpp, and this file
// adds what every attention layer needs (heads, mask, RoPE, score scale,
// soft-cap, sinks, temperature tuning, KV sharing) and the recurrent state of
// linear-attention and Mamba layers.
//
// Heterogeneous configs (transformers 5, `per_layer_config`: layer index ->
// fields that differ from the global ones) give a layer its own head counts
// and head dim; overrides of MLP fields change no attention and are ignored,
// and any other override is refused rather than read as the global value.
//
// RoPE conventions: transformers rotates Cohere 2, Llama 4, GLM and ERNIE 4.5
// heads in interleaved pairs (Positional::interleaved), the others in
// rotate-half pairs; the kernels rotate either way.
//
//===----------------------------------------------------------------------===//

#include "HFFamilies.h"
#include "JSONUtil.h"
#include "hybrid/Import/Importer.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <map>

using namespace hybrid::spec;
using namespace hybrid::spec::detail;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

/// The RoPE dictionaries transformers assumes when a config states none
/// (the __post_init__ of Gemma4TextConfig, GptOssConfig, CwmConfig,
/// MiMoV2FlashConfig, Ministral3Config and ApertusConfig).
static constexpr const char *kGemma4DefaultRope = R"({
  "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
  "full_attention": {"rope_type": "proportional",
                     "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}
})";
static constexpr const char *kGptOssDefaultRope = R"({
  "rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
  "truncate": false, "original_max_position_embeddings": 4096
})";

static constexpr const char *kMiMoV2FlashDefaultRope = R"({
  "full_attention": {"rope_type": "default", "rope_theta": 5000000.0,
                     "partial_rotary_factor": 0.334},
  "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0,
                        "partial_rotary_factor": 0.334}
})";
static constexpr const char *kMinistral3DefaultRope = R"({
  "rope_type": "yarn", "rope_theta": 1000000.0, "factor": 16.0,
  "original_max_position_embeddings": 16384, "beta_fast": 32.0,
  "beta_slow": 1.0, "mscale_all_dim": 1.0, "mscale": 1.0,
  "llama_4_scaling_beta": 0.1
})";
static constexpr const char *kCwmDefaultRope = R"({
  "rope_type": "llama3", "rope_theta": 1000000.0, "factor": 16.0,
  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
  "original_max_position_embeddings": 8192
})";
static constexpr const char *kApertusDefaultRope = R"({
  "rope_type": "llama3", "rope_theta": 12000000.0, "factor": 8.0,
  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
  "original_max_position_embeddings": 8192
})";

/// The family's RoPE dictionary of those, parsed once; null for the others.
static const json *getDefaultRope(Family family) {
  auto parsed = [](const char *text) {
    return json::parse(text, nullptr, false);
  };
  static const json gemma4 = parsed(kGemma4DefaultRope),
                    gptOss = parsed(kGptOssDefaultRope),
                    mimoV2Flash = parsed(kMiMoV2FlashDefaultRope),
                    ministral3 = parsed(kMinistral3DefaultRope),
                    cwm = parsed(kCwmDefaultRope),
                    apertus = parsed(kApertusDefaultRope);
  switch (family) {
  case Family::Gemma4:
    return &gemma4;
  case Family::GptOss:
    return &gptOss;
  case Family::MiMoV2Flash:
    return &mimoV2Flash;
  case Family::Ministral3:
    return &ministral3;
  case Family::Cwm:
    return &cwm;
  case Family::Apertus:
    return &apertus;
  default:
    return nullptr;
  }
}

/// New-style `rope_parameters` are keyed by layer type; old ones are flat.
static bool isKeyedByLayerType(const json &params) {
  for (LayerKind kind :
       {LayerKind::Full, LayerKind::Sliding, LayerKind::Chunked,
        LayerKind::Linear, LayerKind::Mamba, LayerKind::Hybrid})
    if (params.contains(layerTypeName(kind).str()))
      return true;
  return false;
}

/// Whether the family's attention rotates only the first
/// `head_dim * partial_rotary_factor` dims (`q[..., :rotary_dim]` in its
/// transformers model). The others apply cos and sin to the whole head:
/// transformers 5 ignores the factor there, 4 failed on the shapes.
/// MiniMax-Text-01 rotates 64 of its 128 dims (its original code's
/// rotary_dim, kept by the -hf config as 0.5), which transformers 5's
/// MiniMax no longer reads; we keep the checkpoint's rotation.
static bool rotatesPartOfHead(const HFContext &ctx) {
  switch (ctx.family) {
  case Family::Qwen3Next:
  case Family::Bamba:
  case Family::MiMoV2Flash:
  case Family::MiniMax:
  case Family::MiniMaxM2:
  case Family::Glm:
  case Family::Glm4Moe:
  case Family::Step3p5:
    return true;
  case Family::MistralLike:
    return ctx.modelType == "phi3";
  default:
    return false;
  }
}

/// Symbol-safe schedule name from the model type.
static std::string sanitizeName(StringRef modelType) {
  std::string name;
  for (char c : modelType)
    name += llvm::isAlnum(c) || c == '_' ? c : '_';
  if (name.empty() || llvm::isDigit(name.front()))
    name.insert(0, "m_");
  return name;
}

namespace {
/// Where the RoPE parameters of one layer type come from.
struct RopeSource {
  std::optional<ObjectView> params;
  /// Legacy `rope_scaling` dictionaries must name their type.
  bool typeRequired = false;
};

class HFImporter {
public:
  HFImporter(HFContext context, const ImportOptions &options)
      : ctx(std::move(context)), cfg(ctx.cfg), options(options) {}
  HFImporter(const HFImporter &) = delete;

  Expected<std::vector<LayerSpec>> buildLayers();
  int64_t maxPositionEmbeddings() const { return ctx.maxPositionEmbeddings; }

private:
  Error readAttentionShape();
  Expected<int64_t> readHeadDim();
  Error checkKVHeads(StringRef key, int64_t kvHeads,
                     std::optional<int64_t> heads = std::nullopt);
  Error readLayerOverrides();
  Error applyLayerOverrides(size_t index, LayerSpec &layer,
                            std::string &headDimKey);
  Error readFamilyFields();
  Expected<bool> isBidirectional();
  Expected<int64_t> slidingWindow();
  Expected<int64_t> chunkSize();
  Expected<RopeSource> ropeSource(LayerKind kind);
  Expected<Positional> rope(LayerKind kind, int64_t headDim,
                            StringRef headDimKey);
  Expected<Positional> positional(size_t index, LayerKind kind, int64_t headDim,
                                  StringRef headDimKey);
  /// The score scale of a layer of head dim `headDim` rotating by `pos`.
  Expected<double> scale(int64_t headDim, const Positional &pos);
  /// Step 3.5's `key`: one positive number, or a per-layer list whose entry
  /// at the first layer of `kind` counts (transformers builds a layer
  /// type's RoPE from it); `path` names the value read.
  Expected<std::optional<double>> valueForKind(StringRef key, LayerKind kind,
                                               std::string &path);
  Expected<std::optional<double>> softcap();
  Expected<LayerSpec> attentionLayer(size_t index, LayerKind kind);
  Error assignSharedCaches(std::vector<LayerSpec> &layers,
                           const std::vector<LayerKind> &kinds);

  HFContext ctx;
  const ObjectView &cfg;
  ImportOptions options;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  std::optional<int64_t> window;
  std::optional<int64_t> chunk;
  /// Per layer kind and head dim (partial rotary widths follow the dim).
  std::map<std::pair<LayerKind, int64_t>, Positional> ropeByKindAndDim;
  /// `per_layer_config`'s overrides by layer index, with the key that
  /// names them ("5", "05"); `heterogeneous`: the field is present (even
  /// empty).
  std::vector<std::optional<std::pair<std::string, ObjectView>>> layerOverrides;
  bool heterogeneous = false;
  // Gemma 4 global (full) layers.
  int64_t globalHeadDim = 0;
  int64_t globalKVHeads = 0;
  bool kEqV = false;
  /// Layers that rotate (Llama 4, SmolLM3; Cohere 2 MoE: its full layers).
  std::vector<bool> ropeLayers;
  // Llama 4, Ministral 3.
  std::optional<TemperatureTuning> temperature;
  // Granite SWA: per-layer RoPE bases, 0 for NoPE (empty: the config's).
  std::vector<double> layerThetas;
  // Step 3.5: its sliding layers' query heads (none: the others').
  std::optional<int64_t> slidingHeads;
  /// Every layer's kind (resolveLayerKinds()).
  std::vector<LayerKind> kinds;
  /// Whether the family's attention rotates at all: Zamba 2's
  /// use_mem_rope, Granite 4.0-H's position_embedding_type, OLMo Hybrid's
  /// rope_theta (null: NoPE).
  bool ropeEnabled = true;
  // Zamba 2.
  bool longContext = false;
  /// MLA (DeepSeek V2/V3): each head's queries and keys are
  /// `qk_nope_head_dim` dims without RoPE, then `qk_rope_head_dim` rotating
  /// ones; its values `v_head_dim`.
  struct MlaShape {
    int64_t nopeDim = 0, ropeDim = 0, valueDim = 0;
    int64_t latentDim = 0; // kv_lora_rank
    bool interleaved = true;
  };
  MlaShape mla;
  Error readMlaShape();
  Expected<double> mlaScale(int64_t dim, const Positional &pos);
};
} // namespace

Error HFImporter::checkKVHeads(StringRef key, int64_t kvHeads,
                               std::optional<int64_t> heads) {
  int64_t h = heads.value_or(numHeads);
  if (kvHeads > h || h % kvHeads != 0)
    return cfg.error(key, "must divide num_attention_heads (" + llvm::Twine(h) +
                              "), got " + llvm::Twine(kvHeads));
  return Error::success();
}

/// Fields a layer of a heterogeneous config may override without changing
/// its attention (feed-forward and MoE shapes, norms, projection biases).
static bool overrideChangesNoAttention(StringRef key) {
  return llvm::is_contained(
      {"intermediate_size", "moe_intermediate_size", "num_experts",
       "num_local_experts", "num_experts_per_tok", "top_k_experts",
       "enable_moe_block", "use_double_wide_mlp", "hidden_activation",
       "hidden_act", "mlp_bias", "attention_bias", "rms_norm_eps"},
      key);
}

Error HFImporter::readLayerOverrides() {
  layerOverrides.assign(ctx.numLayers, std::nullopt);
  HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> table,
                          cfg.optObject("per_layer_config"));
  if (!table)
    return Error::success();
  heterogeneous = true;
  for (const auto &[key, value] : table->raw().items()) {
    int64_t index = -1;
    if (llvm::StringRef(key).getAsInteger(10, index) || index < 0 ||
        index >= ctx.numLayers)
      return table->error(key, "must be a layer index below "
                               "num_hidden_layers (" +
                                   llvm::Twine(ctx.numLayers) + ")");
    HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> overrides,
                            table->optObject(key));
    if (!overrides)
      continue;
    for (const auto &[field, fieldValue] : overrides->raw().items()) {
      if (field == "head_dim" || field == "num_attention_heads" ||
          field == "num_key_value_heads" || overrideChangesNoAttention(field))
        continue;
      if (field == "skip") {
        // Sub-layers the layer leaves out: its attention must stay.
        if (fieldValue.is_array() &&
            llvm::none_of(fieldValue, [](const json &part) {
              return !part.is_string() ||
                     llvm::StringRef(part.get_ref<const std::string &>())
                         .contains("attn");
            }))
          continue;
        return overrides->error(field, "skips a layer's attention (or names "
                                       "no sub-layer): not supported");
      }
      return overrides->error(
          field, "a per-layer value of this field is not supported (a layer "
                 "may override head_dim, num_attention_heads and "
                 "num_key_value_heads, and its feed-forward fields)");
    }
    layerOverrides[index] = {key, *overrides};
  }
  return Error::success();
}

Error HFImporter::applyLayerOverrides(size_t index, LayerSpec &layer,
                                      std::string &headDimKey) {
  if (!layerOverrides[index])
    return Error::success();
  const auto &[name, fields] = *layerOverrides[index];
  const ObjectView *overrides = &fields;
  auto pathOf = [&, name = name](StringRef key) {
    return joinPath(joinPath("per_layer_config", name), key);
  };
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> heads,
                          overrides->optPositiveInt("num_attention_heads"));
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> kvHeads,
                          overrides->optPositiveInt("num_key_value_heads"));
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> dim,
                          overrides->optPositiveInt("head_dim"));
  if (heads && *heads > kMaxDim)
    return cfg.error(pathOf("num_attention_heads"),
                     "must be at most " + llvm::Twine(kMaxDim) + ", got " +
                         llvm::Twine(*heads));
  if (dim && *dim > kMaxDim)
    return cfg.error(pathOf("head_dim"), "must be at most " +
                                             llvm::Twine(kMaxDim) + ", got " +
                                             llvm::Twine(*dim));
  if (heads)
    layer.numHeads = *heads;
  if (kvHeads)
    layer.numKVHeads = *kvHeads;
  if (heads || kvHeads)
    HYBRID_RETURN_IF_ERROR(checkKVHeads(kvHeads ? pathOf("num_key_value_heads")
                                                : pathOf("num_attention_heads"),
                                        layer.numKVHeads, layer.numHeads));
  if (dim) {
    layer.headDim = layer.vHeadDim = *dim;
    headDimKey = pathOf("head_dim");
  }
  return Error::success();
}

Expected<int64_t> HFImporter::readHeadDim() {
  // MLA's heads are qk_nope_head_dim + qk_rope_head_dim wide; a hub
  // `head_dim` means something else (Sarvam's kv_lora_rank +
  // qk_rope_head_dim, for vLLM).
  if (usesMla(ctx.family)) {
    HYBRID_RETURN_IF_ERROR(readMlaShape());
    return mla.nopeDim + mla.ropeDim;
  }
  // Cohere 2 derives head_dim from hidden_size; Zamba 2's shared attention
  // reads the concatenation of two hidden states.
  int64_t total = ctx.hiddenSize;
  if (ctx.family == Family::Zamba2)
    total = 2 * ctx.hiddenSize;
  if (ctx.family != Family::Cohere2 && ctx.family != Family::Zamba2) {
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> stated,
                            cfg.optPositiveInt("head_dim"));
    if (!stated)
      stated = defaultHeadDim(ctx);
    if (stated)
      return *stated;
  }
  if (total % numHeads != 0)
    return cfg.error("hidden_size", "(" + llvm::Twine(ctx.hiddenSize) +
                                        ") does not give a whole head dim over "
                                        "num_attention_heads (" +
                                        llvm::Twine(numHeads) + ")");
  return total / numHeads;
}

Error HFImporter::readMlaShape() {
  auto dim = [&](StringRef key, int64_t fallback) -> Expected<int64_t> {
    HYBRID_ASSIGN_OR_RETURN(int64_t value, cfg.positiveIntOr(key, fallback));
    if (value > kMaxDim)
      return cfg.error(key, "must be at most " + llvm::Twine(kMaxDim) +
                                ", got " + llvm::Twine(value));
    return value;
  };
  HYBRID_ASSIGN_OR_RETURN(mla.nopeDim, dim("qk_nope_head_dim", 128));
  HYBRID_ASSIGN_OR_RETURN(mla.ropeDim, dim("qk_rope_head_dim", 64));
  HYBRID_ASSIGN_OR_RETURN(mla.valueDim, dim("v_head_dim", 128));
  HYBRID_ASSIGN_OR_RETURN(mla.latentDim, dim("kv_lora_rank", 512));
  if (mla.ropeDim % 2 != 0)
    return cfg.error("qk_rope_head_dim",
                     "must be even for rotary embeddings, got " +
                         llvm::Twine(mla.ropeDim));
  // LongCat-Flash builds its rotary table over head_dim (64 by default).
  if (ctx.family == Family::LongcatFlash) {
    HYBRID_ASSIGN_OR_RETURN(int64_t tableDim,
                            cfg.positiveIntOr("head_dim", 64));
    if (tableDim != mla.ropeDim)
      return cfg.error("head_dim", "must equal qk_rope_head_dim (" +
                                       llvm::Twine(mla.ropeDim) +
                                       ") for model_type 'longcat_flash', "
                                       "whose RoPE table it sizes, got " +
                                       llvm::Twine(tableDim));
  }
  // DeepSeek V2 multiplies adjacent pairs as complex numbers; V3 and its
  // descendants rotate them too (apply_rotary_pos_emb_interleave) unless
  // rope_interleave is false; LongCat-Flash and Ling 3 always do.
  if (ctx.family == Family::DeepseekMla && ctx.modelType != "deepseek_v2") {
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> interleave,
                            cfg.optBool("rope_interleave"));
    mla.interleaved = interleave.value_or(true);
  }
  return Error::success();
}

/// transformers' yarn_apply_mscale: `qk_head_dim^-0.5`, times
/// `get_mscale(factor, mscale_all_dim)^2` when the layer's RoPE is scaled
/// (`pos`) and its parameters state `mscale_all_dim`.
Expected<double> HFImporter::mlaScale(int64_t dim, const Positional &pos) {
  double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  if (!pos.scaling)
    return scale;
  HYBRID_ASSIGN_OR_RETURN(RopeSource source, ropeSource(LayerKind::Full));
  HYBRID_ASSIGN_OR_RETURN(std::optional<double> mscaleAllDim,
                          source.params->optNumber("mscale_all_dim"));
  if (mscaleAllDim.value_or(0) == 0)
    return scale;
  double m = yarnMscale(pos.scaling->factor, *mscaleAllDim);
  return scale * m * m;
}

Error HFImporter::readAttentionShape() {
  HYBRID_ASSIGN_OR_RETURN(numHeads, cfg.getPositiveInt("num_attention_heads"));
  // BambaConfig alone maps an explicit null to the query head count.
  std::optional<int64_t> kvDefault = defaultKVHeads(ctx);
  const json *kvStated = cfg.find("num_key_value_heads");
  if (ctx.family == Family::Bamba && kvStated && kvStated->is_null())
    kvDefault = std::nullopt;
  // Step 3.5's hub configs name them num_attention_groups.
  StringRef kvKey = "num_key_value_heads";
  if (ctx.family == Family::Step3p5 && !kvStated &&
      cfg.has("num_attention_groups"))
    kvKey = "num_attention_groups";
  HYBRID_ASSIGN_OR_RETURN(
      numKVHeads, cfg.positiveIntOr(kvKey, kvDefault.value_or(numHeads)));
  // MLA decompresses keys and values for every query head (transformers'
  // eager attention fails on any other count).
  if (usesMla(ctx.family) && numKVHeads != numHeads)
    return cfg.error(kvKey, "must equal num_attention_heads (" +
                                llvm::Twine(numHeads) + ") for model_type '" +
                                ctx.modelType +
                                "', whose latent attention gives every head "
                                "its keys and values, got " +
                                llvm::Twine(numKVHeads));
  HYBRID_ASSIGN_OR_RETURN(headDim, readHeadDim());
  if (numHeads > kMaxDim)
    return cfg.error("num_attention_heads",
                     "must be at most " + llvm::Twine(kMaxDim) + ", got " +
                         llvm::Twine(numHeads));
  if (headDim > kMaxDim)
    return cfg.error("head_dim", "must be at most " + llvm::Twine(kMaxDim) +
                                     ", got " + llvm::Twine(headDim));
  return checkKVHeads(kvKey, numKVHeads);
}

Error HFImporter::readFamilyFields() {
  switch (ctx.family) {
  case Family::Step3p5: {
    // Its sliding layers' query heads (num_sliding_attention_heads, in hub
    // configs attention_other_setting's).
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> bidir,
                            cfg.optBool("use_bidirectional_attention"));
    if (bidir.value_or(false))
      return cfg.error("use_bidirectional_attention",
                       "is not supported for step3p5 (its sliding layers "
                       "would see keys ahead)");
    std::string key = "num_sliding_attention_heads";
    HYBRID_ASSIGN_OR_RETURN(slidingHeads, cfg.optPositiveInt(key));
    if (!slidingHeads) {
      HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> other,
                              cfg.optObject("attention_other_setting"));
      if (other) {
        key = joinPath("attention_other_setting", "num_attention_heads");
        HYBRID_ASSIGN_OR_RETURN(slidingHeads,
                                other->optPositiveInt("num_attention_heads"));
      }
    }
    if (slidingHeads && *slidingHeads > kMaxDim)
      return cfg.error(key, "must be at most " + llvm::Twine(kMaxDim) +
                                ", got " + llvm::Twine(*slidingHeads));
    if (slidingHeads && *slidingHeads % numKVHeads != 0)
      return cfg.error(key, "must be a multiple of the KV heads (" +
                                llvm::Twine(numKVHeads) + "), got " +
                                llvm::Twine(*slidingHeads));
    return Error::success();
  }
  case Family::Gemma4: {
    // Global layers: transformers' default global_head_dim is 512; a null
    // one falls back to head_dim. K=V layers use the global KV head count.
    // A heterogeneous config (transformers 5) states them per layer
    // instead, and transformers ignores the global fields.
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> eq,
                            cfg.optBool("attention_k_eq_v"));
    kEqV = eq.value_or(false);
    if (heterogeneous) {
      globalHeadDim = headDim;
      globalKVHeads = numKVHeads;
      return Error::success();
    }
    const json *global = cfg.find("global_head_dim");
    globalHeadDim = 512;
    if (global && global->is_null())
      globalHeadDim = headDim;
    else if (global) {
      HYBRID_ASSIGN_OR_RETURN(globalHeadDim,
                              cfg.getPositiveInt("global_head_dim"));
    }
    if (globalHeadDim > kMaxDim)
      return cfg.error("global_head_dim",
                       "must be at most " + llvm::Twine(kMaxDim));
    globalKVHeads = numKVHeads;
    if (kEqV) {
      HYBRID_ASSIGN_OR_RETURN(
          globalKVHeads,
          cfg.positiveIntOr("num_global_key_value_heads", numKVHeads));
      HYBRID_RETURN_IF_ERROR(
          checkKVHeads("num_global_key_value_heads", globalKVHeads));
    }
    return Error::success();
  }
  case Family::SmolLM3: {
    HYBRID_ASSIGN_OR_RETURN(ropeLayers, noRopeLayers(ctx));
    return Error::success();
  }
  case Family::Ministral3: {
    // Every query times 1 + beta ln(1 + floor(p / original_max)), both from
    // the RoPE parameters (transformers fails without them); beta 0: none.
    HYBRID_ASSIGN_OR_RETURN(RopeSource source, ropeSource(LayerKind::Full));
    if (!source.params)
      return cfg.missing("rope_parameters");
    const ObjectView &params = *source.params;
    HYBRID_ASSIGN_OR_RETURN(std::optional<double> beta,
                            params.optNumber("llama_4_scaling_beta"));
    if (!beta)
      return params.missing("llama_4_scaling_beta");
    HYBRID_ASSIGN_OR_RETURN(
        std::optional<double> original,
        params.optPositiveNumber("original_max_position_embeddings"));
    if (!original)
      return params.missing("original_max_position_embeddings");
    if (*beta < 0)
      return params.error("llama_4_scaling_beta",
                          "must not be negative, got " +
                              describe(*params.find("llama_4_scaling_beta")));
    if (*beta > 0)
      temperature = TemperatureTuning{*original, *beta, /*offset=*/0};
    return Error::success();
  }
  case Family::GraniteSwa: {
    HYBRID_ASSIGN_OR_RETURN(const json *thetas,
                            readLayerList(ctx, "layer_rope_theta"));
    for (size_t i = 0; thetas && i < thetas->size(); ++i) {
      std::string path = indexPath(cfg.fieldPath("layer_rope_theta"), i);
      HYBRID_ASSIGN_OR_RETURN(double theta,
                              toNumber((*thetas)[i], cfg.file(), path));
      if (!(theta >= 0) || !std::isfinite(theta))
        return fieldError(cfg.file(), path,
                          "must be a RoPE base, or 0 for NoPE, got " +
                              describe((*thetas)[i]));
      layerThetas.push_back(theta);
    }
    return Error::success();
  }
  case Family::Llama4: {
    HYBRID_ASSIGN_OR_RETURN(ropeLayers, noRopeLayers(ctx));
    // attn_temperature_tuning is truthy in Python terms: a bool or a number.
    bool tuning = true;
    if (const json *flag = cfg.find("attn_temperature_tuning")) {
      if (flag->is_boolean())
        tuning = flag->get<bool>();
      else if (flag->is_number())
        tuning = flag->get<double>() != 0.0;
      else if (flag->is_null())
        tuning = false;
      else
        return cfg.error("attn_temperature_tuning",
                         "must be a boolean or a number, got " +
                             describe(*flag));
    }
    if (tuning) {
      TemperatureTuning t;
      HYBRID_ASSIGN_OR_RETURN(t.floorScale,
                              cfg.positiveNumberOr("floor_scale", 8192.0));
      HYBRID_ASSIGN_OR_RETURN(std::optional<double> attnScale,
                              cfg.optNumber("attn_scale"));
      t.attnScale = attnScale.value_or(0.1);
      temperature = t;
    }
    return Error::success();
  }
  case Family::Zamba2: {
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> useRope,
                            cfg.optBool("use_mem_rope"));
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> longCtx,
                            cfg.optBool("use_long_context"));
    ropeEnabled = useRope.value_or(false);
    longContext = longCtx.value_or(false);
    // Zamba2Config pins the context of its long-context variant.
    if (longContext)
      ctx.maxPositionEmbeddings = 16384;
    return Error::success();
  }
  case Family::Cohere2Moe: {
    // Full layers are NoPE but for the dense-MLP ones while the prefix
    // pattern is 1 (force_rope in Cohere2MoeAttention).
    HYBRID_ASSIGN_OR_RETURN(
        int64_t prefix,
        cfg.positiveIntOr("prefix_dense_sliding_window_pattern", 1));
    HYBRID_ASSIGN_OR_RETURN(int64_t dense, cohere2MoeDensePrefix(ctx));
    HYBRID_ASSIGN_OR_RETURN(const json *mlps,
                            readLayerList(ctx, "mlp_layer_types"));
    ropeLayers.assign(ctx.numLayers, false);
    for (int64_t i = 0; i < ctx.numLayers; ++i) {
      bool isDense = i < dense;
      if (mlps) {
        std::string path = indexPath(cfg.fieldPath("mlp_layer_types"), i);
        HYBRID_ASSIGN_OR_RETURN(std::string type,
                                toString((*mlps)[i], cfg.file(), path));
        if (type != "dense" && type != "sparse")
          return fieldError(cfg.file(), path,
                            "must be 'dense' or 'sparse', got " +
                                describe((*mlps)[i]));
        isDense = type == "dense";
      }
      ropeLayers[i] = isDense && prefix == 1;
    }
    return Error::success();
  }
  case Family::GraniteMoeHybrid: {
    // Exactly "rope" rotates; anything else (null by default) is NoPE.
    HYBRID_ASSIGN_OR_RETURN(std::optional<std::string> type,
                            cfg.optString("position_embedding_type"));
    ropeEnabled = type == "rope";
    return Error::success();
  }
  case Family::OlmoHybrid: {
    // A null rope_theta (its released checkpoints) turns RoPE off; an
    // absent one is transformers' default base.
    const json *theta = cfg.find("rope_theta");
    HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> params,
                            cfg.optObject("rope_parameters"));
    if (params && params->find("rope_theta"))
      theta = params->find("rope_theta");
    ropeEnabled = !(theta && theta->is_null());
    return Error::success();
  }
  default:
    return Error::success();
  }
}

Expected<bool> HFImporter::isBidirectional() {
  // Encoder variants (EmbeddingGemma, Gemma 4 "all") attend both ways.
  if (ctx.family == Family::Gemma3) {
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> bidir,
                            cfg.optBool("use_bidirectional_attention"));
    return bidir.value_or(false);
  }
  if (ctx.family == Family::Gemma4) {
    HYBRID_ASSIGN_OR_RETURN(std::optional<std::string> mode,
                            cfg.optString("use_bidirectional_attention"));
    if (!mode || *mode == "vision") // Vision tokens only; text stays causal.
      return false;
    if (*mode == "all")
      return true;
    return cfg.error("use_bidirectional_attention",
                     "must be 'all', 'vision' or null, got " +
                         describe(*cfg.find("use_bidirectional_attention")));
  }
  return false;
}

Expected<int64_t> HFImporter::slidingWindow() {
  if (window)
    return *window;
  int64_t w = 0;
  const json *stated = cfg.find("sliding_window_size");
  if (ctx.family == Family::MiMoV2Flash && stated && !stated->is_null()) {
    // MiMoV2FlashConfig: the size counts the keys before the query.
    HYBRID_ASSIGN_OR_RETURN(w, cfg.getPositiveInt("sliding_window_size"));
    w += 1;
  } else if (!cfg.find("sliding_window")) {
    std::optional<int64_t> fallback = defaultSlidingWindow(ctx);
    if (!fallback)
      return cfg.missing("sliding_window");
    w = *fallback;
  } else {
    HYBRID_ASSIGN_OR_RETURN(w, cfg.getPositiveInt("sliding_window"));
  }
  HYBRID_ASSIGN_OR_RETURN(bool bidirectional, isBidirectional());
  // transformers stores the half width used by its |q - k| < w mask.
  if (bidirectional)
    w = w / 2 + 1;
  window = w;
  return w;
}

Expected<int64_t> HFImporter::chunkSize() {
  if (chunk)
    return *chunk;
  if (!cfg.find("attention_chunk_size") && ctx.family == Family::Llama4)
    chunk = 8192; // Llama4TextConfig's default.
  else {
    HYBRID_ASSIGN_OR_RETURN(chunk, cfg.getPositiveInt("attention_chunk_size"));
  }
  return *chunk;
}

Expected<RopeSource> HFImporter::ropeSource(LayerKind kind) {
  RopeSource source;
  std::string typeKey = layerTypeName(kind).str();
  if (cfg.has("rope_parameters")) {
    HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> params,
                            cfg.optObject("rope_parameters"));
    if (!isKeyedByLayerType(params->raw())) {
      source.params = params;
      return source;
    }
    if (!params->has(typeKey))
      return params->missing(typeKey);
    HYBRID_ASSIGN_OR_RETURN(source.params, params->optObject(typeKey));
    return source;
  }
  if (ctx.family == Family::Gemma4 || ctx.family == Family::MiMoV2Flash) {
    // Keyed by layer type; MiMo-V2-Flash's config reads no top-level RoPE
    // field (its hub configs' rope_theta and partial_rotary_factor).
    const json &defaults = *getDefaultRope(ctx.family);
    auto it = defaults.find(typeKey);
    if (it != defaults.end())
      source.params = ObjectView(
          *it, cfg.file(), joinPath(cfg.fieldPath("rope_parameters"), typeKey));
    return source;
  }
  // Cohere 2 MoE's config reads rope_theta alone (its rope_scaling is a
  // field of its own that nothing uses).
  if (ctx.family == Family::Cohere2Moe)
    return source;
  const json *scaling = cfg.find("rope_scaling");
  // Gemma 3, 3n, Olmo 3 and Step 3.5 scale only their global layers' RoPE.
  bool localLayer =
      (ctx.family == Family::Gemma3 || ctx.family == Family::Gemma3n ||
       ctx.family == Family::Olmo3 || ctx.family == Family::Step3p5) &&
      kind == LayerKind::Sliding;
  if (scaling && !scaling->is_null() && !localLayer) {
    HYBRID_ASSIGN_OR_RETURN(source.params, cfg.optObject("rope_scaling"));
    source.typeRequired = true;
  } else if (!scaling && ctx.family == Family::GptOss) {
    source.params = ObjectView(*getDefaultRope(ctx.family), cfg.file(),
                               cfg.fieldPath("rope_scaling"));
  } else if ((!scaling || scaling->is_null()) &&
             (ctx.family == Family::Cwm || ctx.family == Family::Ministral3 ||
              ctx.family == Family::Apertus)) {
    // Its theta too: a top-level rope_theta does not replace it (nor does a
    // null rope_scaling: `rope_scaling or rope_parameters`).
    source.params = ObjectView(*getDefaultRope(ctx.family), cfg.file(),
                               cfg.fieldPath("rope_parameters"));
  }
  return source;
}

Expected<std::optional<double>>
HFImporter::valueForKind(StringRef key, LayerKind kind, std::string &path) {
  path = cfg.fieldPath(key);
  const json *value = cfg.find(key);
  if (!value || !value->is_array())
    return cfg.optPositiveNumber(key);
  HYBRID_ASSIGN_OR_RETURN(const json *list, readLayerList(ctx, key));
  size_t first = llvm::find(kinds, kind) - kinds.begin();
  assert(first < kinds.size() && "a layer of the kind asks");
  path = indexPath(cfg.fieldPath(key), first);
  HYBRID_ASSIGN_OR_RETURN(double number,
                          toNumber((*list)[first], cfg.file(), path));
  if (!(number > 0) || !std::isfinite(number))
    return fieldError(cfg.file(), path,
                      "must be a positive number, got " +
                          describe((*list)[first]));
  return number;
}

Expected<Positional> HFImporter::rope(LayerKind kind, int64_t dim,
                                      StringRef headDimKey) {
  auto cached = ropeByKindAndDim.find({kind, dim});
  if (cached != ropeByKindAndDim.end())
    return cached->second;
  HYBRID_ASSIGN_OR_RETURN(RopeSource source, ropeSource(kind));
  const std::optional<ObjectView> &params = source.params;

  std::string ropeType = "default";
  std::string typePath;
  if (params) {
    // Older configs name the type "type".
    StringRef key = params->find("rope_type") ? "rope_type" : "type";
    HYBRID_ASSIGN_OR_RETURN(std::optional<std::string> stated,
                            params->optString(key));
    if (!stated && source.typeRequired)
      return params->missing("rope_type");
    if (stated)
      ropeType = *stated;
    typePath = params->fieldPath(key);
    // SarvamMLAConfig renames its checkpoints' scaling.
    if (ctx.modelType == "sarvam_mla" && ropeType == "deepseek_yarn")
      ropeType = "yarn";
  }

  std::optional<double> theta;
  if (params) {
    HYBRID_ASSIGN_OR_RETURN(theta, params->optPositiveNumber("rope_theta"));
  }
  std::string listPath;
  if (!theta && ctx.family == Family::Step3p5) {
    HYBRID_ASSIGN_OR_RETURN(theta, valueForKind("rope_theta", kind, listPath));
  }
  // Olmo3Config gives a top-level rope_theta to its full layers only.
  bool olmo3Local = ctx.family == Family::Olmo3 && kind == LayerKind::Sliding;
  if (!theta && !olmo3Local) {
    bool local =
        (ctx.family == Family::Gemma3 || ctx.family == Family::Gemma3n) &&
        kind == LayerKind::Sliding;
    HYBRID_ASSIGN_OR_RETURN(
        theta,
        cfg.optPositiveNumber(local ? "rope_local_base_freq" : "rope_theta"));
  }
  if (!theta)
    theta = defaultRopeTheta(ctx, kind);
  if (!theta)
    return cfg.missing("rope_theta");

  std::optional<double> fraction;
  std::string fractionPath = cfg.fieldPath("partial_rotary_factor");
  if (params) {
    HYBRID_ASSIGN_OR_RETURN(fraction,
                            params->optPositiveNumber("partial_rotary_factor"));
    if (fraction)
      fractionPath = params->fieldPath("partial_rotary_factor");
  }
  if (!fraction && ctx.family == Family::Step3p5) {
    HYBRID_ASSIGN_OR_RETURN(
        fraction, valueForKind("partial_rotary_factors", kind, listPath));
    if (fraction)
      fractionPath = listPath;
  }
  // BambaConfig overwrites a top-level factor with 0.5; one inside
  // rope_parameters wins.
  if (!fraction && ctx.family == Family::Bamba)
    fraction = 0.5;
  if (!fraction) {
    HYBRID_ASSIGN_OR_RETURN(fraction,
                            cfg.optPositiveNumber("partial_rotary_factor"));
  }
  if (!fraction)
    fraction = defaultRotaryFraction(ctx);
  if (!fraction && ctx.family == Family::MiniMaxM2) {
    // Its checkpoints state the rotating dims as `rotary_dim` instead.
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> rotaryDim,
                            cfg.optPositiveInt("rotary_dim"));
    if (rotaryDim && *rotaryDim > dim)
      return cfg.error("rotary_dim", "must be at most the head dim (" +
                                         llvm::Twine(dim) + "), got " +
                                         llvm::Twine(*rotaryDim));
    if (rotaryDim) {
      fraction = static_cast<double>(*rotaryDim) / static_cast<double>(dim);
      fractionPath = cfg.fieldPath("rotary_dim");
    }
  }
  double f = fraction.value_or(1.0);
  if (f > 1.0)
    return fieldError(cfg.file(), fractionPath,
                      "must be at most 1, got " + describe(json(f)));
  if (f < 1.0 && ropeType != "proportional" && !rotatesPartOfHead(ctx))
    return fieldError(cfg.file(), fractionPath,
                      "must be 1 for model_type '" + ctx.modelType +
                          "', whose attention rotates the whole head "
                          "(transformers ignores the field), got " +
                          describe(json(f)));
  if (dim % 2 != 0)
    return cfg.error(headDimKey, "must be even for rotary embeddings, got " +
                                     llvm::Twine(dim));

  Positional pos;
  pos.theta = *theta;
  if (ropeType == "proportional") {
    // Gemma 4 p-RoPE: frequencies over the full head dim, the tail pairs
    // left unrotated; `factor` divides every frequency like linear scaling.
    pos.kind = PositionalKind::Proportional;
    pos.fraction = f;
    HYBRID_ASSIGN_OR_RETURN(std::optional<double> factor,
                            params->optPositiveNumber("factor"));
    if (factor && *factor != 1.0) {
      RopeScaling linear;
      linear.factor = *factor;
      pos.scaling = linear;
    }
  } else {
    pos.kind = PositionalKind::Rope;
    if (f < 1.0) {
      auto rotary = static_cast<int64_t>(static_cast<double>(dim) * f);
      HYBRID_RETURN_IF_ERROR(
          checkRotaryDim(cfg.file(), fractionPath, rotary, dim));
      pos.kind = PositionalKind::Partial;
      pos.rotaryDim = rotary;
    }
    std::optional<RopeScalingKind> scalingKind;
    if (ropeType == "linear")
      scalingKind = RopeScalingKind::Linear;
    else if (ropeType == "llama3")
      scalingKind = RopeScalingKind::Llama3;
    else if (ropeType == "yarn")
      scalingKind = RopeScalingKind::Yarn;
    else if (ropeType != "default")
      // dynamic, longrope, ...: we refuse what the kernels cannot honour.
      return fieldError(cfg.file(), typePath,
                        "unsupported rope type " + describe(json(ropeType)) +
                            " (supported: default, linear, llama3, yarn, "
                            "proportional)");
    if (scalingKind) {
      HYBRID_ASSIGN_OR_RETURN(
          pos.scaling,
          readRopeScaling(*params, *scalingKind, ctx.maxPositionEmbeddings));
    }
  }
  // Cohere 2, GLM and ERNIE 4.5 rotate adjacent dims (their rotate_half takes
  // x[..., ::2] and x[..., 1::2]; GLM's within the rotating part); Llama 4
  // multiplies adjacent pairs as complex numbers.
  pos.interleaved = ctx.family == Family::Cohere2 ||
                    ctx.family == Family::Cohere2Moe ||
                    ctx.family == Family::Llama4 || ctx.family == Family::Glm ||
                    ctx.family == Family::Ernie45;
  ropeByKindAndDim[{kind, dim}] = pos;
  return pos;
}

Expected<Positional> HFImporter::positional(size_t index, LayerKind kind,
                                            int64_t dim, StringRef headDimKey) {
  bool usesRope = true;
  switch (ctx.family) {
  case Family::Jamba: // Their attention has no positional encoding.
  case Family::NemotronH:
  case Family::KimiLinear:
    usesRope = false;
    break;
  case Family::Cohere2: // Global layers are NoPE.
  case Family::Afmoe:
    usesRope = kind == LayerKind::Sliding;
    break;
  case Family::Cohere2Moe:
    usesRope = kind == LayerKind::Sliding || ropeLayers[index];
    break;
  case Family::Exaone4: // Global layers are NoPE in hybrid models.
    usesRope = kind == LayerKind::Sliding || !windowConfigured(ctx);
    break;
  case Family::Llama4:
  case Family::SmolLM3:
    usesRope = ropeLayers[index];
    break;
  case Family::Zamba2:
  case Family::GraniteMoeHybrid:
  case Family::OlmoHybrid:
    usesRope = ropeEnabled;
    break;
  case Family::GraniteSwa:
    usesRope = layerThetas.empty() || layerThetas[index] != 0;
    break;
  default:
    break;
  }
  if (!usesRope)
    return Positional();
  if (usesMla(ctx.family)) {
    // Frequencies over the rotating dims alone (transformers sets head_dim
    // to qk_rope_head_dim), which follow the others in each head.
    HYBRID_ASSIGN_OR_RETURN(Positional pos,
                            rope(kind, mla.ropeDim, "qk_rope_head_dim"));
    pos.interleaved = mla.interleaved;
    if (mla.ropeDim < dim) {
      pos.kind = PositionalKind::Partial;
      pos.rotaryDim = mla.ropeDim;
      pos.rotaryOffset = mla.nopeDim;
    }
    return pos;
  }
  HYBRID_ASSIGN_OR_RETURN(Positional pos, rope(kind, dim, headDimKey));
  // One rotary table per distinct base, each with the config's scaling.
  if (!layerThetas.empty())
    pos.theta = layerThetas[index];
  if (ctx.family == Family::Zamba2 && longContext) {
    // Zamba2Config's NTK-style base stretch for the long-context variant.
    if (dim <= 2)
      return cfg.error("use_long_context",
                       "needs an attention head dim above 2");
    pos.theta *= std::pow(8.0, static_cast<double>(dim) / (dim - 2));
  }
  return pos;
}

Expected<double> HFImporter::scale(int64_t dim, const Positional &pos) {
  switch (ctx.family) {
  case Family::Gemma2:
  case Family::Gemma3: {
    HYBRID_ASSIGN_OR_RETURN(double scalar,
                            cfg.positiveNumberOr("query_pre_attn_scalar", 256));
    return 1.0 / std::sqrt(scalar);
  }
  case Family::Gemma3n:
  case Family::Gemma4: // q/k are RMS-normalised instead.
    return 1.0;
  case Family::Zamba2: // Scaled as if the concatenated input were one.
    return 1.0 / std::sqrt(static_cast<double>(dim) / 2.0);
  case Family::GraniteSwa:
  case Family::GraniteMoeHybrid:
  case Family::Granite:
    return cfg.positiveNumberOr("attention_multiplier", 1.0);
  case Family::Step3p5: {
    HYBRID_ASSIGN_OR_RETURN(double scalar,
                            cfg.positiveNumberOr("query_pre_attn_scalar",
                                                 static_cast<double>(dim)));
    return 1.0 / std::sqrt(scalar);
  }
  case Family::DeepseekMla:
  case Family::LongcatFlash:
  case Family::BailingHybrid:
    return mlaScale(dim, pos);
  default:
    return 1.0 / std::sqrt(static_cast<double>(dim));
  }
}

Expected<std::optional<double>> HFImporter::softcap() {
  if (ctx.family == Family::Gemma2 && !cfg.find("attn_logit_softcapping"))
    return 50.0; // Gemma2Config's default; null turns it off.
  if (ctx.family == Family::Gemma2 || ctx.family == Family::Gemma3)
    return cfg.optPositiveNumber("attn_logit_softcapping");
  return std::nullopt;
}

Expected<LayerSpec> HFImporter::attentionLayer(size_t index, LayerKind kind) {
  LayerSpec layer;
  layer.kind = kind;
  layer.numHeads = numHeads;
  layer.numKVHeads = numKVHeads;
  std::string headDimKey = "head_dim";
  layer.headDim = headDim;
  if (ctx.family == Family::Gemma4 && kind == LayerKind::Full) {
    layer.headDim = globalHeadDim;
    if (!heterogeneous)
      headDimKey = "global_head_dim";
    layer.kEqV = kEqV;
    layer.numKVHeads = globalKVHeads;
  }
  layer.vHeadDim = layer.headDim;
  if (usesMla(ctx.family))
    layer.vHeadDim = mla.valueDim;
  if (ctx.family == Family::MiMoV2Flash) {
    // Values of their own head dim; sliding layers have twice the KV heads
    // (MiMoV2FlashAttention).
    HYBRID_ASSIGN_OR_RETURN(layer.vHeadDim,
                            cfg.positiveIntOr("v_head_dim", 128));
    if (kind == LayerKind::Sliding) {
      layer.numKVHeads = 2 * numKVHeads;
      HYBRID_RETURN_IF_ERROR(
          checkKVHeads("num_key_value_heads", layer.numKVHeads));
    }
  }
  if (kind == LayerKind::Sliding && slidingHeads)
    layer.numHeads = *slidingHeads;
  HYBRID_RETURN_IF_ERROR(applyLayerOverrides(index, layer, headDimKey));
  int64_t dim = layer.headDim;

  HYBRID_ASSIGN_OR_RETURN(bool bidirectional, isBidirectional());
  layer.mask.causal = !bidirectional;
  if (kind == LayerKind::Sliding) {
    layer.mask.kind = MaskKind::SlidingWindow;
    HYBRID_ASSIGN_OR_RETURN(layer.mask.window, slidingWindow());
  } else if (kind == LayerKind::Chunked) {
    layer.mask.kind = MaskKind::Chunked;
    HYBRID_ASSIGN_OR_RETURN(layer.mask.chunk, chunkSize());
  }

  HYBRID_ASSIGN_OR_RETURN(layer.positional,
                          positional(index, kind, dim, headDimKey));
  HYBRID_ASSIGN_OR_RETURN(layer.scale, scale(dim, layer.positional));
  HYBRID_ASSIGN_OR_RETURN(layer.softcap, softcap());
  if (options.latentMla && usesMla(ctx.family)) {
    // Absorbed: each query's no-RoPE part times W_UK attends to the latent
    // c_KV, its rotating part to the shared k_rot after it; the values are
    // the latent (W_UV applies to the output). The scale stays
    // qk_head_dim's.
    layer.numKVHeads = 1;
    layer.headDim = mla.latentDim + mla.ropeDim;
    layer.vHeadDim = mla.latentDim;
    layer.latent = true;
    if (layer.positional.kind != PositionalKind::None) {
      layer.positional.kind = PositionalKind::Partial;
      layer.positional.rotaryDim = mla.ropeDim;
      layer.positional.rotaryOffset = mla.latentDim;
    }
  }
  layer.sinks =
      ctx.family == Family::GptOss || ctx.family == Family::GraniteSwa ||
      (ctx.family == Family::MiMoV2Flash && kind == LayerKind::Sliding);
  if ((ctx.family == Family::Llama4 && !ropeLayers[index]) ||
      ctx.family == Family::Ministral3)
    layer.temperature = temperature;
  return layer;
}

Error HFImporter::assignSharedCaches(std::vector<LayerSpec> &layers,
                                     const std::vector<LayerKind> &kinds) {
  if (ctx.family != Family::Gemma3n && ctx.family != Family::Gemma4)
    return Error::success();
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> stated,
                          cfg.optNonNegativeInt("num_kv_shared_layers"));
  // Gemma3nTextConfig defaults to 15 shared layers, Gemma 4 to none.
  int64_t count = stated.value_or(ctx.family == Family::Gemma3n ? 15 : 0);
  if (count == 0)
    return Error::success();
  int64_t n = ctx.numLayers;
  if (count >= n)
    return cfg.error("num_kv_shared_layers",
                     "must be smaller than num_hidden_layers (" +
                         llvm::Twine(n) + "), got " + llvm::Twine(count));
  // A shared layer reads the last non-shared layer of its own type
  // (kv_shared_layer_index in modeling_gemma3n.py / modeling_gemma4.py).
  int64_t first = n - count;
  for (int64_t i = first; i < n; ++i) {
    int64_t source = first - 1;
    while (source >= 0 && kinds[source] != kinds[i])
      --source;
    if (source < 0)
      return cfg.error("num_kv_shared_layers",
                       "makes layer " + llvm::Twine(i) + " (" +
                           layerTypeName(kinds[i]) +
                           ") share the cache of an earlier layer of its "
                           "type, but none precedes layer " +
                           llvm::Twine(first));
    layers[i].sharedSource = source;
  }
  return Error::success();
}

Expected<std::vector<LayerSpec>> HFImporter::buildLayers() {
  HYBRID_RETURN_IF_ERROR(readAttentionShape());
  HYBRID_RETURN_IF_ERROR(readLayerOverrides());
  HYBRID_RETURN_IF_ERROR(readFamilyFields());
  HYBRID_ASSIGN_OR_RETURN(kinds, resolveLayerKinds(ctx));

  std::optional<LinearLayerShape> linear;
  std::optional<RecurrentState> mamba;
  std::vector<LayerSpec> layers;
  layers.reserve(kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    LayerKind kind = kinds[i];
    LayerSpec layer;
    if (kind == LayerKind::Linear) {
      if (!linear) {
        HYBRID_ASSIGN_OR_RETURN(linear, linearLayerShape(ctx));
      }
      layer.kind = kind;
      layer.numHeads = linear->numHeads;
      layer.numKVHeads = linear->numKVHeads;
      layer.headDim = linear->headDim;
      layer.vHeadDim = linear->vHeadDim;
      layer.scale = linear->scale;
      layer.state = linear->state;
    } else if (kind == LayerKind::Mamba || kind == LayerKind::Mlp) {
      layer.kind = kind;
    } else if (kind == LayerKind::Conv) {
      layer.kind = kind;
      HYBRID_ASSIGN_OR_RETURN(layer.state, shortConvState(ctx));
    } else {
      HYBRID_ASSIGN_OR_RETURN(layer, attentionLayer(i, kind));
    }
    if (kind == LayerKind::Mamba || kind == LayerKind::Hybrid) {
      if (!mamba) {
        HYBRID_ASSIGN_OR_RETURN(mamba, mambaState(ctx));
      }
      layer.state = mamba;
    }
    layers.push_back(std::move(layer));
  }
  HYBRID_RETURN_IF_ERROR(assignSharedCaches(layers, kinds));
  return layers;
}

Expected<ModelSpec> hybrid::spec::importHFConfig(const json &config,
                                                 StringRef fileName,
                                                 const ImportOptions &options) {
  if (!config.is_object())
    return makeError(fileName +
                     ": top-level value must be a JSON object, got " +
                     describe(config));
  ObjectView root(config, fileName, "");
  HYBRID_ASSIGN_OR_RETURN(std::string modelType, root.getString("model_type"));

  // Multimodal configs describe their language model in text_config, whose
  // own model_type (when it names a family) picks the rules.
  std::optional<Family> family = lookupFamily(modelType);
  std::string familyType = modelType;
  HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> textConfig,
                          root.optObject("text_config"));
  ObjectView cfg = textConfig ? *textConfig : root;
  std::optional<std::string> textType;
  if (textConfig) {
    HYBRID_ASSIGN_OR_RETURN(textType, textConfig->optString("model_type"));
    if (textType && lookupFamily(*textType)) {
      family = lookupFamily(*textType);
      familyType = *textType;
    }
  }
  // Families whose attention the kernels cannot compute, named as such
  // (their language model's type first).
  std::string refused = textType.value_or("");
  if (!unsupportedReason(refused) && !family)
    refused = modelType;
  if (std::optional<StringRef> reason = unsupportedReason(refused)) {
    ObjectView at = refused == modelType ? root : cfg;
    return at.error("model_type", "model type " + describe(json(refused)) +
                                      " is not supported: " + *reason);
  }
  if (!family)
    return root.error("model_type",
                      "unknown model type " + describe(json(modelType)) +
                          " (supported: " + supportedModelTypes() + ")");

  HFContext ctx{cfg, *family, familyType};
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> listed, listedLayerCount(ctx));
  if (listed) {
    ctx.numLayers = *listed;
  } else {
    HYBRID_ASSIGN_OR_RETURN(ctx.numLayers,
                            cfg.getPositiveInt("num_hidden_layers"));
  }
  if (ctx.numLayers > kMaxLayers)
    return cfg.error("num_hidden_layers",
                     "must be at most " + llvm::Twine(kMaxLayers) + ", got " +
                         llvm::Twine(ctx.numLayers));
  HYBRID_ASSIGN_OR_RETURN(ctx.hiddenSize, cfg.getPositiveInt("hidden_size"));
  // Without it the caller must be given the context length (--max-seq).
  // Kimi Linear and Ling 3 store it as model_max_length (attribute_map).
  StringRef maxPosKey = "max_position_embeddings";
  if ((*family == Family::KimiLinear || *family == Family::BailingHybrid) &&
      cfg.has("model_max_length"))
    maxPosKey = "model_max_length";
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> maxPos,
                          cfg.optPositiveInt(maxPosKey));
  ctx.maxPositionEmbeddings = maxPos.value_or(0);

  int64_t hiddenSize = ctx.hiddenSize;
  HFImporter importer(std::move(ctx), options);
  HYBRID_ASSIGN_OR_RETURN(std::vector<LayerSpec> layers,
                          importer.buildLayers());

  ModelSpec spec;
  spec.modelType = modelType;
  spec.name = sanitizeName(modelType);
  spec.hiddenSize = hiddenSize;
  spec.maxPositionEmbeddings = importer.maxPositionEmbeddings();
  spec.layers = std::move(layers);
  return spec;
}

Expected<ModelSpec> hybrid::spec::importModel(StringRef jsonText,
                                              StringRef fileName,
                                              const ImportOptions &options) {
  HYBRID_ASSIGN_OR_RETURN(json document, parseJSON(jsonText, fileName));
  if (document.is_object() && document.contains("format")) {
    ObjectView root(document, fileName, "");
    HYBRID_ASSIGN_OR_RETURN(std::string format, root.getString("format"));
    if (format != "hybrid-schedule")
      return root.error("format", "unknown format " + describe(json(format)) +
                                      " (expected 'hybrid-schedule')");
    return importScheduleSpec(document, fileName);
  }
  return importHFConfig(document, fileName, options);
}
