//===- HybridOps.cpp - Hybrid op builders and verifiers ------------------===//

#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace hybrid;

/// The layer kind as a bare keyword: `hybrid.layer sliding ...`.
static ParseResult parseLayerKind(OpAsmParser &parser, LayerKindAttr &kind) {
  StringRef keyword;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<LayerKind> value = symbolizeLayerKind(keyword);
  if (!value)
    return parser.emitError(loc) << "unknown layer kind '" << keyword
                                 << "': expected full, sliding, chunked, "
                                    "linear, mamba, hybrid, mlp or conv";
  kind = LayerKindAttr::get(parser.getContext(), *value);
  return success();
}

static void printLayerKind(OpAsmPrinter &printer, Operation *,
                           LayerKindAttr kind) {
  printer << stringifyLayerKind(kind.getValue());
}

#define GET_OP_CLASSES
#include "hybrid/Dialect/Hybrid/IR/HybridOps.cpp.inc"

/// Rotary encodings rotate pairs of dims: the head dim must hold them.
static LogicalResult verifyRotaryHeadDim(Operation *op, PositionalAttr pos,
                                         int64_t headDim) {
  if (pos.getKind() == PositionalKind::none)
    return success();
  if (headDim % 2 != 0)
    return op->emitOpError()
           << "rotary encoding needs an even head dim, got " << headDim;
  if (pos.getKind() == PositionalKind::partial &&
      pos.getRotaryOffset() + pos.getRotaryDim() > headDim)
    return op->emitOpError()
           << "partial rotary_offset + rotary_dim (" << pos.getRotaryOffset()
           << " + " << pos.getRotaryDim() << ") exceeds the head dim ("
           << headDim << ")";
  if (pos.getKind() == PositionalKind::partial && pos.getRotaryOffset() == 0 &&
      pos.getRotaryDim() == headDim)
    return op->emitOpError() << "partial rotary_dim (" << pos.getRotaryDim()
                             << ") must be smaller than the head dim ("
                             << headDim << "): use kind rope";
  return success();
}

//===----------------------------------------------------------------------===//
// ScheduleOp
//===----------------------------------------------------------------------===//

void ScheduleOp::build(OpBuilder &builder, OperationState &state,
                       StringRef name, int64_t numLayers) {
  state.addAttribute(getSymNameAttrName(state.name),
                     builder.getStringAttr(name));
  state.addAttribute(getNumLayersAttrName(state.name),
                     builder.getI64IntegerAttr(numLayers));
  state.addRegion()->emplaceBlock();
}

/// Visits the layers of `block` in unrolled order, numbering from `next`.
static LogicalResult
walkBlock(Block &block, int64_t &next,
          function_ref<LogicalResult(int64_t, LayerOp)> fn) {
  for (Operation &op : block) {
    if (auto layer = dyn_cast<LayerOp>(op)) {
      if (failed(fn(next++, layer)))
        return failure();
    } else if (auto repeat = dyn_cast<RepeatOp>(op)) {
      for (uint64_t i = 0, e = repeat.getCount(); i < e; ++i)
        if (failed(walkBlock(repeat.getBody().front(), next, fn)))
          return failure();
    }
  }
  return success();
}

LogicalResult
ScheduleOp::walkLayers(function_ref<LogicalResult(int64_t, LayerOp)> fn) {
  int64_t next = 0;
  return walkBlock(getBody().front(), next, fn);
}

static int64_t countBlock(Block &block) {
  int64_t count = 0;
  for (Operation &op : block) {
    if (isa<LayerOp>(op))
      ++count;
    else if (auto repeat = dyn_cast<RepeatOp>(op))
      count += repeat.getCount() * countBlock(repeat.getBody().front());
  }
  return count;
}

int64_t ScheduleOp::countUnrolledLayers() {
  return countBlock(getBody().front());
}

LogicalResult ScheduleOp::verifyRegions() {
  for (Operation &op : getBody().front())
    if (!isa<LayerOp, RepeatOp>(op))
      return op.emitOpError("is not allowed in a schedule: expected "
                            "'hybrid.layer' or 'hybrid.repeat'");

  int64_t unrolled = countUnrolledLayers();
  if (unrolled != static_cast<int64_t>(getNumLayers()))
    return emitOpError() << "declares " << getNumLayers()
                         << " layers but its body unrolls to " << unrolled;

  // Cross-layer links: a shared cache reads an earlier layer of the same kind,
  // cache shape, mask (the source's cache keeps only what its own mask can
  // show), positional encoding (keys are cached rotated) and K=V storage.
  SmallVector<LayerOp> layers;
  (void)walkLayers([&](int64_t, LayerOp layer) {
    layers.push_back(layer);
    return success();
  });
  return walkLayers([&](int64_t index, LayerOp layer) -> LogicalResult {
    CacheAttr cache = layer.getCacheAttr();
    if (!cache || cache.getPolicy() != CachePolicy::shared)
      return success();
    int64_t source = cache.getSourceLayer();
    if (source >= index)
      return layer.emitOpError()
             << "(layer " << index << ") shares the cache of layer " << source
             << ", which does not come before it";
    LayerOp src = layers[source];
    if (src.getKind() != layer.getKind())
      return layer.emitOpError()
             << "(layer " << index << ") shares the cache of layer " << source
             << " of kind '" << stringifyLayerKind(src.getKind())
             << "', expected kind '" << stringifyLayerKind(layer.getKind())
             << "'";
    if (src.getNumKvHeads() != layer.getNumKvHeads() ||
        src.getHeadDim() != layer.getHeadDim() ||
        src.getValueHeadDim() != layer.getValueHeadDim())
      return layer.emitOpError()
             << "(layer " << index << ") shares the cache of layer " << source
             << " whose kv heads or head dims differ";
    auto differs = [&](StringRef what) {
      return layer.emitOpError()
             << "(layer " << index << ") shares the cache of layer " << source
             << " whose " << what << " differs";
    };
    if (src.getMask() != layer.getMask())
      return differs("mask");
    if (src.getPositional() != layer.getPositional())
      return differs("positional encoding");
    CacheAttr sourceCache = src.getCacheAttr();
    if ((sourceCache && sourceCache.getKEqV()) != cache.getKEqV())
      return differs("k_eq_v");
    if ((sourceCache && sourceCache.getLatent()) != cache.getLatent())
      return differs("latent");
    return success();
  });
}

//===----------------------------------------------------------------------===//
// RepeatOp
//===----------------------------------------------------------------------===//

void RepeatOp::build(OpBuilder &builder, OperationState &state, int64_t count) {
  state.addAttribute(getCountAttrName(state.name),
                     builder.getI64IntegerAttr(count));
  state.addRegion()->emplaceBlock();
}

LogicalResult RepeatOp::verify() {
  if (getBody().front().empty())
    return emitOpError("must hold at least one layer");
  return success();
}

//===----------------------------------------------------------------------===//
// LayerOp
//===----------------------------------------------------------------------===//

bool LayerOp::hasAttention() {
  switch (getKind()) {
  case LayerKind::full:
  case LayerKind::sliding:
  case LayerKind::chunked:
  case LayerKind::hybrid:
    return true;
  case LayerKind::linear:
  case LayerKind::mamba:
  case LayerKind::mlp:
  case LayerKind::conv:
    return false;
  }
  llvm_unreachable("unknown layer kind");
}

int64_t LayerOp::getValueHeadDim() {
  if (std::optional<int64_t> v = getVHeadDim())
    return *v;
  return getHeadDim().value_or(0);
}

/// The mask kind an attention layer of `kind` must have, if fixed.
static std::optional<MaskKind> requiredMaskKind(LayerKind kind) {
  switch (kind) {
  case LayerKind::full:
    return MaskKind::full;
  case LayerKind::sliding:
    return MaskKind::sliding_window;
  case LayerKind::chunked:
    return MaskKind::chunked;
  default:
    return std::nullopt;
  }
}

LogicalResult LayerOp::verify() {
  StringRef kind = stringifyLayerKind(getKind());
  bool needsState =
      getKind() == LayerKind::linear || getKind() == LayerKind::mamba ||
      getKind() == LayerKind::hybrid || getKind() == LayerKind::conv;
  if (needsState && !getState())
    return emitOpError() << "of kind '" << kind
                         << "' needs its recurrent 'state'";
  if (!needsState && getState())
    return emitOpError() << "of kind '" << kind << "' has no recurrent state";

  if (!hasAttention()) {
    if (getMask() || getPositional() || getScore())
      return emitOpError() << "of kind '" << kind
                           << "' does not attend: no mask, pos or score";
    if (getCache() && getCache()->getPolicy() != CachePolicy::none)
      return emitOpError() << "of kind '" << kind
                           << "' keeps no KV cache, expected policy none";
    if (getKernel())
      return emitOpError() << "of kind '" << kind << "' has no kernel";
    bool headless = getKind() == LayerKind::mlp || getKind() == LayerKind::conv;
    if (headless &&
        (getNumHeads() || getNumKvHeads() || getHeadDim() || getVHeadDim()))
      return emitOpError() << "of kind '" << kind
                           << "' has no heads: no heads, kv_heads, head_dim "
                              "or v_head_dim";
    if (getKind() == LayerKind::conv &&
        (getState()->getRecurrent() != 0 || getState()->getConv() == 0))
      return emitOpError() << "of kind 'conv' keeps a convolution state "
                              "only: recurrent 0, conv positive";
    return success();
  }

  if (!getNumHeads() || !getNumKvHeads() || !getHeadDim())
    return emitOpError() << "of kind '" << kind
                         << "' needs heads, kv_heads and head_dim";
  if (!getMask() || !getPositional() || !getScore())
    return emitOpError() << "of kind '" << kind
                         << "' needs a mask, a pos and a score";
  int64_t heads = *getNumHeads(), kvHeads = *getNumKvHeads();
  if (heads % kvHeads != 0)
    return emitOpError() << "heads (" << heads
                         << ") must be a multiple of kv_heads (" << kvHeads
                         << ")";
  MaskAttr mask = *getMask();
  if (std::optional<MaskKind> required = requiredMaskKind(getKind());
      required && mask.getKind() != *required)
    return emitOpError() << "of kind '" << kind << "' needs a '"
                         << stringifyMaskKind(*required) << "' mask, got '"
                         << stringifyMaskKind(mask.getKind()) << "'";

  int64_t headDim = *getHeadDim();
  if (failed(verifyRotaryHeadDim(*this, *getPositional(), headDim)))
    return failure();

  if (std::optional<CacheAttr> cache = getCache()) {
    if (cache->getPolicy() == CachePolicy::none)
      return emitOpError() << "of kind '" << kind
                           << "' attends and needs a KV cache, got policy none";
    if (cache->getKEqV() && getValueHeadDim() != headDim)
      return emitOpError() << "k_eq_v needs equal key and value head dims, got "
                           << headDim << " and " << getValueHeadDim();
    // The kernels derive a K=V layer's keys with rotate-half pairs only.
    if (cache->getKEqV() && getPositional()->getInterleaved())
      return emitOpError() << "k_eq_v with interleaved RoPE is not supported";
    if (cache->getKEqV() && getPositional()->getRotaryOffset() != 0)
      return emitOpError() << "k_eq_v with a rotary_offset is not supported";
    if (cache->getLatent()) {
      // The values are the keys' first dims, before any that rotate.
      int64_t values = getValueHeadDim();
      if (values > headDim)
        return emitOpError() << "latent needs v_head_dim at most head_dim ("
                             << headDim << "), got " << values;
      PositionalAttr pos = *getPositional();
      if (pos.getKind() != PositionalKind::none &&
          !(pos.getKind() == PositionalKind::partial &&
            pos.getRotaryOffset() >= values))
        return emitOpError() << "latent needs the rotating dims after the "
                                "values (partial RoPE with rotary_offset >= "
                                "v_head_dim "
                             << values << ") or none";
    }
  }
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::verify() {
  auto q = cast<RankedTensorType>(getQuery().getType());
  auto k = cast<RankedTensorType>(getKey().getType());
  auto v = cast<RankedTensorType>(getValue().getType());
  auto init = cast<RankedTensorType>(getInit().getType());
  struct Named {
    StringRef name;
    RankedTensorType type;
  };
  for (Named t : {Named{"query", q}, Named{"key", k}, Named{"value", v},
                  Named{"init", init}}) {
    if (t.type.getRank() != 4)
      return emitOpError() << t.name
                           << " must have rank 4 [batch, seq, heads, dim], got "
                           << t.type;
    if (!isa<FloatType>(t.type.getElementType()))
      return emitOpError() << t.name << " must have a float element type";
    if (t.type.getElementType() != q.getElementType())
      return emitOpError() << t.name
                           << " element type differs from the query's";
  }
  if (getResult().getType() != init)
    return emitOpError("result type must match the init operand's type");

  // Two extents must agree unless one of them is dynamic.
  auto mismatch = [](int64_t a, int64_t b) {
    return !ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b;
  };
  for (Named t : {Named{"key", k}, Named{"value", v}, Named{"init", init}})
    if (mismatch(q.getDimSize(0), t.type.getDimSize(0)))
      return emitOpError() << t.name << " batch differs from the query's";
  if (mismatch(k.getDimSize(1), v.getDimSize(1)))
    return emitOpError("key and value sequence lengths differ");
  if (mismatch(k.getDimSize(2), v.getDimSize(2)))
    return emitOpError("key and value head counts differ");
  if (mismatch(q.getDimSize(3), k.getDimSize(3)))
    return emitOpError("query and key head dims differ");
  if (mismatch(init.getDimSize(1), q.getDimSize(1)) ||
      mismatch(init.getDimSize(2), q.getDimSize(2)) ||
      mismatch(init.getDimSize(3), v.getDimSize(3)))
    return emitOpError("init must be [batch, query seq, query heads, value "
                       "head dim]");
  int64_t heads = q.getDimSize(2), kvHeads = k.getDimSize(2);
  if (!ShapedType::isDynamic(heads) && !ShapedType::isDynamic(kvHeads) &&
      heads % kvHeads != 0)
    return emitOpError() << "query heads (" << heads
                         << ") must be a multiple of key heads (" << kvHeads
                         << ")";

  bool wantsSinks = getScore().getSinks();
  if (wantsSinks != static_cast<bool>(getSinks()))
    return emitOpError() << (wantsSinks ? "score has sinks but no sinks operand"
                                        : "sinks operand given but score has "
                                          "no sinks");
  if (Value sinks = getSinks()) {
    auto type = cast<RankedTensorType>(sinks.getType());
    if (type.getRank() != 1 || mismatch(type.getDimSize(0), heads))
      return emitOpError("sinks must be a 1-D tensor with one logit per "
                         "query head");
    if (type.getElementType() != q.getElementType())
      return emitOpError("sinks element type differs from the query's");
  }

  int64_t headDim = q.getDimSize(3);
  if (ShapedType::isDynamic(headDim))
    return success();
  return verifyRotaryHeadDim(*this, getPositional(), headDim);
}
