//===- HFFamilies.cpp - Per-family rules of Hugging Face configs ----------===//
//
// Each rule below mirrors the configuration class of the family in
// transformers (src/transformers/models/<family>/configuration_<family>.py):
// the `layer_types` it derives in __post_init__ and the defaults it declares.
//
//===----------------------------------------------------------------------===//

#include "HFFamilies.h"

#include "llvm/ADT/STLExtras.h"

#include <cmath>
#include <limits>

using namespace hybrid::spec;
using namespace hybrid::spec::detail;
using llvm::Expected;
using llvm::StringRef;

namespace {
struct FamilyName {
  StringRef modelType;
  Family family;
};
} // namespace

static constexpr FamilyName kFamilies[] = {
    {"llama", Family::Llama},
    {"mistral", Family::MistralLike},
    {"mixtral", Family::MistralLike},
    {"phi3", Family::MistralLike},
    {"qwen2", Family::Qwen2},
    {"qwen3", Family::Qwen3},
    {"qwen2_moe", Family::Qwen2Moe},
    {"qwen3_moe", Family::Qwen3Moe},
    {"qwen3_next", Family::Qwen3Next},
    {"gemma2", Family::Gemma2},
    {"gemma3", Family::Gemma3},
    {"gemma3_text", Family::Gemma3},
    {"gemma3n", Family::Gemma3n},
    {"gemma3n_text", Family::Gemma3n},
    {"gemma4", Family::Gemma4},
    {"gemma4_text", Family::Gemma4},
    {"cohere2", Family::Cohere2},
    {"cohere2_moe", Family::Cohere2Moe},
    {"gpt_oss", Family::GptOss},
    {"llama4", Family::Llama4},
    {"llama4_text", Family::Llama4},
    {"jamba", Family::Jamba},
    {"zamba2", Family::Zamba2},
    {"falcon_h1", Family::FalconH1},
    {"minimax", Family::MiniMax},
    {"olmo3", Family::Olmo3},
    {"exaone4", Family::Exaone4},
    {"exaone_moe", Family::Exaone4},
    {"smollm3", Family::SmolLM3},
    {"cwm", Family::Cwm},
    {"afmoe", Family::Afmoe},
    {"ministral", Family::MistralLike},
    {"starcoder2", Family::MistralLike},
    {"vaultgemma", Family::Gemma2},
    {"qwen3_5_text", Family::Qwen3Next},
    {"qwen3_5_moe_text", Family::Qwen3Next},
    {"granite_swa", Family::GraniteSwa},
    {"granitemoe_swa", Family::GraniteSwa},
    {"mimo_v2_flash", Family::MiMoV2Flash},
    {"ministral3", Family::Ministral3},
    {"bamba", Family::Bamba},
    {"granitemoehybrid", Family::GraniteMoeHybrid},
    {"olmo_hybrid", Family::OlmoHybrid},
    {"nemotron_h", Family::NemotronH},
    {"lfm2", Family::Lfm2},
    {"lfm2_moe", Family::Lfm2},
    {"olmo2", Family::Llama},
    {"glm", Family::Glm},
    {"glm4", Family::Glm},
    {"glm4_moe", Family::Glm4Moe},
    {"granite", Family::Granite},
    {"granitemoe", Family::Granite},
    {"granitemoeshared", Family::Granite},
    {"olmoe", Family::Llama},
    {"flex_olmo", Family::Llama},
    {"arcee", Family::Llama},
    {"jais2", Family::Llama},
    {"exaone4_5", Family::Exaone4},
    {"exaone4_5_text", Family::Exaone4},
    {"minimax_m2", Family::MiniMaxM2},
    {"ernie4_5", Family::Ernie45},
    {"ernie4_5_moe", Family::Ernie45},
    {"seed_oss", Family::SeedOss},
    {"solar_open", Family::SolarOpen},
    {"hy_v3", Family::HyV3},
    {"step3p5", Family::Step3p5},
    {"step3p7", Family::Step3p5},
    {"apertus", Family::Apertus},
    {"apertus1p5", Family::Apertus},
    {"apertus1p5_text", Family::Apertus},
    {"dots1", Family::Dots1},
    {"sarvam_moe", Family::Glm4Moe},
    {"deepseek_v2", Family::DeepseekMla},
    {"deepseek_v3", Family::DeepseekMla},
    {"kimi_k2", Family::DeepseekMla},
    {"kimi_k25", Family::DeepseekMla},
    {"youtu", Family::DeepseekMla},
    {"sarvam_mla", Family::DeepseekMla},
    {"longcat_flash", Family::LongcatFlash},
    {"kimi_linear", Family::KimiLinear},
    {"bailing_hybrid", Family::BailingHybrid},
};

std::optional<Family> detail::lookupFamily(StringRef modelType) {
  for (const FamilyName &entry : kFamilies)
    if (entry.modelType == modelType)
      return entry.family;
  return std::nullopt;
}

namespace {
struct UnsupportedFamily {
  StringRef modelType;
  StringRef reason;
};
} // namespace

static constexpr StringRef kSparseIndexer =
    "its attention is sparse: an indexer keeps the top index_topk keys of "
    "each query (DeepSeek sparse attention)";
static constexpr UnsupportedFamily kUnsupported[] = {
    {"deepseek_v32", kSparseIndexer},
    {"glm_moe_dsa", kSparseIndexer},
    {"glm5_next", kSparseIndexer},
    {"glm5_next_text", kSparseIndexer},
    {"hy_v4", kSparseIndexer},
    {"dots3_note", kSparseIndexer},
    {"dots3_note_text", kSparseIndexer},
    {"deepseek_v4", "its attention reads a sliding window plus compressed and "
                    "indexer-selected KV entries"},
    {"hunyuan_v1_dense", "it normalises queries and keys after RoPE "
                         "(query_layernorm, key_layernorm)"},
    {"hunyuan_v1_moe", "it normalises queries and keys after RoPE "
                       "(query_layernorm, key_layernorm)"},
    {"nanochat", "its RoPE turns the other way (rotate_half gives "
                 "cat(x2, -x1))"},
};

std::optional<StringRef> detail::unsupportedReason(StringRef modelType) {
  for (const UnsupportedFamily &entry : kUnsupported)
    if (entry.modelType == modelType)
      return entry.reason;
  return std::nullopt;
}

std::string detail::supportedModelTypes() {
  std::string out;
  for (const FamilyName &entry : kFamilies) {
    if (!out.empty())
      out += ", ";
    out += entry.modelType.str();
  }
  return out;
}

StringRef detail::layerTypeName(LayerKind kind) {
  switch (kind) {
  case LayerKind::Full:
    return "full_attention";
  case LayerKind::Sliding:
    return "sliding_attention";
  case LayerKind::Chunked:
    return "chunked_attention";
  case LayerKind::Linear:
    return "linear_attention";
  case LayerKind::Mamba:
    return "mamba";
  case LayerKind::Hybrid:
    return "hybrid";
  case LayerKind::Mlp:
    return "mlp";
  case LayerKind::Conv:
    return "conv";
  }
  return "unknown";
}

/// Families whose every layer is full attention.
static bool attendsFullOnly(Family family) {
  switch (family) {
  case Family::Llama:
  case Family::Apertus:
  case Family::Glm:
  case Family::Glm4Moe:
  case Family::Granite:
  case Family::MiniMaxM2:
  case Family::Ernie45:
  case Family::SeedOss:
  case Family::SolarOpen:
  case Family::HyV3:
  case Family::DeepseekMla:
  case Family::LongcatFlash:
    return true;
  default:
    return false;
  }
}

/// Layer kinds the family's modeling code can build.
static bool familyAllows(Family family, LayerKind kind) {
  if (attendsFullOnly(family))
    return kind == LayerKind::Full;
  switch (family) {
  case Family::Llama4:
    return kind == LayerKind::Full || kind == LayerKind::Chunked;
  case Family::Qwen3Next:
  case Family::MiniMax:
    return kind == LayerKind::Full || kind == LayerKind::Linear;
  case Family::Jamba:
  case Family::Bamba:
  case Family::GraniteMoeHybrid:
    return kind == LayerKind::Full || kind == LayerKind::Mamba;
  case Family::OlmoHybrid:
  case Family::KimiLinear:
  case Family::BailingHybrid:
    return kind == LayerKind::Full || kind == LayerKind::Linear;
  case Family::NemotronH:
    return kind == LayerKind::Full || kind == LayerKind::Mamba ||
           kind == LayerKind::Mlp;
  case Family::Lfm2:
    return kind == LayerKind::Full || kind == LayerKind::Conv;
  case Family::Zamba2:
    return kind == LayerKind::Mamba || kind == LayerKind::Hybrid;
  case Family::FalconH1:
    return kind == LayerKind::Hybrid;
  default:
    return kind == LayerKind::Full || kind == LayerKind::Sliding;
  }
}

/// transformers now writes the recurrent mixers of Mamba hybrids as
/// "linear_attention" too (it remaps legacy "mamba"); which mixer that is
/// depends on the family.
static LayerKind linearAttentionKind(Family family) {
  if (family == Family::Jamba || family == Family::Zamba2 ||
      family == Family::Bamba || family == Family::GraniteMoeHybrid ||
      family == Family::NemotronH)
    return LayerKind::Mamba;
  return LayerKind::Linear;
}

/// Parses one entry of `layer_types` (or Zamba2's `layers_block_type`).
static Expected<LayerKind> parseLayerType(const HFContext &ctx,
                                          const json &value,
                                          const std::string &path) {
  HYBRID_ASSIGN_OR_RETURN(std::string name,
                          toString(value, ctx.cfg.file(), path));
  std::optional<LayerKind> kind;
  if (name == "full_attention" || name == "attention")
    kind = LayerKind::Full;
  else if (name == "sliding_attention")
    kind = LayerKind::Sliding;
  else if (name == "chunked_attention")
    kind = LayerKind::Chunked;
  else if (name == "linear_attention")
    kind = linearAttentionKind(ctx.family);
  else if (name == "mamba")
    kind = LayerKind::Mamba;
  else if (name == "hybrid")
    kind = LayerKind::Hybrid;
  else if (name == "mlp" || name == "moe")
    kind = LayerKind::Mlp;
  else if (name == "conv")
    kind = LayerKind::Conv;
  if (!kind)
    return fieldError(ctx.cfg.file(), path,
                      "unknown layer type " + describe(value) +
                          " (supported: full_attention, sliding_attention, "
                          "chunked_attention, linear_attention, mamba, "
                          "attention, hybrid, mlp, moe, conv)");
  if (!familyAllows(ctx.family, *kind))
    return fieldError(ctx.cfg.file(), path,
                      "layer type " + describe(value) +
                          " is not supported by model type '" + ctx.modelType +
                          "'");
  return *kind;
}

Expected<const json *> detail::readLayerList(const HFContext &ctx,
                                             StringRef key) {
  HYBRID_ASSIGN_OR_RETURN(const json *list, ctx.cfg.optArray(key));
  // Step 3.5's hub lists end with its MTP layers' entries, which
  // transformers splits off.
  int64_t mtp = 0;
  if (ctx.family == Family::Step3p5) {
    HYBRID_ASSIGN_OR_RETURN(
        std::optional<int64_t> stated,
        ctx.cfg.optNonNegativeInt("num_nextn_predict_layers"));
    mtp = stated.value_or(0);
  }
  if (list && static_cast<int64_t>(list->size()) != ctx.numLayers &&
      static_cast<int64_t>(list->size()) != ctx.numLayers + mtp)
    return ctx.cfg.error(key, "has " + llvm::Twine(list->size()) +
                                  (list->size() == 1 ? " entry" : " entries") +
                                  " but '" +
                                  ctx.cfg.fieldPath("num_hidden_layers") +
                                  "' is " + llvm::Twine(ctx.numLayers));
  return list;
}

static Expected<std::vector<LayerKind>>
parseLayerList(const HFContext &ctx, const json &list, StringRef key) {
  // Step 3.5's entries past num_hidden_layers (its MTP layers') are not
  // read.
  size_t count = list.size();
  if (ctx.family == Family::Step3p5)
    count = std::min(count, static_cast<size_t>(ctx.numLayers));
  std::vector<LayerKind> kinds;
  kinds.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    HYBRID_ASSIGN_OR_RETURN(
        LayerKind kind,
        parseLayerType(ctx, list[i], indexPath(ctx.cfg.fieldPath(key), i)));
    kinds.push_back(kind);
  }
  return kinds;
}

/// Nemotron-H's blocks: `layer_types` (or its older name
/// `layers_block_type`), else `hybrid_override_pattern` (a character per
/// block), else its configuration class's four blocks. A block has one
/// mixer: M Mamba-2, * attention, - an MLP and E a MoE (neither mixes
/// tokens).
static Expected<std::vector<LayerKind>> nemotronHBlocks(const HFContext &ctx) {
  const ObjectView &cfg = ctx.cfg;
  for (StringRef key : {"layer_types", "layers_block_type"}) {
    HYBRID_ASSIGN_OR_RETURN(const json *list, cfg.optArray(key));
    if (!list)
      continue;
    if (list->empty() || list->size() > static_cast<size_t>(kMaxLayers))
      return cfg.error(key, "must list 1 to " + llvm::Twine(kMaxLayers) +
                                " layers, got " + llvm::Twine(list->size()));
    return parseLayerList(ctx, *list, key);
  }
  HYBRID_ASSIGN_OR_RETURN(std::optional<std::string> pattern,
                          cfg.optString("hybrid_override_pattern"));
  if (!pattern)
    return std::vector<LayerKind>{LayerKind::Mamba, LayerKind::Mlp,
                                  LayerKind::Full, LayerKind::Mlp};
  if (pattern->empty() || pattern->size() > static_cast<size_t>(kMaxLayers))
    return cfg.error("hybrid_override_pattern",
                     "must have 1 to " + llvm::Twine(kMaxLayers) +
                         " characters, got " + llvm::Twine(pattern->size()));
  std::vector<LayerKind> kinds;
  for (size_t i = 0; i < pattern->size(); ++i) {
    char c = (*pattern)[i];
    if (c == 'M')
      kinds.push_back(LayerKind::Mamba);
    else if (c == '*')
      kinds.push_back(LayerKind::Full);
    else if (c == '-' || c == 'E')
      kinds.push_back(LayerKind::Mlp);
    else
      return cfg.error("hybrid_override_pattern",
                       "has " + describe(json(std::string(1, c))) +
                           " at position " + llvm::Twine(i) +
                           " (expected M: Mamba-2, *: attention, -: MLP, "
                           "E: MoE)");
  }
  return kinds;
}

Expected<std::optional<int64_t>>
detail::listedLayerCount(const HFContext &ctx) {
  if (ctx.family == Family::LongcatFlash) {
    // Two attention sublayers per block of `num_layers` (transformers'
    // num_hidden_layers is twice it).
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> blocks,
                            ctx.cfg.optPositiveInt("num_layers"));
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> stated,
                            ctx.cfg.optPositiveInt("num_hidden_layers"));
    if (blocks && stated && *stated != 2 * *blocks)
      return ctx.cfg.error("num_hidden_layers",
                           "must be twice num_layers (" + llvm::Twine(*blocks) +
                               "), got " + llvm::Twine(*stated));
    if (!blocks && stated)
      blocks = *stated / 2;
    if (blocks && *blocks > kMaxLayers / 2)
      return ctx.cfg.error("num_layers", "must be at most " +
                                             llvm::Twine(kMaxLayers / 2) +
                                             ", got " + llvm::Twine(*blocks));
    return 2 * blocks.value_or(28);
  }
  if (ctx.family != Family::NemotronH)
    return std::nullopt;
  HYBRID_ASSIGN_OR_RETURN(std::vector<LayerKind> kinds, nemotronHBlocks(ctx));
  auto count = static_cast<int64_t>(kinds.size());
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> stated,
                          ctx.cfg.optPositiveInt("num_hidden_layers"));
  if (stated && *stated != count)
    return ctx.cfg.error("num_hidden_layers",
                         "is " + llvm::Twine(*stated) +
                             " but the layer schedule has " +
                             llvm::Twine(count) + " layers");
  return count;
}

bool detail::windowConfigured(const HFContext &ctx) {
  const json *value = ctx.cfg.find("sliding_window");
  if (!value)
    return defaultSlidingWindow(ctx).has_value();
  return !value->is_null();
}

/// Every layer of kind `whenTrue` where `pred(i)` holds, else `otherwise`.
template <typename Pred>
static std::vector<LayerKind> schedule(int64_t n, LayerKind whenTrue,
                                       LayerKind otherwise, Pred pred) {
  std::vector<LayerKind> kinds(n);
  for (int64_t i = 0; i < n; ++i)
    kinds[i] = pred(i) ? whenTrue : otherwise;
  return kinds;
}

Expected<int64_t> detail::cohere2MoeDensePrefix(const HFContext &ctx) {
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> dense,
                          ctx.cfg.optNonNegativeInt("first_k_dense_replace"));
  if (dense && *dense > ctx.numLayers)
    return ctx.cfg.error("first_k_dense_replace",
                         "must be at most num_hidden_layers (" +
                             llvm::Twine(ctx.numLayers) + "), got " +
                             llvm::Twine(*dense));
  return dense.value_or(0);
}

/// Gemma 3 / Cohere 2 style: every `pattern`-th layer is full.
static Expected<std::vector<LayerKind>>
everyNthFull(const HFContext &ctx, StringRef key, int64_t fallback) {
  int64_t pattern = fallback;
  if (!key.empty()) {
    HYBRID_ASSIGN_OR_RETURN(pattern, ctx.cfg.positiveIntOr(key, fallback));
  }
  return schedule(ctx.numLayers, LayerKind::Full, LayerKind::Sliding,
                  [&](int64_t i) { return (i + 1) % pattern == 0; });
}

Expected<std::vector<bool>> detail::noRopeLayers(const HFContext &ctx) {
  HYBRID_ASSIGN_OR_RETURN(const json *list, ctx.cfg.optArray("no_rope_layers"));
  // transformers falls back to the interval for an empty list too.
  if (!list || list->empty()) {
    HYBRID_ASSIGN_OR_RETURN(int64_t interval,
                            ctx.cfg.positiveIntOr("no_rope_layer_interval", 4));
    std::vector<bool> rope(ctx.numLayers);
    for (int64_t i = 0; i < ctx.numLayers; ++i)
      rope[i] = (i + 1) % interval != 0;
    return rope;
  }
  HYBRID_ASSIGN_OR_RETURN(list, readLayerList(ctx, "no_rope_layers"));
  std::vector<bool> rope;
  for (size_t i = 0; i < list->size(); ++i) {
    std::string path = indexPath(ctx.cfg.fieldPath("no_rope_layers"), i);
    HYBRID_ASSIGN_OR_RETURN(int64_t flag,
                            toInt((*list)[i], ctx.cfg.file(), path));
    if (flag != 0 && flag != 1)
      return fieldError(ctx.cfg.file(), path,
                        "must be 0 (NoPE) or 1 (RoPE), got " +
                            describe((*list)[i]));
    rope.push_back(flag == 1);
  }
  return rope;
}

/// Full attention at the layer indices listed under `key`, `otherwise`
/// elsewhere; every layer `unlisted` without the list.
static Expected<std::vector<LayerKind>> attentionAt(const HFContext &ctx,
                                                    StringRef key,
                                                    LayerKind otherwise,
                                                    LayerKind unlisted) {
  const ObjectView &cfg = ctx.cfg;
  int64_t n = ctx.numLayers;
  HYBRID_ASSIGN_OR_RETURN(const json *indices, cfg.optArray(key));
  if (!indices)
    return std::vector<LayerKind>(n, unlisted);
  std::vector<LayerKind> kinds(n, otherwise);
  for (size_t i = 0; i < indices->size(); ++i) {
    std::string path = indexPath(cfg.fieldPath(key), i);
    HYBRID_ASSIGN_OR_RETURN(int64_t index,
                            toInt((*indices)[i], cfg.file(), path));
    if (index < 0 || index >= n)
      return fieldError(cfg.file(), path,
                        "must be a layer index below num_hidden_layers (" +
                            llvm::Twine(n) + "), got " +
                            describe((*indices)[i]));
    kinds[index] = LayerKind::Full;
  }
  return kinds;
}

/// Zamba2's default `layers_block_type` (Zamba2-2.7B, 54 layers).
static std::vector<LayerKind> zamba2DefaultBlocks() {
  std::vector<LayerKind> kinds{LayerKind::Mamba};
  auto append = [&](int mambas, int repeats, bool hybrid) {
    for (int r = 0; r < repeats; ++r) {
      kinds.insert(kinds.end(), mambas, LayerKind::Mamba);
      if (hybrid)
        kinds.push_back(LayerKind::Hybrid);
    }
  };
  append(5, 7, true);
  append(4, 1, true);
  append(3, 1, true);
  append(2, 1, false);
  return kinds;
}

/// Kimi Linear's checkpoints list their layers in `linear_attn_config`,
/// 1-indexed (`full_attn_layers`, `kda_layers`); without both lists, every
/// 4th layer from layer 4 is MLA.
static Expected<std::vector<LayerKind>>
kimiLinearSchedule(const HFContext &ctx) {
  int64_t n = ctx.numLayers;
  HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> linear,
                          ctx.cfg.optObject("linear_attn_config"));
  if (!linear || !linear->has("full_attn_layers") || !linear->has("kda_layers"))
    return schedule(n, LayerKind::Full, LayerKind::Linear,
                    [](int64_t i) { return i != 0 && i % 4 == 0; });
  std::vector<std::optional<LayerKind>> listed(n);
  for (auto [key, kind] :
       {std::pair<StringRef, LayerKind>{"full_attn_layers", LayerKind::Full},
        {"kda_layers", LayerKind::Linear}}) {
    HYBRID_ASSIGN_OR_RETURN(const json *list, linear->optArray(key));
    for (size_t i = 0; i < list->size(); ++i) {
      std::string path = indexPath(linear->fieldPath(key), i);
      HYBRID_ASSIGN_OR_RETURN(int64_t layer,
                              toInt((*list)[i], ctx.cfg.file(), path));
      if (layer < 1 || layer > n)
        return fieldError(ctx.cfg.file(), path,
                          "must be a layer number from 1 to "
                          "num_hidden_layers (" +
                              llvm::Twine(n) + "), got " + llvm::Twine(layer));
      listed[layer - 1] = kind;
    }
  }
  std::vector<LayerKind> kinds;
  for (int64_t i = 0; i < n; ++i) {
    if (!listed[i])
      return linear->error("kda_layers", "and full_attn_layers leave layer " +
                                             llvm::Twine(i + 1) +
                                             " (1-indexed) without a "
                                             "kind");
    kinds.push_back(*listed[i]);
  }
  return kinds;
}

/// The family's own schedule, for configs without `layer_types`.
static Expected<std::vector<LayerKind>> familySchedule(const HFContext &ctx) {
  const ObjectView &cfg = ctx.cfg;
  int64_t n = ctx.numLayers;
  auto isEven = [](int64_t i) { return i % 2 == 0; };
  // Step 3.5 without layer_types too.
  if (attendsFullOnly(ctx.family) || ctx.family == Family::Step3p5)
    return std::vector<LayerKind>(n, LayerKind::Full);
  switch (ctx.family) {
  case Family::FalconH1:
    return std::vector<LayerKind>(n, LayerKind::Hybrid);
  case Family::MistralLike:
  case Family::Ministral3:
    return std::vector<LayerKind>(n, windowConfigured(ctx) ? LayerKind::Sliding
                                                           : LayerKind::Full);
  case Family::Qwen2:
  case Family::Qwen3:
  case Family::Qwen2Moe:
  case Family::Qwen3Moe:
  case Family::Dots1: {
    // dots.llm1 has no use_sliding_window: the window alone decides.
    bool dots = ctx.family == Family::Dots1;
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> use,
                            cfg.optBool("use_sliding_window"));
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> maxWindowLayers,
                            cfg.optNonNegativeInt("max_window_layers"));
    int64_t mwl = maxWindowLayers.value_or(dots ? 62 : 28);
    bool sliding = dots || use.value_or(false);
    // Qwen2-MoE's rule differs from Qwen2's: alternate layers below
    // max_window_layers (configuration_qwen2_moe.py).
    if (ctx.family == Family::Qwen2Moe)
      return schedule(n, LayerKind::Sliding, LayerKind::Full, [&](int64_t i) {
        return sliding && isEven(i) && i < mwl;
      });
    sliding = sliding && windowConfigured(ctx);
    // Qwen3-MoE has no layer_types: a window applies to every layer.
    if (ctx.family == Family::Qwen3Moe)
      return std::vector<LayerKind>(n, sliding ? LayerKind::Sliding
                                               : LayerKind::Full);
    return schedule(n, LayerKind::Sliding, LayerKind::Full,
                    [&](int64_t i) { return sliding && i >= mwl; });
  }
  case Family::Gemma2:
  case Family::GptOss:
    return schedule(n, LayerKind::Sliding, LayerKind::Full, isEven);
  case Family::Gemma3:
    return everyNthFull(ctx, "sliding_window_pattern", 6);
  case Family::Gemma3n:
    return everyNthFull(ctx, "", 5);
  case Family::Gemma4:
    return everyNthFull(ctx, "", 6);
  case Family::Cohere2:
    return everyNthFull(ctx, "sliding_window_pattern", 4);
  case Family::Cohere2Moe: {
    // A prefix of first_k_dense_replace dense-MLP layers with a pattern of
    // its own (every layer full by default), then the usual one counted
    // again from 0.
    HYBRID_ASSIGN_OR_RETURN(int64_t dense, cohere2MoeDensePrefix(ctx));
    HYBRID_ASSIGN_OR_RETURN(
        int64_t prefix,
        cfg.positiveIntOr("prefix_dense_sliding_window_pattern", 1));
    HYBRID_ASSIGN_OR_RETURN(int64_t rest,
                            cfg.positiveIntOr("sliding_window_pattern", 4));
    return schedule(n, LayerKind::Full, LayerKind::Sliding, [&](int64_t i) {
      return i < dense ? (i + 1) % prefix == 0 : (i - dense + 1) % rest == 0;
    });
  }
  case Family::Llama4: {
    HYBRID_ASSIGN_OR_RETURN(std::vector<bool> rope, noRopeLayers(ctx));
    return schedule(n, LayerKind::Chunked, LayerKind::Full,
                    [&](int64_t i) { return rope[i]; });
  }
  case Family::SmolLM3: {
    // Sliding layers are the NoPE ones, when use_sliding_window is set.
    HYBRID_ASSIGN_OR_RETURN(std::vector<bool> rope, noRopeLayers(ctx));
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> use,
                            cfg.optBool("use_sliding_window"));
    bool sliding = use.value_or(false) && windowConfigured(ctx);
    return schedule(n, LayerKind::Sliding, LayerKind::Full,
                    [&](int64_t i) { return sliding && !rope[i]; });
  }
  case Family::Olmo3:
    return everyNthFull(ctx, "", 4);
  case Family::Exaone4:
    // transformers divides by a pattern of 0 without a window; every layer
    // is full then.
    if (!windowConfigured(ctx))
      return std::vector<LayerKind>(n, LayerKind::Full);
    return everyNthFull(ctx, "sliding_window_pattern", 4);
  case Family::Afmoe:
    return everyNthFull(ctx, "global_attn_every_n_layers", 4);
  case Family::Cwm:
  case Family::GraniteSwa:
    return schedule(n, LayerKind::Full, LayerKind::Sliding,
                    [](int64_t i) { return i % 4 == 0; });
  case Family::MiMoV2Flash:
    return schedule(n, LayerKind::Full, LayerKind::Sliding,
                    [](int64_t i) { return i == 0 || (i + 1) % 6 == 0; });
  case Family::KimiLinear:
    return kimiLinearSchedule(ctx);
  case Family::BailingHybrid: {
    HYBRID_ASSIGN_OR_RETURN(int64_t group,
                            cfg.positiveIntOr("layer_group_size", 6));
    return schedule(n, LayerKind::Full, LayerKind::Linear,
                    [&](int64_t i) { return (i + 1) % group == 0; });
  }
  case Family::Qwen3Next: {
    HYBRID_ASSIGN_OR_RETURN(int64_t interval,
                            cfg.positiveIntOr("full_attention_interval", 4));
    return schedule(n, LayerKind::Full, LayerKind::Linear,
                    [&](int64_t i) { return (i + 1) % interval == 0; });
  }
  case Family::Jamba: {
    HYBRID_ASSIGN_OR_RETURN(int64_t period,
                            cfg.positiveIntOr("attn_layer_period", 8));
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> offset,
                            cfg.optNonNegativeInt("attn_layer_offset"));
    int64_t off = offset.value_or(4);
    if (off >= period)
      return cfg.error("attn_layer_offset",
                       "must be smaller than attn_layer_period (" +
                           llvm::Twine(period) + "), got " + llvm::Twine(off));
    return schedule(n, LayerKind::Full, LayerKind::Mamba,
                    [&](int64_t i) { return i % period == off; });
  }
  case Family::Zamba2: {
    HYBRID_ASSIGN_OR_RETURN(const json *blocks,
                            readLayerList(ctx, "layers_block_type"));
    if (blocks)
      return parseLayerList(ctx, *blocks, "layers_block_type");
    std::vector<LayerKind> kinds = zamba2DefaultBlocks();
    if (static_cast<int64_t>(kinds.size()) != n)
      return cfg.error("layers_block_type",
                       "missing, and transformers' default schedule has " +
                           llvm::Twine(kinds.size()) + " layers but '" +
                           cfg.fieldPath("num_hidden_layers") + "' is " +
                           llvm::Twine(n));
    return kinds;
  }
  case Family::Bamba:
    // Attention at attn_layer_indices, Mamba-2 elsewhere (all of them
    // without the list).
    return attentionAt(ctx, "attn_layer_indices", LayerKind::Mamba,
                       LayerKind::Mamba);
  case Family::GraniteMoeHybrid: {
    // `layers_block_type` is the older name of layer_types; every layer is
    // Mamba-2 without either.
    HYBRID_ASSIGN_OR_RETURN(const json *blocks,
                            readLayerList(ctx, "layers_block_type"));
    if (blocks)
      return parseLayerList(ctx, *blocks, "layers_block_type");
    return std::vector<LayerKind>(n, LayerKind::Mamba);
  }
  case Family::OlmoHybrid: {
    // Every fourth layer full; the last one when that leaves none.
    std::vector<LayerKind> kinds =
        schedule(n, LayerKind::Full, LayerKind::Linear,
                 [](int64_t i) { return i % 4 == 3; });
    if (n < 4)
      kinds.back() = LayerKind::Full;
    return kinds;
  }
  case Family::NemotronH:
    return nemotronHBlocks(ctx);
  case Family::Lfm2:
    // Lfm2Config derives layer_types from full_attn_idxs (every layer
    // attends without it); Lfm2MoeConfig derives nothing and its model
    // cannot be built without layer_types.
    if (ctx.modelType == "lfm2_moe")
      return cfg.missing("layer_types");
    return attentionAt(ctx, "full_attn_idxs", LayerKind::Conv, LayerKind::Full);
  case Family::MiniMax: {
    // MiniMax's original configs list 0 (lightning) / 1 (softmax) per layer.
    HYBRID_ASSIGN_OR_RETURN(const json *types,
                            readLayerList(ctx, "attn_type_list"));
    if (!types)
      return schedule(n, LayerKind::Full, LayerKind::Linear, isEven);
    std::vector<LayerKind> kinds;
    for (size_t i = 0; i < types->size(); ++i) {
      std::string path = indexPath(cfg.fieldPath("attn_type_list"), i);
      HYBRID_ASSIGN_OR_RETURN(int64_t type,
                              toInt((*types)[i], cfg.file(), path));
      if (type != 0 && type != 1)
        return fieldError(cfg.file(), path,
                          "must be 0 (linear) or 1 (softmax), got " +
                              describe((*types)[i]));
      kinds.push_back(type == 1 ? LayerKind::Full : LayerKind::Linear);
    }
    return kinds;
  }
  default: // attendsFullOnly(), above
    break;
  }
  return makeError("unhandled model family");
}

Expected<std::vector<LayerKind>>
detail::resolveLayerKinds(const HFContext &ctx) {
  // Ministral 3's attention reads one window for all layers, whatever
  // layer_types says; Nemotron-H reads its own lists.
  const json *layerTypes = nullptr;
  if (ctx.family != Family::Ministral3 && ctx.family != Family::NemotronH) {
    HYBRID_ASSIGN_OR_RETURN(layerTypes, readLayerList(ctx, "layer_types"));
  }
  std::vector<LayerKind> kinds;
  if (layerTypes) {
    HYBRID_ASSIGN_OR_RETURN(kinds,
                            parseLayerList(ctx, *layerTypes, "layer_types"));
  } else {
    HYBRID_ASSIGN_OR_RETURN(kinds, familySchedule(ctx));
  }

  // Gemma 4 forces its last layer to full attention (with a warning).
  if (ctx.family == Family::Gemma4 && !kinds.empty())
    kinds.back() = LayerKind::Full;
  // MiniMax and Jamba build their softmax layers on Mixtral's attention,
  // which slides whenever `sliding_window` is set.
  if ((ctx.family == Family::MiniMax || ctx.family == Family::Jamba) &&
      windowConfigured(ctx))
    for (LayerKind &kind : kinds)
      if (kind == LayerKind::Full)
        kind = LayerKind::Sliding;
  // OlmoHybridConfig refuses a schedule without both kinds.
  if (ctx.family == Family::OlmoHybrid) {
    auto linear = llvm::count(kinds, LayerKind::Linear);
    if (linear == 0 || linear == static_cast<int64_t>(kinds.size()))
      return ctx.cfg.error(
          layerTypes ? "layer_types" : "num_hidden_layers",
          "gives no " +
              llvm::Twine(linear ? "full_attention" : "linear_attention") +
              " layer; olmo_hybrid needs both kinds");
  }
  return kinds;
}

std::optional<int64_t> detail::defaultSlidingWindow(const HFContext &ctx) {
  switch (ctx.family) {
  case Family::MistralLike:
    // MistralConfig and MinistralConfig default to 4096; Mixtral, Phi-3 and
    // Starcoder2 to None.
    if (ctx.modelType == "mistral" || ctx.modelType == "ministral")
      return 4096;
    return std::nullopt;
  case Family::Olmo3:
  case Family::Exaone4:
    return 4096;
  case Family::Cwm:
    return 8192;
  case Family::Afmoe:
    return 1024;
  case Family::GraniteSwa:
    return 128;
  case Family::MiMoV2Flash:
    return 129; // SGLang's 128 previous tokens and the query

  case Family::Qwen2:
  case Family::Qwen3:
  case Family::Qwen2Moe:
  case Family::Qwen3Moe:
  case Family::Dots1:
  case Family::Gemma2:
  case Family::Gemma3:
  case Family::Cohere2:
  case Family::Cohere2Moe:
    return 4096;
  case Family::Gemma3n:
  case Family::Gemma4:
    return 512;
  case Family::GptOss:
    return 128;
  default:
    return std::nullopt;
  }
}

std::optional<int64_t> detail::defaultHeadDim(const HFContext &ctx) {
  switch (ctx.family) {
  case Family::Gemma2:
  case Family::Gemma3:
  case Family::Gemma3n:
  case Family::Gemma4:
  case Family::Qwen3Next:
    return 256;
  case Family::Qwen3:
  case Family::Llama4:
  case Family::Cwm:
  case Family::Afmoe:
  case Family::NemotronH:
  case Family::Cohere2Moe:
  case Family::Ministral3:
  case Family::Glm:
  case Family::MiniMaxM2:
  case Family::SeedOss:
  case Family::SolarOpen:
  case Family::HyV3:
  case Family::Step3p5:
    return 128;
  case Family::Glm4Moe: // Glm4MoeConfig has no head_dim: hidden / heads
    return ctx.modelType == "sarvam_moe" ? std::optional<int64_t>(64)
                                         : std::nullopt;
  case Family::Ernie45: // Ernie4_5MoeConfig has no head_dim: hidden / heads
    return ctx.modelType == "ernie4_5" ? std::optional<int64_t>(128)
                                       : std::nullopt;
  case Family::GptOss:
    return 64;
  case Family::MiMoV2Flash:
    return 192;
  default:
    return std::nullopt;
  }
}

std::optional<int64_t> detail::defaultKVHeads(const HFContext &ctx) {
  switch (ctx.family) {
  case Family::Exaone4:
    return 32;
  case Family::Cwm:
  case Family::Ministral3:
  case Family::Bamba:
  case Family::NemotronH:
  case Family::Lfm2:
    return 8;
  case Family::MiMoV2Flash:
    return 4;
  case Family::Glm:
    return 2;
  case Family::Glm4Moe:
    return ctx.modelType == "sarvam_moe" ? 4 : 8;
  case Family::Dots1:
    return 32;
  case Family::MiniMaxM2:
  case Family::SeedOss:
  case Family::SolarOpen:
  case Family::HyV3:
  case Family::Step3p5:
    return 8;
  case Family::Ernie45:
    return ctx.modelType == "ernie4_5" ? 2 : 4;
  case Family::MistralLike:
    if (ctx.modelType == "starcoder2")
      return 2;
    return std::nullopt;
  default:
    return std::nullopt;
  }
}

std::optional<double> detail::defaultRotaryFraction(const HFContext &ctx) {
  switch (ctx.family) {
  case Family::Qwen3Next:
    return 0.25;
  case Family::MiMoV2Flash:
    return 0.334; // its rotary embedding's default, per layer type
  case Family::Glm:
    return 0.5;
  case Family::Glm4Moe:
    // SarvamMoEConfig, which runs Glm4MoeModel, defaults to 1.
    if (ctx.modelType == "sarvam_moe")
      return std::nullopt;
    return 0.5;
  default:
    return std::nullopt;
  }
}

std::optional<double> detail::defaultRopeTheta(const HFContext &ctx,
                                               LayerKind kind) {
  switch (ctx.family) {
  case Family::Llama:
    return ctx.modelType == "flex_olmo" ? 500000.0 : 1e4;
  case Family::Glm4Moe:
    return ctx.modelType == "sarvam_moe" ? 8e6 : 1e4;
  case Family::MistralLike:
    return ctx.modelType == "mixtral" ? 1e6 : 1e4;
  case Family::Gemma3:
  case Family::Gemma3n:
  case Family::Gemma4:
    // Local (sliding) and global bases differ.
    return kind == LayerKind::Sliding ? 1e4 : 1e6;
  case Family::GptOss:
    return 150000.0;
  case Family::Llama4:
    return 500000.0;
  case Family::MiniMax:
  case Family::Cwm:
  case Family::Lfm2:
  case Family::SolarOpen:
    return 1e6;
  case Family::Olmo3:
  case Family::Ernie45:
    return 500000.0;
  case Family::MiniMaxM2:
    return 5e6;
  case Family::HyV3:
    return 11158840.0;
  case Family::LongcatFlash:
    return 1e7;
  case Family::BailingHybrid:
    return 6e6;
  case Family::SmolLM3:
    return 2e6;
  case Family::Jamba:
  case Family::FalconH1:
    return std::nullopt;
  default:
    return 1e4;
  }
}

/// a * b * ..., or an error naming `key` when the product overflows.
static Expected<int64_t> stateSize(const ObjectView &cfg, StringRef key,
                                   std::initializer_list<int64_t> factors) {
  std::optional<int64_t> product = checkedProduct(factors);
  if (!product)
    return cfg.error(key, "makes the recurrent state size overflow");
  return *product;
}

/// Kimi Delta Attention (Kimi Linear's and Ling 3's): per head one
/// head_dim x head_dim recurrent state, and a short convolution over q, k
/// and v keeping `kernel` columns of 3 * heads * head_dim channels (as
/// transformers stores it). Kimi Linear's checkpoints state the shape in
/// `linear_attn_config`; Ling 3's KDA heads are the attention heads and its
/// `head_dim` theirs.
static Expected<LinearLayerShape> kdaLayerShape(const HFContext &ctx) {
  const ObjectView &cfg = ctx.cfg;
  std::optional<ObjectView> sub;
  if (ctx.family == Family::KimiLinear) {
    HYBRID_ASSIGN_OR_RETURN(sub, cfg.optObject("linear_attn_config"));
  }
  // Each field from linear_attn_config when it states it (Kimi Linear),
  // else the config's own `key`; `at` names the one read, for errors.
  struct Field {
    const ObjectView *view;
    StringRef key;
  };
  auto read = [&](StringRef subKey, StringRef key, int64_t fallback,
                  Field &at) -> Expected<int64_t> {
    if (sub && sub->has(subKey)) {
      at = {&*sub, subKey};
      return sub->getPositiveInt(subKey);
    }
    at = {&cfg, key};
    return cfg.positiveIntOr(key, fallback);
  };
  bool kimi = ctx.family == Family::KimiLinear;
  Field headsAt, dimAt, kernelAt;
  int64_t heads = 0;
  if (kimi) {
    HYBRID_ASSIGN_OR_RETURN(heads,
                            read("num_heads", "linear_num_heads", 32, headsAt));
  } else {
    HYBRID_ASSIGN_OR_RETURN(heads, cfg.getPositiveInt("num_attention_heads"));
  }
  HYBRID_ASSIGN_OR_RETURN(
      int64_t dim,
      read("head_dim", kimi ? "linear_head_dim" : "head_dim", 128, dimAt));
  HYBRID_ASSIGN_OR_RETURN(int64_t kernel, read("short_conv_kernel_size",
                                               kimi ? "linear_conv_kernel_dim"
                                                    : "short_conv_kernel_size",
                                               4, kernelAt));
  LinearLayerShape shape;
  shape.numHeads = shape.numKVHeads = heads;
  shape.headDim = shape.vHeadDim = dim;
  shape.scale = 1.0 / std::sqrt(static_cast<double>(dim));
  HYBRID_ASSIGN_OR_RETURN(shape.state.recurrentElements,
                          stateSize(*dimAt.view, dimAt.key, {heads, dim, dim}));
  HYBRID_ASSIGN_OR_RETURN(
      shape.state.convElements,
      stateSize(*kernelAt.view, kernelAt.key, {3, heads, dim, kernel}));
  return shape;
}

Expected<LinearLayerShape> detail::linearLayerShape(const HFContext &ctx) {
  const ObjectView &cfg = ctx.cfg;
  if (ctx.family == Family::KimiLinear || ctx.family == Family::BailingHybrid)
    return kdaLayerShape(ctx);
  LinearLayerShape shape;
  if (ctx.family == Family::MiniMax) {
    // Lightning attention keeps one head_dim x head_dim matrix per head and
    // applies no score scale (MiniMaxLightningAttention).
    HYBRID_ASSIGN_OR_RETURN(int64_t heads,
                            cfg.getPositiveInt("num_attention_heads"));
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> headDim,
                            cfg.optPositiveInt("head_dim"));
    if (!headDim) {
      if (ctx.hiddenSize % heads != 0)
        return cfg.error("hidden_size", "is not divisible by "
                                        "num_attention_heads and 'head_dim' "
                                        "is not set");
      headDim = ctx.hiddenSize / heads;
    }
    shape.numHeads = shape.numKVHeads = heads;
    shape.headDim = shape.vHeadDim = *headDim;
    shape.scale = 1.0;
    HYBRID_ASSIGN_OR_RETURN(
        shape.state.recurrentElements,
        stateSize(cfg, "head_dim", {heads, *headDim, *headDim}));
    return shape;
  }

  // Qwen3-Next gated DeltaNet (Qwen3NextGatedDeltaNet and its cache):
  //   recurrent = num_v_heads * head_k_dim * head_v_dim,
  //   conv = conv_dim * linear_conv_kernel_dim with
  //   conv_dim = 2 * num_k_heads * head_k_dim + num_v_heads * head_v_dim.
  // The conv state keeps the full kernel width: transformers stores
  // F.pad(mixed_qkv, (kernel - seq_len, 0)), i.e. `kernel` columns.
  // OLMo Hybrid derives its defaults from the attention heads:
  // key dim int(0.75 * hidden / key heads), value dim twice that.
  bool olmo = ctx.family == Family::OlmoHybrid;
  int64_t heads = 0;
  if (olmo) {
    HYBRID_ASSIGN_OR_RETURN(heads, cfg.getPositiveInt("num_attention_heads"));
  }
  HYBRID_ASSIGN_OR_RETURN(
      int64_t keyHeads,
      cfg.positiveIntOr("linear_num_key_heads", olmo ? heads : 16));
  HYBRID_ASSIGN_OR_RETURN(
      int64_t valueHeads,
      cfg.positiveIntOr("linear_num_value_heads", olmo ? heads : 32));
  int64_t keyDimDefault =
      olmo ? static_cast<int64_t>(0.75 * static_cast<double>(ctx.hiddenSize) /
                                  static_cast<double>(keyHeads))
           : 128;
  if (keyDimDefault <= 0)
    return cfg.error("linear_num_key_heads",
                     "leaves no key head dim (0.75 * hidden_size / " +
                         llvm::Twine(keyHeads) +
                         "); set 'linear_key_head_dim'");
  HYBRID_ASSIGN_OR_RETURN(
      int64_t keyDim, cfg.positiveIntOr("linear_key_head_dim", keyDimDefault));
  HYBRID_ASSIGN_OR_RETURN(
      int64_t valueDim,
      cfg.positiveIntOr("linear_value_head_dim", olmo ? 2 * keyDim : 128));
  HYBRID_ASSIGN_OR_RETURN(int64_t kernel,
                          cfg.positiveIntOr("linear_conv_kernel_dim", 4));
  if (valueHeads % keyHeads != 0)
    return cfg.error("linear_num_value_heads",
                     "must be a multiple of linear_num_key_heads (" +
                         llvm::Twine(keyHeads) + "), got " +
                         llvm::Twine(valueHeads));
  shape.numHeads = valueHeads;
  shape.numKVHeads = keyHeads;
  shape.headDim = keyDim;
  shape.vHeadDim = valueDim;
  shape.scale = 1.0 / std::sqrt(static_cast<double>(keyDim));
  HYBRID_ASSIGN_OR_RETURN(
      shape.state.recurrentElements,
      stateSize(cfg, "linear_value_head_dim", {valueHeads, keyDim, valueDim}));
  HYBRID_ASSIGN_OR_RETURN(int64_t keys, stateSize(cfg, "linear_key_head_dim",
                                                  {2, keyHeads, keyDim}));
  HYBRID_ASSIGN_OR_RETURN(
      int64_t values,
      stateSize(cfg, "linear_value_head_dim", {valueHeads, valueDim}));
  if (keys > std::numeric_limits<int64_t>::max() - values)
    return cfg.error("linear_key_head_dim",
                     "makes the recurrent state size overflow");
  HYBRID_ASSIGN_OR_RETURN(
      shape.state.convElements,
      stateSize(cfg, "linear_conv_kernel_dim", {keys + values, kernel}));
  return shape;
}

Expected<RecurrentState> detail::mambaState(const HFContext &ctx) {
  const ObjectView &cfg = ctx.cfg;
  RecurrentState state;
  if (ctx.family == Family::Jamba) {
    // HybridMambaAttentionDynamicCache: conv (d_inner, d_conv) and ssm
    // (d_inner, d_state) per sequence, d_inner = mamba_expand * hidden_size.
    HYBRID_ASSIGN_OR_RETURN(int64_t expand,
                            cfg.positiveIntOr("mamba_expand", 2));
    HYBRID_ASSIGN_OR_RETURN(int64_t dState,
                            cfg.positiveIntOr("mamba_d_state", 16));
    HYBRID_ASSIGN_OR_RETURN(int64_t dConv,
                            cfg.positiveIntOr("mamba_d_conv", 4));
    HYBRID_ASSIGN_OR_RETURN(int64_t inner, stateSize(cfg, "mamba_expand",
                                                     {expand, ctx.hiddenSize}));
    HYBRID_ASSIGN_OR_RETURN(state.recurrentElements,
                            stateSize(cfg, "mamba_d_state", {inner, dState}));
    HYBRID_ASSIGN_OR_RETURN(state.convElements,
                            stateSize(cfg, "mamba_d_conv", {inner, dConv}));
    return state;
  }

  // Mamba-2 mixers (Zamba2HybridDynamicCache, FalconHybridMambaAttention-
  // DynamicCache, Bamba's, Granite 4.0-H's and Nemotron-H's caches): conv
  // (d_inner + 2 * n_groups * d_state, d_conv) and ssm (n_heads, head_dim,
  // d_state), with n_heads * head_dim = d_inner. Falcon-H1, Bamba and
  // Granite 4.0-H name the fields alike; Zamba 2 and Nemotron-H otherwise
  // (Nemotron-H's older names win, as NemotronHConfig pops them).
  struct Field {
    StringRef key;
    int64_t fallback;
  };
  bool falcon = ctx.family == Family::FalconH1;
  bool zamba = ctx.family == Family::Zamba2;
  bool nemotron = ctx.family == Family::NemotronH;
  auto nemotronField = [&](StringRef older, StringRef key) {
    return cfg.find(older) ? older : key;
  };
  Field stateField = nemotron ? Field{"ssm_state_size", 128}
                              : Field{"mamba_d_state", zamba ? 64 : 256};
  Field convField = {nemotron ? nemotronField("mamba_d_conv", "conv_kernel")
                              : StringRef("mamba_d_conv"),
                     4};
  Field groupsField =
      zamba      ? Field{"mamba_ngroups", 1}
      : nemotron ? Field{nemotronField("mamba_n_groups", "n_groups"), 8}
                 : Field{"mamba_n_groups", 1};
  Field headsField = zamba      ? Field{"n_mamba_heads", 8}
                     : nemotron ? Field{"mamba_num_heads", 128}
                                : Field{"mamba_n_heads", 128};
  HYBRID_ASSIGN_OR_RETURN(
      int64_t dState, cfg.positiveIntOr(stateField.key, stateField.fallback));
  HYBRID_ASSIGN_OR_RETURN(int64_t dConv,
                          cfg.positiveIntOr(convField.key, convField.fallback));
  HYBRID_ASSIGN_OR_RETURN(
      int64_t groups, cfg.positiveIntOr(groupsField.key, groupsField.fallback));
  HYBRID_ASSIGN_OR_RETURN(
      int64_t heads, cfg.positiveIntOr(headsField.key, headsField.fallback));

  int64_t inner = 0;
  int64_t headDim = 0;
  if (nemotron) {
    // d_inner = mamba_num_heads * mamba_head_dim; mamba_expand is unused.
    HYBRID_ASSIGN_OR_RETURN(headDim, cfg.positiveIntOr("mamba_head_dim", 64));
    HYBRID_ASSIGN_OR_RETURN(inner,
                            stateSize(cfg, "mamba_head_dim", {heads, headDim}));
  } else {
    HYBRID_ASSIGN_OR_RETURN(int64_t expand,
                            cfg.positiveIntOr("mamba_expand", 2));
    StringRef innerKey = "mamba_expand";
    if (falcon && cfg.find("mamba_d_ssm") &&
        !cfg.find("mamba_d_ssm")->is_null()) {
      HYBRID_ASSIGN_OR_RETURN(inner, cfg.getPositiveInt("mamba_d_ssm"));
      innerKey = "mamba_d_ssm";
    } else if (falcon && !cfg.find("mamba_d_ssm")) {
      inner = 1024; // FalconH1Config's default; an explicit null: expand.
      innerKey = "mamba_d_ssm";
    } else {
      HYBRID_ASSIGN_OR_RETURN(
          inner, stateSize(cfg, "mamba_expand", {expand, ctx.hiddenSize}));
    }
    if (inner % heads != 0)
      return cfg.error(headsField.key, "must divide the Mamba inner size (" +
                                           llvm::Twine(inner) + " from '" +
                                           cfg.fieldPath(innerKey) +
                                           "'), got " + llvm::Twine(heads));
    headDim = inner / heads;
  }
  if (!zamba && !nemotron) {
    // mamba_d_head is "auto" (derived) or must agree with the inner size.
    const json *dHead = cfg.find("mamba_d_head");
    if (dHead && !dHead->is_null() &&
        !(dHead->is_string() &&
          dHead->get_ref<const std::string &>() == "auto")) {
      HYBRID_ASSIGN_OR_RETURN(int64_t stated,
                              cfg.getPositiveInt("mamba_d_head"));
      if (stated != headDim)
        return cfg.error("mamba_d_head",
                         "must equal the Mamba inner size / mamba_n_heads (" +
                             llvm::Twine(headDim) + "), got " +
                             llvm::Twine(stated));
    }
  }
  HYBRID_ASSIGN_OR_RETURN(int64_t groupStates,
                          stateSize(cfg, groupsField.key, {2, groups, dState}));
  if (groupStates > std::numeric_limits<int64_t>::max() - inner)
    return cfg.error(groupsField.key,
                     "makes the recurrent state size overflow");
  HYBRID_ASSIGN_OR_RETURN(
      state.convElements,
      stateSize(cfg, convField.key, {inner + groupStates, dConv}));
  HYBRID_ASSIGN_OR_RETURN(
      state.recurrentElements,
      stateSize(cfg, stateField.key, {heads, headDim, dState}));
  return state;
}

Expected<RecurrentState> detail::shortConvState(const HFContext &ctx) {
  // Lfm2ShortConv caches (hidden_size, conv_L_cache) per sequence: the
  // whole kernel's width of inputs.
  HYBRID_ASSIGN_OR_RETURN(int64_t width,
                          ctx.cfg.positiveIntOr("conv_L_cache", 3));
  RecurrentState state;
  HYBRID_ASSIGN_OR_RETURN(
      state.convElements,
      stateSize(ctx.cfg, "conv_L_cache", {ctx.hiddenSize, width}));
  return state;
}
