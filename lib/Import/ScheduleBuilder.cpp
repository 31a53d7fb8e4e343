//===- ScheduleBuilder.cpp - ModelSpec to hybrid.schedule ----------------===//

#include "hybrid/Import/ScheduleBuilder.h"
#include "mlir/IR/Verifier.h"

#include <cmath>

using namespace mlir;
using namespace hybrid;
namespace s = hybrid::spec;
using EmitFn = function_ref<InFlightDiagnostic()>;

//===----------------------------------------------------------------------===//
// Spec values to attributes
//===----------------------------------------------------------------------===//

static LayerKind convert(s::LayerKind kind) {
  switch (kind) {
  case s::LayerKind::Full:
    return LayerKind::full;
  case s::LayerKind::Sliding:
    return LayerKind::sliding;
  case s::LayerKind::Chunked:
    return LayerKind::chunked;
  case s::LayerKind::Linear:
    return LayerKind::linear;
  case s::LayerKind::Mamba:
    return LayerKind::mamba;
  case s::LayerKind::Hybrid:
    return LayerKind::hybrid;
  case s::LayerKind::Mlp:
    return LayerKind::mlp;
  case s::LayerKind::Conv:
    return LayerKind::conv;
  }
  llvm_unreachable("unknown layer kind");
}

static MaskAttr convert(EmitFn emitError, MLIRContext *ctx,
                        const s::Mask &mask) {
  MaskKind kind = mask.kind == s::MaskKind::SlidingWindow
                      ? MaskKind::sliding_window
                  : mask.kind == s::MaskKind::Chunked ? MaskKind::chunked
                                                      : MaskKind::full;
  return MaskAttr::getChecked(emitError, ctx, kind, mask.window.value_or(0),
                              mask.chunk.value_or(0), mask.causal);
}

static RopeScalingAttr convert(EmitFn emitError, MLIRContext *ctx,
                               const s::RopeScaling &rs) {
  RopeScalingKind kind =
      rs.kind == s::RopeScalingKind::Llama3 ? RopeScalingKind::llama3
      : rs.kind == s::RopeScalingKind::Yarn ? RopeScalingKind::yarn
                                            : RopeScalingKind::linear;
  return RopeScalingAttr::getChecked(
      emitError, ctx, kind, Real(rs.factor), rs.originalMaxPosition.value_or(0),
      Real(rs.lowFreqFactor.value_or(0)), Real(rs.highFreqFactor.value_or(0)),
      Real(rs.betaFast.value_or(0)), Real(rs.betaSlow.value_or(0)),
      Real(rs.attentionFactor.value_or(0)), rs.truncate);
}

static PositionalAttr convert(EmitFn emitError, MLIRContext *ctx,
                              const s::Positional &pos) {
  PositionalKind kind;
  switch (pos.kind) {
  case s::PositionalKind::None:
    return PositionalAttr::getChecked(emitError, ctx, PositionalKind::none,
                                      Real(), int64_t(0), Real(),
                                      RopeScalingAttr(), /*interleaved=*/false,
                                      /*rotary_offset=*/int64_t(0));
  case s::PositionalKind::Rope:
    kind = PositionalKind::rope;
    break;
  case s::PositionalKind::Partial:
    kind = PositionalKind::partial;
    break;
  case s::PositionalKind::Proportional:
    kind = PositionalKind::proportional;
    break;
  }
  RopeScalingAttr scaling;
  if (pos.scaling && !(scaling = convert(emitError, ctx, *pos.scaling)))
    return {};
  return PositionalAttr::getChecked(emitError, ctx, kind, Real(pos.theta),
                                    pos.rotaryDim.value_or(0),
                                    Real(pos.fraction.value_or(0)), scaling,
                                    pos.interleaved, pos.rotaryOffset);
}

/// The inherent attributes of one layer; identical layers get the same
/// (uniqued) dictionary, which is what pattern detection compares.
static FailureOr<DictionaryAttr> getLayerAttributes(EmitFn emitError,
                                                    MLIRContext *ctx,
                                                    const s::LayerSpec &layer) {
  Builder b(ctx);
  NamedAttrList attrs;
  bool invalid = false;
  auto set = [&](StringRef name, Attribute value) {
    invalid |= !value;
    if (value)
      attrs.set(name, value);
  };
  set("kind", LayerKindAttr::get(ctx, convert(layer.kind)));
  auto setPositive = [&](StringRef name, int64_t value) {
    if (value > 0)
      set(name, b.getI64IntegerAttr(value));
  };
  setPositive("num_heads", layer.numHeads);
  setPositive("num_kv_heads", layer.numKVHeads);
  setPositive("head_dim", layer.headDim);
  if (layer.vHeadDim > 0 && layer.vHeadDim != layer.headDim)
    set("v_head_dim", b.getI64IntegerAttr(layer.vHeadDim));

  if (s::attends(layer.kind)) {
    set("mask", convert(emitError, ctx, layer.mask));
    set("positional", convert(emitError, ctx, layer.positional));
    TemperatureTuningAttr temperature;
    if (layer.temperature &&
        !(temperature = TemperatureTuningAttr::getChecked(
              emitError, ctx, Real(layer.temperature->floorScale),
              Real(layer.temperature->attnScale), layer.temperature->offset)))
      return failure();
    set("score", ScoreAttr::getChecked(emitError, ctx, Real(layer.scale),
                                       Real(layer.softcap.value_or(0)),
                                       layer.sinks, temperature));
    const int64_t unset = 0;
    if (layer.sharedSource)
      set("cache", CacheAttr::getChecked(emitError, ctx, CachePolicy::shared,
                                         unset, unset, *layer.sharedSource,
                                         layer.kEqV, layer.latent));
    else if (layer.kEqV || layer.latent)
      set("cache",
          getImpliedCache(ctx, dyn_cast_or_null<MaskAttr>(attrs.get("mask")),
                          layer.kEqV, layer.latent));
  }
  if (layer.state)
    set("state",
        StateAttr::getChecked(emitError, ctx, layer.state->recurrentElements,
                              layer.state->convElements));
  if (invalid)
    return failure();
  return attrs.getDictionary(ctx);
}

//===----------------------------------------------------------------------===//
// Pattern detection
//===----------------------------------------------------------------------===//

/// Emits `layers` into the builder's block, writing the longest prefix made
/// of a repeated block as `hybrid.repeat` (the block itself compressed the
/// same way), then the rest.
static void emitCompressed(OpBuilder &builder, Location loc,
                           ArrayRef<DictionaryAttr> layers) {
  while (!layers.empty()) {
    size_t bestPeriod = 1, bestCount = 1;
    for (size_t period = 1; period * 2 <= layers.size(); ++period) {
      size_t count = 1;
      while ((count + 1) * period <= layers.size() &&
             layers.slice(count * period, period) == layers.take_front(period))
        ++count;
      // Prefer more layers covered, then the shorter period.
      if (count > 1 && count * period > bestCount * bestPeriod) {
        bestPeriod = period;
        bestCount = count;
      }
    }
    if (bestCount == 1) {
      LayerOp::create(builder, loc, TypeRange(), ValueRange(),
                      layers.front().getValue());
      layers = layers.drop_front();
      continue;
    }
    auto repeat = RepeatOp::create(builder, loc, bestCount);
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(&repeat.getBody().front());
    emitCompressed(builder, loc, layers.take_front(bestPeriod));
    builder.setInsertionPointAfter(repeat);
    layers = layers.drop_front(bestPeriod * bestCount);
  }
}

FailureOr<ScheduleOp> hybrid::buildSchedule(OpBuilder &builder, Location loc,
                                            const s::ModelSpec &spec) {
  MLIRContext *ctx = builder.getContext();
  auto schedule = ScheduleOp::create(builder, loc, spec.name,
                                     static_cast<int64_t>(spec.layers.size()));
  if (spec.hiddenSize > 0)
    schedule.setHiddenSizeAttr(builder.getI64IntegerAttr(spec.hiddenSize));
  if (spec.maxPositionEmbeddings > 0)
    schedule.setMaxPositionAttr(
        builder.getI64IntegerAttr(spec.maxPositionEmbeddings));
  schedule.setModelTypeAttr(builder.getStringAttr(spec.modelType));

  SmallVector<DictionaryAttr> layers;
  for (auto [index, layer] : llvm::enumerate(spec.layers)) {
    auto emitError = [&, index = index]() {
      return mlir::emitError(loc) << "layer " << index << ": ";
    };
    FailureOr<DictionaryAttr> attrs = getLayerAttributes(emitError, ctx, layer);
    if (failed(attrs)) {
      schedule.erase();
      return failure();
    }
    layers.push_back(*attrs);
  }
  OpBuilder body = OpBuilder::atBlockBegin(&schedule.getBody().front());
  emitCompressed(body, loc, layers);

  if (failed(verify(schedule))) {
    schedule.erase();
    return failure();
  }
  return schedule;
}
