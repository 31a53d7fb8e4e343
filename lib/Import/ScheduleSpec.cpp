//===- ScheduleSpec.cpp - The project's own schedule format ---------------===//
//
// Reads `"format": "hybrid-schedule"` documents (docs/ScheduleSpec.md). Layer
// fields resolve through scopes: the layer entry, then every enclosing
// pattern group (innermost first), then "defaults". Unknown keys are errors,
// so a typo never passes silently.
//
//===----------------------------------------------------------------------===//

#include "JSONUtil.h"
#include "hybrid/Import/Importer.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>

using namespace hybrid::spec;
using namespace hybrid::spec::detail;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

/// Fields a layer may set (directly, in a pattern group or in defaults).
static const StringRef kLayerFields[] = {"kind",
                                         "num_heads",
                                         "num_kv_heads",
                                         "head_dim",
                                         "v_head_dim",
                                         "window",
                                         "chunk",
                                         "causal",
                                         "positional",
                                         "scale",
                                         "softcap",
                                         "sinks",
                                         "temperature_tuning",
                                         "shared_source",
                                         "k_eq_v",
                                         "latent",
                                         "state"};
/// Fields that only make sense on attention layers (not Mamba).
static const StringRef kAttentionFields[] = {
    "num_heads",          "num_kv_heads",  "head_dim", "v_head_dim",
    "positional",         "scale",         "softcap",  "sinks",
    "temperature_tuning", "shared_source", "k_eq_v",   "latent"};

namespace {
using Scopes = llvm::SmallVector<const ObjectView *, 8>;

class SpecImporter {
public:
  SpecImporter(const ObjectView &root) : root(root) {}
  Expected<ModelSpec> run();

private:
  Error expand(const ObjectView &entry, Scopes &scopes, int depth);
  const ObjectView *owner(const Scopes &scopes, StringRef key) const;
  Expected<LayerSpec> buildLayer(const Scopes &scopes);
  Error checkApplicable(const ObjectView &leaf, LayerKind kind);
  Error readAttention(const Scopes &scopes, LayerSpec &layer, bool required);
  Expected<Positional> readPositional(const ObjectView &view, int64_t headDim);
  Expected<RecurrentState> readState(const Scopes &scopes, LayerKind kind);
  Error checkShared(size_t index);

  const ObjectView &root;
  int64_t maxPositionEmbeddings = 0;
  std::vector<LayerSpec> layers;
  /// Where each layer's shared_source was written, for messages.
  std::vector<std::string> sharedPaths;
};
} // namespace

const ObjectView *SpecImporter::owner(const Scopes &scopes,
                                      StringRef key) const {
  for (const ObjectView *scope : scopes)
    if (scope->find(key))
      return scope;
  return nullptr;
}

/// The spec's name of each layer kind.
struct KindName {
  StringRef name;
  LayerKind kind;
};
static constexpr KindName kKindNames[] = {
    {"full", LayerKind::Full},       {"sliding", LayerKind::Sliding},
    {"chunked", LayerKind::Chunked}, {"linear", LayerKind::Linear},
    {"mamba", LayerKind::Mamba},     {"hybrid", LayerKind::Hybrid},
    {"mlp", LayerKind::Mlp},         {"conv", LayerKind::Conv},
};

static std::optional<LayerKind> parseKind(StringRef name) {
  for (const KindName &entry : kKindNames)
    if (entry.name == name)
      return entry.kind;
  return std::nullopt;
}

static StringRef kindName(LayerKind kind) {
  for (const KindName &entry : kKindNames)
    if (entry.kind == kind)
      return entry.name;
  return "unknown";
}

/// "full, sliding, ...": every kind's name, for messages.
static std::string supportedKinds() {
  return llvm::join(
      llvm::map_range(kKindNames,
                      [](const KindName &entry) { return entry.name; }),
      ", ");
}

/// Rejects fields written on the layer itself that its kind cannot use;
/// inherited ones (defaults, groups) are simply not used.
Error SpecImporter::checkApplicable(const ObjectView &leaf, LayerKind kind) {
  if (kind != LayerKind::Sliding && leaf.find("window"))
    return leaf.error("window", "only applies to sliding layers");
  if (kind != LayerKind::Chunked && leaf.find("chunk"))
    return leaf.error("chunk", "only applies to chunked layers");
  if (!hasState(kind) && leaf.find("state"))
    return leaf.error("state", "only applies to linear, mamba, hybrid and "
                               "conv layers");
  if (!hasHeads(kind))
    for (StringRef key : kAttentionFields)
      if (leaf.find(key))
        return leaf.error(key,
                          "does not apply to " + kindName(kind) + " layers");
  return Error::success();
}

Expected<Positional> SpecImporter::readPositional(const ObjectView &view,
                                                  int64_t headDim) {
  HYBRID_RETURN_IF_ERROR(
      view.checkKnownKeys({"type", "theta", "rotary_dim", "rotary_offset",
                           "fraction", "scaling", "interleaved"}));
  HYBRID_ASSIGN_OR_RETURN(std::string type, view.getString("type"));
  Positional pos;
  llvm::SmallVector<StringRef, 6> allowed = {"type"};
  if (type == "none") {
    pos.kind = PositionalKind::None;
  } else if (type == "rope" || type == "partial" || type == "proportional") {
    allowed.append({"theta", "scaling", "interleaved"});
    pos.kind = type == "rope"      ? PositionalKind::Rope
               : type == "partial" ? PositionalKind::Partial
                                   : PositionalKind::Proportional;
    if (pos.kind == PositionalKind::Partial)
      allowed.append({"rotary_dim", "rotary_offset"});
    if (pos.kind == PositionalKind::Proportional)
      allowed.push_back("fraction");
  } else {
    return view.error("type", "unknown positional type " +
                                  describe(*view.find("type")) +
                                  " (supported: rope, partial, proportional, "
                                  "none)");
  }
  for (const auto &item : view.raw().items())
    if (!llvm::is_contained(allowed, StringRef(item.key())))
      return view.error(item.key(),
                        "does not apply to positional type '" + type + "'");
  if (pos.kind == PositionalKind::None)
    return pos;

  HYBRID_ASSIGN_OR_RETURN(std::optional<double> theta,
                          view.optPositiveNumber("theta"));
  if (!theta)
    return view.missing("theta");
  pos.theta = *theta;
  HYBRID_ASSIGN_OR_RETURN(std::optional<bool> interleaved,
                          view.optBool("interleaved"));
  pos.interleaved = interleaved.value_or(false);
  if (headDim % 2 != 0)
    return view.error("type",
                      "needs an even head_dim, got " + llvm::Twine(headDim));
  if (pos.kind == PositionalKind::Partial) {
    HYBRID_ASSIGN_OR_RETURN(pos.rotaryDim, view.optPositiveInt("rotary_dim"));
    if (!pos.rotaryDim)
      return view.missing("rotary_dim");
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> offset,
                            view.optNonNegativeInt("rotary_offset"));
    pos.rotaryOffset = offset.value_or(0);
    if (pos.rotaryOffset % 2 != 0 ||
        pos.rotaryOffset + *pos.rotaryDim > headDim)
      return view.error("rotary_offset",
                        "must be even and leave room for rotary_dim (" +
                            llvm::Twine(*pos.rotaryDim) + ") in head_dim (" +
                            llvm::Twine(headDim) + "), got " +
                            llvm::Twine(pos.rotaryOffset));
    HYBRID_RETURN_IF_ERROR(checkRotaryDim(
        view.file(), view.fieldPath("rotary_dim"), *pos.rotaryDim, headDim));
  }
  if (pos.kind == PositionalKind::Proportional) {
    HYBRID_ASSIGN_OR_RETURN(pos.fraction, view.optPositiveNumber("fraction"));
    if (!pos.fraction)
      return view.missing("fraction");
    if (*pos.fraction > 1.0)
      return view.error("fraction", "must be at most 1, got " +
                                        describe(*view.find("fraction")));
  }

  HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> scaling,
                          view.optObject("scaling"));
  if (!scaling)
    return pos;
  HYBRID_ASSIGN_OR_RETURN(std::string scalingType, scaling->getString("type"));
  RopeScalingKind kind;
  llvm::SmallVector<StringRef, 8> keys = {"type", "factor"};
  if (scalingType == "linear") {
    kind = RopeScalingKind::Linear;
  } else if (scalingType == "llama3") {
    kind = RopeScalingKind::Llama3;
    keys.append({"low_freq_factor", "high_freq_factor",
                 "original_max_position_embeddings"});
  } else if (scalingType == "yarn") {
    kind = RopeScalingKind::Yarn;
    keys.append({"original_max_position_embeddings", "beta_fast", "beta_slow",
                 "attention_factor", "truncate"});
  } else {
    return scaling->error("type", "unknown scaling type " +
                                      describe(*scaling->find("type")) +
                                      " (supported: linear, llama3, yarn)");
  }
  HYBRID_RETURN_IF_ERROR(scaling->checkKnownKeys(keys));
  HYBRID_ASSIGN_OR_RETURN(
      pos.scaling, readRopeScaling(*scaling, kind, maxPositionEmbeddings));
  return pos;
}

Expected<RecurrentState> SpecImporter::readState(const Scopes &scopes,
                                                 LayerKind kind) {
  const ObjectView *scope = owner(scopes, "state");
  if (!scope || !scope->has("state"))
    return scopes.front()->missing("state");
  HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> state,
                          scope->optObject("state"));
  HYBRID_RETURN_IF_ERROR(state->checkKnownKeys({"recurrent", "conv"}));
  RecurrentState result;
  if (kind == LayerKind::Conv) {
    // A short convolution keeps its last inputs and nothing else.
    if (state->find("recurrent"))
      return state->error("recurrent", "does not apply to conv layers");
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> conv,
                            state->optPositiveInt("conv"));
    if (!conv)
      return state->missing("conv");
    result.convElements = *conv;
    return result;
  }
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> recurrent,
                          state->optPositiveInt("recurrent"));
  if (!recurrent)
    return state->missing("recurrent");
  result.recurrentElements = *recurrent;
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> conv,
                          state->optNonNegativeInt("conv"));
  result.convElements = conv.value_or(0);
  return result;
}

/// Reads heads, dims, positional encoding and score modifiers. `required`:
/// attention kinds must state their heads; linear layers may omit them.
Error SpecImporter::readAttention(const Scopes &scopes, LayerSpec &layer,
                                  bool required) {
  const ObjectView &leaf = *scopes.front();
  auto at = [&](StringRef key) -> const ObjectView & {
    const ObjectView *scope = owner(scopes, key);
    return scope ? *scope : leaf;
  };
  auto bounded = [&](StringRef key, int64_t value) -> Error {
    if (value > kMaxDim)
      return at(key).error(key, "must be at most " + llvm::Twine(kMaxDim) +
                                    ", got " + llvm::Twine(value));
    return Error::success();
  };

  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> heads,
                          at("num_heads").optPositiveInt("num_heads"));
  if (!heads && required)
    return leaf.missing("num_heads");
  if (heads) {
    layer.numHeads = *heads;
    HYBRID_RETURN_IF_ERROR(bounded("num_heads", *heads));
    HYBRID_ASSIGN_OR_RETURN(
        layer.numKVHeads,
        at("num_kv_heads").positiveIntOr("num_kv_heads", *heads));
    if (layer.numKVHeads > *heads || *heads % layer.numKVHeads != 0)
      return at("num_kv_heads")
          .error("num_kv_heads", "must divide num_heads (" +
                                     llvm::Twine(*heads) + "), got " +
                                     llvm::Twine(layer.numKVHeads));
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> dim,
                            at("head_dim").optPositiveInt("head_dim"));
    if (!dim)
      return leaf.missing("head_dim");
    HYBRID_RETURN_IF_ERROR(bounded("head_dim", *dim));
    layer.headDim = *dim;
    HYBRID_ASSIGN_OR_RETURN(layer.vHeadDim,
                            at("v_head_dim").positiveIntOr("v_head_dim", *dim));
    HYBRID_RETURN_IF_ERROR(bounded("v_head_dim", layer.vHeadDim));
  }

  HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> positional,
                          at("positional").optObject("positional"));
  if (positional) {
    if (layer.headDim == 0)
      return leaf.missing("head_dim");
    HYBRID_ASSIGN_OR_RETURN(layer.positional,
                            readPositional(*positional, layer.headDim));
  }

  HYBRID_ASSIGN_OR_RETURN(std::optional<double> scale,
                          at("scale").optPositiveNumber("scale"));
  if (scale)
    layer.scale = *scale;
  else if (layer.headDim > 0)
    layer.scale = 1.0 / std::sqrt(static_cast<double>(layer.headDim));
  HYBRID_ASSIGN_OR_RETURN(layer.softcap,
                          at("softcap").optPositiveNumber("softcap"));
  HYBRID_ASSIGN_OR_RETURN(std::optional<bool> sinks,
                          at("sinks").optBool("sinks"));
  layer.sinks = sinks.value_or(false);

  HYBRID_ASSIGN_OR_RETURN(
      std::optional<ObjectView> tuning,
      at("temperature_tuning").optObject("temperature_tuning"));
  if (tuning) {
    HYBRID_RETURN_IF_ERROR(
        tuning->checkKnownKeys({"floor_scale", "attn_scale", "offset"}));
    TemperatureTuning t;
    HYBRID_ASSIGN_OR_RETURN(t.floorScale,
                            tuning->positiveNumberOr("floor_scale", 8192.0));
    HYBRID_ASSIGN_OR_RETURN(std::optional<double> attnScale,
                            tuning->optNumber("attn_scale"));
    t.attnScale = attnScale.value_or(0.1);
    HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> offset,
                            tuning->optNonNegativeInt("offset"));
    t.offset = offset.value_or(1);
    if (t.offset > 1)
      return tuning->error("offset",
                           "must be 0 or 1, got " + llvm::Twine(t.offset));
    layer.temperature = t;
  }

  HYBRID_ASSIGN_OR_RETURN(std::optional<bool> kEqV,
                          at("k_eq_v").optBool("k_eq_v"));
  layer.kEqV = kEqV.value_or(false);
  if (layer.kEqV && layer.vHeadDim != layer.headDim)
    return at("k_eq_v").error("k_eq_v", "needs v_head_dim equal to head_dim (" +
                                            llvm::Twine(layer.headDim) +
                                            "), got " +
                                            llvm::Twine(layer.vHeadDim));
  HYBRID_ASSIGN_OR_RETURN(std::optional<bool> latent,
                          at("latent").optBool("latent"));
  layer.latent = latent.value_or(false);
  if (layer.latent && layer.kEqV)
    return at("latent").error("latent",
                              "and k_eq_v exclude each other (a latent cache "
                              "keeps the keys, a K=V one the values)");
  if (layer.latent && layer.vHeadDim > layer.headDim)
    return at("latent").error("latent", "needs v_head_dim at most head_dim (" +
                                            llvm::Twine(layer.headDim) +
                                            "), got " +
                                            llvm::Twine(layer.vHeadDim));
  return Error::success();
}

Expected<LayerSpec> SpecImporter::buildLayer(const Scopes &scopes) {
  const ObjectView &leaf = *scopes.front();
  const ObjectView *kindScope = owner(scopes, "kind");
  if (!kindScope || !kindScope->has("kind"))
    return leaf.missing("kind");
  HYBRID_ASSIGN_OR_RETURN(std::string kindName, kindScope->getString("kind"));
  std::optional<LayerKind> kind = parseKind(kindName);
  if (!kind)
    return kindScope->error(
        "kind", "unknown layer kind " + describe(*kindScope->find("kind")) +
                    " (supported: " + supportedKinds() + ")");
  HYBRID_RETURN_IF_ERROR(checkApplicable(leaf, *kind));

  LayerSpec layer;
  layer.kind = *kind;
  if (hasHeads(*kind)) {
    bool attention = *kind != LayerKind::Linear;
    HYBRID_RETURN_IF_ERROR(readAttention(scopes, layer, attention));
    const ObjectView *causalScope = owner(scopes, "causal");
    if (causalScope) {
      HYBRID_ASSIGN_OR_RETURN(std::optional<bool> causal,
                              causalScope->optBool("causal"));
      layer.mask.causal = causal.value_or(true);
    }
  }

  // The mask's extent; longer than the context would contradict it.
  auto extent = [&](StringRef key) -> Expected<int64_t> {
    const ObjectView *scope = owner(scopes, key);
    if (!scope || !scope->has(key))
      return leaf.missing(key);
    HYBRID_ASSIGN_OR_RETURN(int64_t value, scope->getPositiveInt(key));
    if (maxPositionEmbeddings > 0 && value > maxPositionEmbeddings)
      return scope->error(key, "(" + llvm::Twine(value) +
                                   ") exceeds max_position_embeddings (" +
                                   llvm::Twine(maxPositionEmbeddings) + ")");
    return value;
  };
  if (*kind == LayerKind::Sliding) {
    layer.mask.kind = MaskKind::SlidingWindow;
    HYBRID_ASSIGN_OR_RETURN(layer.mask.window, extent("window"));
  } else if (*kind == LayerKind::Chunked) {
    layer.mask.kind = MaskKind::Chunked;
    HYBRID_ASSIGN_OR_RETURN(layer.mask.chunk, extent("chunk"));
  }

  if (hasState(*kind)) {
    HYBRID_ASSIGN_OR_RETURN(layer.state, readState(scopes, *kind));
  }

  sharedPaths.push_back(leaf.fieldPath("shared_source"));
  if (leaf.has("shared_source")) {
    HYBRID_ASSIGN_OR_RETURN(layer.sharedSource,
                            leaf.optNonNegativeInt("shared_source"));
  }
  return layer;
}

/// A layer reading another's cache must agree with it on everything the
/// cache holds.
Error SpecImporter::checkShared(size_t index) {
  const LayerSpec &layer = layers[index];
  if (!layer.sharedSource)
    return Error::success();
  StringRef path = sharedPaths[index];
  StringRef file = root.file();
  int64_t source = *layer.sharedSource;
  if (source >= static_cast<int64_t>(index))
    return fieldError(file, path,
                      "must name an earlier layer (below " +
                          llvm::Twine(index) + "), got " + llvm::Twine(source));
  const LayerSpec &src = layers[source];
  if (src.sharedSource)
    return fieldError(file, path,
                      "names layer " + llvm::Twine(source) +
                          ", which itself reads layer " +
                          llvm::Twine(*src.sharedSource) +
                          "'s cache; name that layer instead");
  auto mismatch = [&](StringRef what) {
    return fieldError(file, path,
                      "names layer " + llvm::Twine(source) + ", whose " + what +
                          " differs from this layer's");
  };
  if (layer.kind == LayerKind::Linear)
    return fieldError(file, path,
                      "only attention layers keep a KV cache to "
                      "share; this layer is linear");
  if (src.kind != layer.kind)
    return mismatch("kind");
  if (src.mask.kind != layer.mask.kind ||
      src.mask.window != layer.mask.window ||
      src.mask.chunk != layer.mask.chunk ||
      src.mask.causal != layer.mask.causal)
    return mismatch("mask");
  if (src.numKVHeads != layer.numKVHeads || src.headDim != layer.headDim ||
      src.vHeadDim != layer.vHeadDim || src.kEqV != layer.kEqV ||
      src.latent != layer.latent)
    return mismatch("kv shape");
  if (src.positional.kind != layer.positional.kind ||
      src.positional.theta != layer.positional.theta ||
      src.positional.rotaryDim != layer.positional.rotaryDim ||
      src.positional.rotaryOffset != layer.positional.rotaryOffset ||
      src.positional.fraction != layer.positional.fraction ||
      src.positional.interleaved != layer.positional.interleaved)
    return mismatch("positional encoding");
  return Error::success();
}

Error SpecImporter::expand(const ObjectView &entry, Scopes &scopes, int depth) {
  llvm::SmallVector<StringRef, 20> keys(std::begin(kLayerFields),
                                        std::end(kLayerFields));
  keys.append({"repeat", "pattern"});
  HYBRID_RETURN_IF_ERROR(entry.checkKnownKeys(keys));
  HYBRID_ASSIGN_OR_RETURN(int64_t repeat, entry.positiveIntOr("repeat", 1));
  HYBRID_ASSIGN_OR_RETURN(const json *pattern, entry.optArray("pattern"));

  scopes.insert(scopes.begin(), &entry);
  llvm::scope_exit popScope([&] { scopes.erase(scopes.begin()); });
  if (!pattern) {
    for (int64_t r = 0; r < repeat; ++r) {
      if (layers.size() >= static_cast<size_t>(kMaxLayers))
        return entry.error("repeat", "expands the schedule past " +
                                         llvm::Twine(kMaxLayers) + " layers");
      HYBRID_ASSIGN_OR_RETURN(LayerSpec layer, buildLayer(scopes));
      layers.push_back(std::move(layer));
    }
    return Error::success();
  }

  if (entry.find("shared_source"))
    return entry.error("shared_source",
                       "applies to one layer; not allowed on a pattern");
  if (pattern->empty())
    return entry.error("pattern", "must not be empty");
  if (depth >= kMaxNesting)
    return entry.error("pattern", "nests deeper than " +
                                      llvm::Twine(kMaxNesting) + " levels");
  std::string patternPath = entry.fieldPath("pattern");
  for (int64_t r = 0; r < repeat; ++r) {
    for (size_t i = 0; i < pattern->size(); ++i) {
      const json &member = (*pattern)[i];
      std::string path = indexPath(patternPath, i);
      if (!member.is_object())
        return fieldError(entry.file(), path,
                          "must be an object, got " + describe(member));
      ObjectView view(member, entry.file(), path);
      HYBRID_RETURN_IF_ERROR(expand(view, scopes, depth + 1));
    }
  }
  return Error::success();
}

static bool isIdentifier(StringRef name) {
  if (name.empty() || llvm::isDigit(name.front()))
    return false;
  return llvm::all_of(name,
                      [](char c) { return llvm::isAlnum(c) || c == '_'; });
}

Expected<ModelSpec> SpecImporter::run() {
  HYBRID_RETURN_IF_ERROR(root.checkKnownKeys(
      {"format", "version", "name", "description", "hidden_size",
       "max_position_embeddings", "defaults", "layers"}));
  HYBRID_ASSIGN_OR_RETURN(std::string format, root.getString("format"));
  if (format != "hybrid-schedule")
    return root.error("format", "must be 'hybrid-schedule', got " +
                                    describe(*root.find("format")));
  if (!root.find("version"))
    return root.missing("version");
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> version,
                          root.optInt("version"));
  if (version != 1)
    return root.error("version", "unsupported version " +
                                     describe(*root.find("version")) +
                                     " (supported: 1)");

  ModelSpec spec;
  spec.modelType = "spec";
  HYBRID_ASSIGN_OR_RETURN(std::optional<std::string> name,
                          root.optString("name"));
  spec.name = name.value_or("model");
  if (!isIdentifier(spec.name))
    return root.error("name", "must be an identifier ([A-Za-z_][A-Za-z0-9_]*), "
                              "got " +
                                  describe(*root.find("name")));
  HYBRID_ASSIGN_OR_RETURN(std::optional<std::string> description,
                          root.optString("description"));
  (void)description;
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> hidden,
                          root.optPositiveInt("hidden_size"));
  spec.hiddenSize = hidden.value_or(0);
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> maxPos,
                          root.optPositiveInt("max_position_embeddings"));
  maxPositionEmbeddings = maxPos.value_or(0);
  spec.maxPositionEmbeddings = maxPositionEmbeddings;

  Scopes scopes;
  HYBRID_ASSIGN_OR_RETURN(std::optional<ObjectView> defaults,
                          root.optObject("defaults"));
  if (defaults) {
    if (defaults->find("shared_source"))
      return defaults->error("shared_source",
                             "applies to one layer; not allowed in defaults");
    HYBRID_RETURN_IF_ERROR(defaults->checkKnownKeys(kLayerFields));
    scopes.push_back(&*defaults);
  }

  HYBRID_ASSIGN_OR_RETURN(const json *list, root.optArray("layers"));
  if (!list)
    return root.missing("layers");
  if (list->empty())
    return root.error("layers", "must not be empty");
  for (size_t i = 0; i < list->size(); ++i) {
    std::string path = indexPath(root.fieldPath("layers"), i);
    if (!(*list)[i].is_object())
      return fieldError(root.file(), path,
                        "must be an object, got " + describe((*list)[i]));
    ObjectView entry((*list)[i], root.file(), path);
    HYBRID_RETURN_IF_ERROR(expand(entry, scopes, 0));
  }
  for (size_t i = 0; i < layers.size(); ++i)
    HYBRID_RETURN_IF_ERROR(checkShared(i));
  spec.layers = std::move(layers);
  return spec;
}

Expected<ModelSpec> hybrid::spec::importScheduleSpec(const json &spec,
                                                     StringRef fileName) {
  if (!spec.is_object())
    return makeError(fileName +
                     ": top-level value must be a JSON object, got " +
                     describe(spec));
  ObjectView root(spec, fileName, "");
  return SpecImporter(root).run();
}
