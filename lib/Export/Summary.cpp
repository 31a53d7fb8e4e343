//===- Summary.cpp - The JSON summary of a planned schedule --------------===//

#include "hybrid/Export/Summary.h"

using namespace mlir;
using namespace hybrid;
using json = nlohmann::ordered_json;

/// A number, or null when it is 0 ("not set" in the attributes).
template <typename T> static json orNull(T value) {
  return value == T(0) ? json(nullptr) : json(value);
}

static json getScaling(RopeScalingAttr scaling) {
  if (!scaling)
    return nullptr;
  json out = {{"type", stringifyRopeScalingKind(scaling.getKind()).str()},
              {"factor", double(scaling.getFactor())}};
  auto add = [&](const char *key, double value) {
    if (value != 0)
      out[key] = value;
  };
  if (scaling.getOriginalMaxPosition())
    out["original_max_position_embeddings"] = scaling.getOriginalMaxPosition();
  add("low_freq_factor", scaling.getLowFreqFactor());
  add("high_freq_factor", scaling.getHighFreqFactor());
  add("beta_fast", scaling.getBetaFast());
  add("beta_slow", scaling.getBetaSlow());
  add("attention_factor", scaling.getAttentionFactor());
  if (scaling.getKind() == RopeScalingKind::yarn)
    out["truncate"] = scaling.getTruncate();
  return out;
}

/// `rotary_dim` is the number of dims that rotate, whatever the kind; the
/// first of them is `rotary_offset`.
static json getPositional(LayerOp layer) {
  if (!layer.getPositional())
    return nullptr;
  PositionalAttr pos = *layer.getPositional();
  int64_t headDim = layer.getHeadDim().value_or(0);
  int64_t rotaryDim = 0;
  switch (pos.getKind()) {
  case PositionalKind::none:
    break;
  case PositionalKind::rope:
    rotaryDim = headDim;
    break;
  case PositionalKind::partial:
    rotaryDim = pos.getRotaryDim();
    break;
  case PositionalKind::proportional:
    rotaryDim =
        2 * static_cast<int64_t>(std::floor(pos.getFraction() * headDim / 2));
    break;
  }
  return {{"type", stringifyPositionalKind(pos.getKind()).str()},
          {"theta", orNull(double(pos.getTheta()))},
          {"rotary_dim", orNull(rotaryDim)},
          {"rotary_offset", pos.getRotaryOffset()},
          {"fraction", orNull(double(pos.getFraction()))},
          {"interleaved", pos.getInterleaved()},
          {"scaling", getScaling(pos.getScaling())}};
}

static json getCache(LayerOp layer) {
  CacheAttr cache = layer.getCacheAttr();
  CachePlanAttr plan = layer.getCachePlanAttr();
  if (!cache || !plan)
    return nullptr;
  json out = {{"policy", stringifyCachePolicy(cache.getPolicy()).str()},
              {"source_layer", cache.getSourceLayer() >= 0
                                   ? json(cache.getSourceLayer())
                                   : json(nullptr)},
              {"k_eq_v", cache.getKEqV()},
              {"latent", cache.getLatent()},
              {"bytes_per_token", plan.getBytesPerToken()},
              {"tokens", plan.getTokens()},
              {"bytes", plan.getBytes()}};
  if (plan.getStateBytes())
    out["state_bytes"] = plan.getStateBytes();
  return out;
}

json hybrid::buildSummary(ScheduleOp schedule) {
  json layers = json::array();
  (void)schedule.walkLayers([&](int64_t index, LayerOp layer) {
    std::optional<MaskAttr> mask = layer.getMask();
    std::optional<ScoreAttr> score = layer.getScore();
    json entry = {
        {"index", index},
        {"kind", stringifyLayerKind(layer.getKind()).str()},
        {"window", mask ? orNull(mask->getWindow()) : json(nullptr)},
        {"chunk", mask ? orNull(mask->getChunk()) : json(nullptr)},
        {"causal", mask ? json(mask->getCausal()) : json(nullptr)},
        {"num_heads", orNull(layer.getNumHeads().value_or(0))},
        {"num_kv_heads", orNull(layer.getNumKvHeads().value_or(0))},
        {"head_dim", orNull(layer.getHeadDim().value_or(0))},
        {"v_head_dim", orNull(layer.getValueHeadDim())},
        {"scale", score ? json(double(score->getScale())) : json(nullptr)},
        {"softcap",
         score ? orNull(double(score->getSoftcap())) : json(nullptr)},
        {"sinks", score && score->getSinks()},
        {"temperature_tuning", nullptr},
        {"positional", getPositional(layer)},
        {"cache", getCache(layer)}};
    if (score && score->getTemperature())
      entry["temperature_tuning"] = {
          {"floor_scale", double(score->getTemperature().getFloorScale())},
          {"attn_scale", double(score->getTemperature().getAttnScale())},
          {"offset", score->getTemperature().getOffset()}};
    if (StateAttr state = layer.getStateAttr())
      entry["state"] = {{"recurrent_elements", state.getRecurrent()},
                        {"conv_elements", state.getConv()}};
    if (FlatSymbolRefAttr kernel = layer.getKernelAttr())
      entry["kernel"] = kernel.getValue().str();
    layers.push_back(std::move(entry));
    return success();
  });

  json out = {{"model_type", schedule.getModelType().value_or("").str()},
              {"name", schedule.getSymName().str()},
              {"num_layers", schedule.getNumLayers()},
              {"layers", std::move(layers)}};
  if (CacheSummaryAttr summary = schedule.getCacheSummaryAttr()) {
    double total = summary.getTotal(), baseline = summary.getAllFullBaseline();
    out["kv_cache_bytes"] = {
        {"max_seq", summary.getMaxSeq()},
        {"storage", stringifyStorageType(summary.getStorage()).str()},
        {"total", summary.getTotal()},
        {"all_full_baseline", summary.getAllFullBaseline()},
        {"fraction_of_baseline", baseline > 0 ? total / baseline : 1.0}};
  }
  return out;
}
