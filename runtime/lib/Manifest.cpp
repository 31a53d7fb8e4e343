//===- Manifest.cpp - Reading manifest.json -------------------------------===//

#include "hybrid-rt/Manifest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

using json = nlohmann::json;
using namespace hybrid::rt;

//===----------------------------------------------------------------------===//
// Mask geometry
//===----------------------------------------------------------------------===//

bool LayerSpec::visible(int64_t pq, int64_t pk) const {
  if (causal && pk > pq)
    return false;
  if (window > 0 && (causal ? pq - pk >= window : std::abs(pq - pk) >= window))
    return false;
  if (chunk > 0 && pq / chunk != pk / chunk)
    return false;
  return true;
}

int64_t LayerSpec::firstVisibleKey(int64_t pq) const {
  int64_t first = 0;
  if (window > 0)
    first = std::max(first, pq - window + 1);
  if (chunk > 0)
    first = std::max(first, pq / chunk * chunk);
  return first;
}

int64_t LayerSpec::countVisiblePairs(int64_t numQueries,
                                     int64_t numKeys) const {
  int64_t pairs = 0;
  for (int64_t pq = numKeys - numQueries; pq < numKeys; ++pq) {
    // The visible keys of one query form one interval [lo, hi).
    int64_t lo = firstVisibleKey(pq), hi = causal ? pq + 1 : numKeys;
    if (window > 0 && !causal)
      hi = std::min(hi, pq + window);
    if (chunk > 0)
      hi = std::min(hi, (pq / chunk + 1) * chunk);
    pairs += std::max<int64_t>(0, std::min(hi, numKeys) - lo);
  }
  return pairs;
}

//===----------------------------------------------------------------------===//
// Parsing
//===----------------------------------------------------------------------===//

namespace {
/// A failure naming the JSON path of the offending field.
struct FieldError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Typed access to one JSON object that names `path` in its errors.
class Fields {
public:
  Fields(const json &object, std::string path)
      : object(object), path(std::move(path)) {
    if (!object.is_object())
      throw FieldError(this->path + ": expected an object");
  }

  bool has(const char *key) const {
    return object.contains(key) && !object.at(key).is_null();
  }
  const json &at(const char *key) const {
    if (!object.contains(key))
      throw FieldError(where(key) + ": missing");
    return object.at(key);
  }
  std::string where(const char *key) const {
    return path.empty() ? key : path + "." + key;
  }

  int64_t integer(const char *key, std::optional<int64_t> fallback = {}) const {
    if (!has(key) && fallback)
      return *fallback;
    const json &v = at(key);
    if (!v.is_number_integer())
      throw FieldError(where(key) + ": expected an integer");
    return v.get<int64_t>();
  }
  double number(const char *key, std::optional<double> fallback = {}) const {
    if (!has(key) && fallback)
      return *fallback;
    const json &v = at(key);
    if (!v.is_number())
      throw FieldError(where(key) + ": expected a number");
    return v.get<double>();
  }
  bool boolean(const char *key, std::optional<bool> fallback = {}) const {
    if (!has(key) && fallback)
      return *fallback;
    const json &v = at(key);
    if (!v.is_boolean())
      throw FieldError(where(key) + ": expected true or false");
    return v.get<bool>();
  }
  std::string string(const char *key,
                     std::optional<std::string> fallback = {}) const {
    if (!has(key) && fallback)
      return *fallback;
    const json &v = at(key);
    if (!v.is_string())
      throw FieldError(where(key) + ": expected a string");
    return v.get<std::string>();
  }
  Fields child(const char *key) const { return Fields(at(key), where(key)); }

private:
  const json &object;
  std::string path;
};
} // namespace

static Positional parsePositional(const Fields &f) {
  Positional p;
  std::string type = f.string("type");
  if (type == "none")
    return p;
  if (type == "rope")
    p.kind = PositionalKind::rope;
  else if (type == "partial")
    p.kind = PositionalKind::partial;
  else if (type == "proportional")
    p.kind = PositionalKind::proportional;
  else
    throw FieldError(f.where("type") + ": unknown positional type '" + type +
                     "'");
  p.theta = f.number("theta");
  p.rotaryDim = f.integer("rotary_dim", 0);
  p.rotaryOffset = f.integer("rotary_offset", 0);
  p.fraction = f.number("fraction", 0.0);
  p.interleaved = f.boolean("interleaved", false);
  if (f.has("scaling")) {
    Fields s = f.child("scaling");
    RopeScaling &r = p.scaling;
    r.type = s.string("type");
    if (r.type != "linear" && r.type != "llama3" && r.type != "yarn")
      throw FieldError(s.where("type") + ": unknown RoPE scaling '" + r.type +
                       "'");
    r.factor = s.number("factor");
    r.originalMaxPosition = s.integer("original_max_position_embeddings", 0);
    r.lowFreqFactor = s.number("low_freq_factor", r.lowFreqFactor);
    r.highFreqFactor = s.number("high_freq_factor", r.highFreqFactor);
    r.betaFast = s.number("beta_fast", r.betaFast);
    r.betaSlow = s.number("beta_slow", r.betaSlow);
    r.attentionFactor = s.number("attention_factor", 0.0);
    r.truncate = s.boolean("truncate", true);
  }
  return p;
}

static LayerSpec parseLayer(const Fields &f) {
  LayerSpec l;
  l.index = f.integer("index");
  l.kind = f.string("kind");
  l.kernel = f.string("kernel", std::string());
  if (!l.hasKernel())
    return l;
  l.numHeads = f.integer("num_heads");
  l.numKvHeads = f.integer("num_kv_heads");
  l.headDim = f.integer("head_dim");
  l.vHeadDim = f.integer("v_head_dim", l.headDim);
  l.window = f.integer("window", 0);
  l.chunk = f.integer("chunk", 0);
  l.causal = f.boolean("causal", true);
  l.scale = f.number("scale");
  l.softcap = f.number("softcap", 0.0);
  l.sinks = f.boolean("sinks", false);
  if (f.has("temperature_tuning")) {
    Fields t = f.child("temperature_tuning");
    l.temperature =
        TemperatureTuning{t.number("floor_scale"), t.number("attn_scale"),
                          t.integer("offset", 1)};
  }
  if (f.has("positional"))
    l.positional = parsePositional(f.child("positional"));
  if (f.has("cache")) {
    Fields c = f.child("cache");
    l.cachePolicy = c.string("policy");
    l.sourceLayer = c.integer("source_layer", -1);
    l.kEqV = c.boolean("k_eq_v", false);
    l.latent = c.boolean("latent", false);
    if (l.latent && (l.kEqV || l.vHeadDim > l.headDim))
      throw FieldError(c.where("latent") +
                       ": needs v_head_dim at most head_dim, and no k_eq_v");
  }
  if (l.numHeads <= 0 || l.numKvHeads <= 0 || l.numHeads % l.numKvHeads)
    throw FieldError(f.where("num_kv_heads") +
                     ": must divide num_heads and be positive");
  if (l.headDim <= 0 || l.vHeadDim <= 0)
    throw FieldError(f.where(l.headDim <= 0 ? "head_dim" : "v_head_dim") +
                     ": must be positive");
  if (l.window < 0 || l.chunk < 0)
    throw FieldError(f.where(l.window < 0 ? "window" : "chunk") +
                     ": must be positive or null");
  // The reference rotates by these (the kernels were compiled with them).
  const Positional &p = l.positional;
  if (p.kind != PositionalKind::none) {
    std::string where = f.where("positional");
    if (!(p.theta > 0) || !std::isfinite(p.theta))
      throw FieldError(where + ".theta: must be positive");
    if (p.rotaryDim < 0 || p.rotaryDim > l.headDim || p.rotaryDim % 2)
      throw FieldError(where + ".rotary_dim: must be even, 0 to head_dim (" +
                       std::to_string(l.headDim) + ")");
    if (p.rotaryOffset < 0 || p.rotaryOffset % 2 ||
        p.rotaryOffset + p.rotaryDim > l.headDim ||
        (p.rotaryOffset != 0 && p.kind != PositionalKind::partial))
      throw FieldError(where +
                       ".rotary_offset: must be even, with rotary_dim "
                       "at most head_dim (" +
                       std::to_string(l.headDim) + "), and 0 unless partial");
    if (!p.scaling.type.empty() &&
        (!(p.scaling.factor > 0) || !std::isfinite(p.scaling.factor)))
      throw FieldError(where + ".scaling.factor: must be positive");
  }
  return l;
}

/// Checks layer `i`'s cache policy against its mask and, for a shared
/// cache, its source: the runtime sizes a cache by its layer's mask, and a
/// shared layer reads its source's rows as its own.
static void checkCache(const std::vector<LayerSpec> &layers, size_t i) {
  const LayerSpec &l = layers[i];
  std::string where = "layers[" + std::to_string(i) + "].cache";
  const std::string &policy = l.cachePolicy;
  if (policy != "shared" && l.sourceLayer != -1)
    throw FieldError(where + ".source_layer: only a shared cache has one");
  if (policy.empty() || policy == "full")
    return;
  if (policy == "ring" || policy == "chunk") {
    bool ring = policy == "ring";
    if (!l.causal || (ring ? l.window : l.chunk) <= 0)
      throw FieldError(where + ".policy: a " + policy + " cache needs a " +
                       (ring ? "causal sliding window" : "causal chunked") +
                       " mask");
    return;
  }
  if (policy == "none")
    throw FieldError(where + ".policy: an attention layer needs a cache, "
                             "got none");
  if (policy != "shared")
    throw FieldError(where + ".policy: unknown policy '" + policy + "'");
  if (l.sourceLayer < 0 || l.sourceLayer >= int64_t(i))
    throw FieldError(where + ".source_layer: must name an earlier layer");
  const LayerSpec &src = layers[l.sourceLayer];
  std::string source = "layer " + std::to_string(l.sourceLayer);
  if (!src.hasKernel() || src.cachePolicy == "shared")
    throw FieldError(where + ".source_layer: " + source +
                     " stores no cache of its own");
  if (src.numKvHeads != l.numKvHeads || src.headDim != l.headDim ||
      src.vHeadDim != l.vHeadDim || src.kEqV != l.kEqV ||
      src.latent != l.latent)
    throw FieldError(where + ".source_layer: " + source +
                     " caches keys and values of another shape");
  if (src.window != l.window || src.chunk != l.chunk || src.causal != l.causal)
    throw FieldError(where + ".source_layer: " + source +
                     " has another mask (its cache keeps what its own shows)");
}

static KernelSpec parseKernel(const Fields &f) {
  KernelSpec k;
  k.entry = f.string("entry");
  k.prepareQ = f.string("prepare_q");
  k.prepareK = f.string("prepare_k", std::string());
  k.numHeads = f.integer("num_heads");
  k.numKvHeads = f.integer("num_kv_heads");
  k.headDim = f.integer("head_dim");
  k.vHeadDim = f.integer("v_head_dim", k.headDim);
  k.sinks = f.boolean("sinks", false);
  k.window = f.integer("window", 0);
  k.chunk = f.integer("chunk", 0);
  k.causal = f.boolean("causal");
  k.qTile = f.integer("q_tile");
  k.kTile = f.integer("k_tile");
  if (f.has("tuning")) {
    Fields tuning = f.child("tuning");
    k.signature = tuning.string("signature");
    k.tuningSource = tuning.string("source");
  }
  k.decode = f.string("decode", std::string());
  if (!k.decode.empty()) {
    k.decodeCombine = f.string("decode_combine");
    k.decodeQTile = f.integer("decode_q_tile");
    if (k.decodeQTile <= 0)
      throw FieldError(f.where("decode_q_tile") + ": must be positive");
  }
  k.derivesKeys = f.boolean("derives_keys", false);
  k.valuesInKeys = f.boolean("values_in_keys", false);
  if (k.derivesKeys && k.decode.empty())
    throw FieldError(f.where("derives_keys") +
                     ": only a decode kernel derives keys");
  if (k.qTile <= 0 || k.kTile <= 0)
    throw FieldError(f.where("q_tile") + ": tile sizes must be positive");
  k.prepareV = f.string("prepare_v", std::string());
  k.prepareQBF16 = f.string("prepare_q_bf16", std::string());
  k.prepareKBF16 = f.string("prepare_k_bf16", std::string());
  k.entryOutBF16 = f.string("entry_out_bf16", std::string());
  k.entrySplit = f.string("entry_split", std::string());
  k.prepareStep = f.string("prepare_step", std::string());
  k.prepareStepBF16 = f.string("prepare_step_bf16", std::string());
  k.decodeCombineBF16 = f.string("decode_combine_bf16", std::string());
  k.decodeBF16 = f.string("decode_bf16", std::string());
  k.deriveKV = f.string("derive_kv", std::string());
  k.cacheDtype = f.string("cache_dtype", std::string("f32"));
  if (k.cacheDtype != "f32" && k.cacheDtype != "bf16" &&
      k.cacheDtype != "f16" && k.cacheDtype != "f8")
    throw FieldError(f.where("cache_dtype") +
                     ": must be f32, bf16, f16 or f8, not '" + k.cacheDtype +
                     "'");
  k.steps = f.string("steps", std::string());
  if (!k.steps.empty() && (k.cachesF32() || k.derivesKeys))
    throw FieldError(f.where("steps") +
                     ": only kernels of bf16, f16 or f8 caches that store keys "
                     "have their own flash kernel for steps");
  if (k.steps.empty() && !k.cachesF32() && !k.decode.empty() && !k.derivesKeys)
    throw FieldError(f.where("steps") + ": a kernel of " + k.cacheDtype +
                     " caches needs the flash kernel over them for steps of "
                     "many tokens");
  if (!k.deriveKV.empty() && !k.derivesKeys)
    throw FieldError(f.where("derive_kv") +
                     ": only a kernel that derives keys (derives_keys) has it");
  for (auto [key, symbol] : {std::pair{"prepare_step", &k.prepareStep},
                             {"prepare_step_bf16", &k.prepareStepBF16},
                             {"decode_combine_bf16", &k.decodeCombineBF16},
                             {"decode_bf16", &k.decodeBF16}})
    if (k.decode.empty() && !symbol->empty())
      throw FieldError(f.where(key) +
                       ": step kernels belong to layers with a decode kernel");
  if (!k.entrySplit.empty() && k.decodeCombine.empty())
    throw FieldError(f.where("entry_split") +
                     ": a split-K flash kernel needs decode_combine");
  k.threads = f.integer("threads", 0);
  k.flashThreads = f.integer("flash_threads", k.threads);
  k.sharedBytes = f.integer("shared_bytes", 0);
  if (k.sharedBytes < 0 || k.sharedBytes > (1 << 30))
    throw FieldError(f.where("shared_bytes") + ": must be 0 to 2^30");
  k.valueSlices = f.integer("value_slices", 1);
  k.tma = f.boolean("tma", false);
  if (k.valueSlices <= 0 || k.vHeadDim % k.valueSlices != 0)
    throw FieldError(f.where("value_slices") +
                     ": must be a positive divisor of v_head_dim");
  return k;
}

bool hybrid::rt::loadManifest(const std::string &dir, Manifest &manifest,
                              std::string &error) {
  std::string path = dir + "/manifest.json";
  std::ifstream file(path);
  if (!file) {
    error = path + ": cannot be read";
    return false;
  }
  std::stringstream text;
  text << file.rdbuf();
  json root = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    error = path + ": not valid JSON";
    return false;
  }
  try {
    Fields f(root, "");
    Manifest m;
    m.dir = dir;
    m.version = f.integer("version");
    // Version 2: CPU flash kernels take their query positions per work item
    // (version 1's have one argument less); 3: a CPU decode work item covers
    // every kv head and decode_q_tile positions (version 2's, one kv head and
    // one position: the same call would skip heads); 4: CPU flash kernels
    // take the key count and the first key's row (for ring caches); 5: so
    // do GPU flash kernels, with the ring's rows, and GPU decode kernels
    // take the ring's rows (device caches hold mirror rows past them); 6:
    // each kernel states its mask; 7: TMA flash kernels take their tensor
    // maps by value (version 6's, pointers to device memory); 8: GPU
    // prepare and decode kernels read the first position from a device
    // length (version 7's take it as a scalar), kept by the cache kernels;
    // 9: GPU combine kernels take the length and a count to advance it by
    // (version 8's, neither); 10: K=V layers have kernels of their own, and
    // on CPUs their decode kernel derives keys from cached values
    // (derives_keys; version 9's read stored keys); 11: so do GPU ones
    // (version 10's kept derived keys in the cache), with derive_kv; 12:
    // GPU decode kernels merge their splits into the output rows and
    // advance the length themselves, taking out rows and counters
    // (version 11's wrote partials for decode_combine), with decode_bf16;
    // 13: CPU kernels state their caches' element type (cache_dtype), bf16
    // ones with a flash kernel over them (steps); 14: GPU kernels reading
    // lengths take one per cached sequence and the sequence of each batch
    // entry (version 13's, one length per layer); 15: latent caches (a
    // version 14 runtime would read their values as rows of their own).
    if (m.version != 15)
      throw FieldError("version: this runtime reads version 15, not " +
                       std::to_string(m.version) +
                       (m.version < 15 ? " (artifacts of an older "
                                         "hybrid-compile: compile them again)"
                                       : ""));
    m.target = f.string("target");
    m.library = f.string("library");
    m.cubin = f.string("cubin", std::string());
    m.modelType = f.string("model_type", std::string());
    m.name = f.string("name", std::string());
    const json &kernels = f.at("kernels");
    if (!kernels.is_object())
      throw FieldError("kernels: expected an object");
    bool onGPU = m.target.rfind("cuda:", 0) == 0;
    for (auto &[symbol, value] : kernels.items()) {
      KernelSpec k = parseKernel(Fields(value, "kernels." + symbol));
      // GPU kernels launch with a block size and convert values themselves.
      if (onGPU && k.threads <= 0)
        throw FieldError("kernels." + symbol +
                         ".threads: a GPU kernel needs a positive block size");
      if (onGPU && (k.flashThreads <= 0 || k.flashThreads % 32))
        throw FieldError("kernels." + symbol +
                         ".flash_threads: must be a positive multiple of 32");
      if (onGPU && k.prepareV.empty())
        throw FieldError("kernels." + symbol +
                         ".prepare_v: a GPU kernel needs one");
      m.kernels[symbol] = std::move(k);
    }
    if (f.has("resources")) {
      const json &resources = f.at("resources");
      if (!resources.is_object())
        throw FieldError("resources: expected an object");
      for (auto &[function, value] : resources.items()) {
        Fields r(value, "resources." + function);
        FunctionResources &out = m.resources[function];
        out.registers = r.integer("registers");
        out.stackBytes = r.integer("stack_bytes", 0);
        out.spillStoreBytes = r.integer("spill_store_bytes", 0);
        out.spillLoadBytes = r.integer("spill_load_bytes", 0);
        out.performanceLosses = r.integer("performance_losses", 0);
      }
    }
    if (f.has("conversions")) {
      Fields conversions = f.child("conversions");
      m.convertBF16ToF32 = conversions.string("bf16_to_f32");
      m.convertF32ToBF16 = conversions.string("f32_to_bf16");
      Fields cacheKernels = f.child("cache_kernels");
      m.storeCacheRows = cacheKernels.string("store_rows");
      m.advanceLength = cacheKernels.string("advance_length");
    }
    const json &layers = f.at("layers");
    if (!layers.is_array())
      throw FieldError("layers: expected an array");
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string where = "layers[" + std::to_string(i) + "]";
      LayerSpec layer = parseLayer(Fields(layers[i], where));
      if (layer.index != int64_t(i))
        throw FieldError(where + ".index: expected " + std::to_string(i));
      if (layer.hasKernel()) {
        auto it = m.kernels.find(layer.kernel);
        if (it == m.kernels.end())
          throw FieldError(where + ".kernel: '" + layer.kernel +
                           "' is not in kernels");
        const KernelSpec &k = it->second;
        if (k.numHeads != layer.numHeads || k.numKvHeads != layer.numKvHeads ||
            k.headDim != layer.headDim || k.vHeadDim != layer.vHeadDim ||
            k.sinks != layer.sinks)
          throw FieldError(where + ".kernel: shapes differ from kernels." +
                           layer.kernel);
        if (k.window != layer.window || k.chunk != layer.chunk ||
            k.causal != layer.causal)
          throw FieldError(where + ".kernel: the mask differs from kernels." +
                           layer.kernel + "'s");
        // Caches of K=V layers keep values only.
        if (!k.decode.empty() && k.derivesKeys != layer.kEqV)
          throw FieldError(where + ".kernel: kernels." + layer.kernel +
                           (k.derivesKeys
                                ? " derives keys from values, but the layer "
                                  "caches its keys"
                                : " reads cached keys, but the layer's cache "
                                  "keeps values only (k_eq_v)"));
        if (k.valuesInKeys != layer.latent)
          throw FieldError(where + ".kernel: kernels." + layer.kernel +
                           (k.valuesInKeys
                                ? " reads values from the keys, but the layer "
                                  "caches its values"
                                : " reads cached values, but the layer's "
                                  "cache keeps keys only (latent)"));
      }
      m.layers.push_back(std::move(layer));
      if (m.layers.back().hasKernel())
        checkCache(m.layers, i);
    }
    manifest = std::move(m);
    return true;
  } catch (const FieldError &e) {
    error = path + ": " + e.what();
  } catch (const json::exception &e) {
    error = path + ": " + e.what();
  }
  return false;
}
