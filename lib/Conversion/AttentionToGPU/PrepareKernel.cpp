//===- PrepareKernel.cpp - f32 rows to rotated, scaled bf16 rows ---------===//
//
// As on CPUs (see AttentionToCPU/PrepareKernel.cpp), RoPE, the score scale and
// the temperature are applied once per row, not once per (query tile, key
// tile) pair; here the same pass also converts to the tensor cores' bf16.
// One CTA per (batch, position) row; its threads stride over heads x dims.
// Angles are f64 (positions reach 10^6 and more): each rotated pair's cosine
// and sine is computed once per row into shared memory, which every head
// reads (per element of every head, they were 2 to 4 times the kernel's
// instructions at 8 to 32 heads). Each row's first position is read from
// device memory (its sequence's length in the layer, which CUDA graph
// replays advance: StepLengths).
//
// A session's step takes one fused kernel instead (prepare_step): its
// queries prepared as above, its keys rotated and its values converted
// straight into the cache rows of their positions, so a decode step is
// two launches (this and the decode kernel, which merges its splits and
// advances the length) where it was seven.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelEmitter.h"
#include "hybrid/Dialect/Hybrid/Utils/Rope.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

/// The CTA's row of `rows` ([B, S, ...]), block x: (batch, s).
static std::pair<Value, Value> getRow(ImplicitLocOpBuilder &b, Value rows) {
  Value row = mlir::gpu::BlockIdOp::create(b, mlir::gpu::Dimension::x);
  Value seq = memref::DimOp::create(b, rows, 1);
  return {arith::DivUIOp::create(b, row, seq),
          arith::RemUIOp::create(b, row, seq)};
}

/// Calls `body(h, d)` for every (head, dim) of a row of `heads` x `dim`,
/// the CTA's threads striding over them.
static void forEachOfRow(ImplicitLocOpBuilder &b, int64_t heads, int64_t dim,
                         function_ref<void(Value, Value)> body) {
  Value tid = mlir::gpu::ThreadIdOp::create(b, mlir::gpu::Dimension::x);
  forLoop(b, tid, index(b, heads * dim), index(b, kThreads), [&](Value i) {
    body(arith::DivUIOp::create(b, i, index(b, dim)),
         arith::RemUIOp::create(b, i, index(b, dim)));
  });
}

namespace {
/// What every prepare kernel does to one element of a row at a position:
/// RoPE and, for queries, the score scale (and temperature), in f32
/// whatever the rows hold. A CTA prepares one row (one position): its
/// rotation's cosines and sines are computed once per rotated pair, in f64,
/// into shared memory (startRow), not once per element of every head.
class ElementPreparer {
public:
  /// For the kernel `func` (its RoPE table is a global named after it, its
  /// cosines and sines two workgroup buffers it gains).
  ElementPreparer(ImplicitLocOpBuilder &b, mlir::gpu::GPUFuncOp func,
                  const AttentionSignature &sig)
      : b(b), sig(sig), rope(computeRopeTable(sig.positional, sig.headDim)) {
    if (rope.inverseFrequencies.empty())
      return;
    invFreq = getF64Table(b, func, (func.getName() + "_inv_freq").str(),
                          rope.inverseFrequencies);
    auto shared = getWorkgroupType({int64_t(rope.inverseFrequencies.size())},
                                   b.getF32Type());
    cosines = func.addWorkgroupAttribution(shared, b.getLoc());
    sines = func.addWorkgroupAttribution(shared, b.getLoc());
  }

  /// Fills the row's cosines and sines for f64 `position` (every thread
  /// of the CTA calls it, then waits for the others).
  void startRow(Value position) {
    if (!invFreq)
      return;
    Value tid = mlir::gpu::ThreadIdOp::create(b, mlir::gpu::Dimension::x);
    Value pairs = index(b, rope.inverseFrequencies.size());
    Value factor =
        arith::ConstantOp::create(b, b.getF64FloatAttr(rope.attentionFactor));
    forLoop(b, tid, pairs, index(b, kThreads), [&](Value i) {
      Value angle = arith::MulFOp::create(
          b, position, memref::LoadOp::create(b, invFreq, ValueRange{i}));
      for (auto [trig, table] :
           {std::pair{Value(math::CosOp::create(b, angle)), cosines},
            {Value(math::SinOp::create(b, angle)), sines}})
        memref::StoreOp::create(
            b,
            arith::TruncFOp::create(b, b.getF32Type(),
                                    arith::MulFOp::create(b, trig, factor)),
            table, ValueRange{i});
    });
    mlir::gpu::BarrierOp::create(b);
  }

  /// Element `at` (batch, s, head, dim) of `rows`, as f32.
  Value load(Value rows, ValueRange at) {
    Value x = memref::LoadOp::create(b, rows, at);
    return isa<Float32Type>(x.getType())
               ? x
               : Value(arith::ExtFOp::create(b, b.getF32Type(), x));
  }

  /// Element `at` of query or key `rows` prepared for f64 `position`, the
  /// row's (after startRow). Keys are first multiplied by `keyScale` ([D]
  /// f32, per dim: a K=V layer's key-norm weight; ones elsewhere).
  Value prepare(Value rows, ValueRange at, Value position, bool forQueries,
                Value keyScale = {}) {
    Type f32Type = b.getF32Type();
    auto f64Const = [&](double v) -> Value {
      return arith::ConstantOp::create(b, b.getF64FloatAttr(v));
    };
    Value d = at[3];
    auto loadScaled = [&](ValueRange element, Value dim) -> Value {
      Value x = load(rows, element);
      if (!keyScale)
        return x;
      return arith::MulFOp::create(b, x,
                                   memref::LoadOp::create(b, keyScale, dim));
    };
    Value x = loadScaled(at, d);
    Value y = x;
    if (invFreq) {
      // With r = d - offset, rotate-half: r < pairs pairs with r + half;
      // half <= r < half + pairs with r - half. Interleaved: 2i and 2i + 1
      // for i < pairs. Other dims (partial rotary) pass through; those
      // before the offset wrap to large unsigned r.
      Value pairs = index(b, rope.inverseFrequencies.size());
      Value offset = index(b, rope.offset);
      Value first, rotates, i, partnerDim;
      d = arith::SubIOp::create(b, d, offset);
      if (rope.interleaved) {
        Value c1 = index(b, 1);
        i = arith::ShRUIOp::create(b, d, c1);
        first =
            arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                  arith::AndIOp::create(b, d, c1), index(b, 0));
        rotates = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, pairs);
        partnerDim = arith::XOrIOp::create(b, d, c1);
      } else {
        Value half = index(b, rope.half);
        first = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, d, pairs);
        Value shifted = arith::SubIOp::create(b, d, half);
        Value second = arith::AndIOp::create(
            b, arith::CmpIOp::create(b, arith::CmpIPredicate::uge, d, half),
            arith::CmpIOp::create(b, arith::CmpIPredicate::ult, shifted,
                                  pairs));
        rotates = arith::OrIOp::create(b, first, second);
        i = arith::SelectOp::create(b, first, d, shifted);
        partnerDim = arith::SelectOp::create(
            b, first, arith::AddIOp::create(b, d, half), shifted);
      }
      partnerDim = arith::AddIOp::create(b, partnerDim, offset);
      auto ifOp = scf::IfOp::create(b, TypeRange{f32Type}, rotates,
                                    /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard inside(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        Value cos = memref::LoadOp::create(b, cosines, ValueRange{i});
        Value sin = memref::LoadOp::create(b, sines, ValueRange{i});
        Value partner =
            loadScaled(ValueRange{at[0], at[1], at[2], partnerDim}, partnerDim);
        // A pair's first dim: x cos - x' sin; its second: x cos + x' sin.
        Value signedSin = arith::SelectOp::create(
            b, first, arith::NegFOp::create(b, sin), sin);
        Value rotated =
            arith::AddFOp::create(b, arith::MulFOp::create(b, x, cos),
                                  arith::MulFOp::create(b, partner, signedSin));
        scf::YieldOp::create(b, rotated);
        b.setInsertionPointToStart(ifOp.elseBlock());
        scf::YieldOp::create(b, x);
      }
      y = ifOp.getResult(0);
    }
    if (forQueries) {
      // Queries carry the score scale (and temperature) from here on.
      Value factor = f64Const(sig.score.getScale());
      if (TemperatureTuningAttr tuning = sig.score.getTemperature())
        factor = arith::MulFOp::create(b, factor,
                                       getTemperature(b, position, tuning));
      y = arith::MulFOp::create(b, y,
                                arith::TruncFOp::create(b, f32Type, factor));
    }
    return y;
  }

private:
  ImplicitLocOpBuilder &b;
  const AttentionSignature &sig;
  RopeTable rope;
  Value invFreq, cosines, sines;
};
} // namespace

/// Position `first + s` as an f64 (RoPE angles, temperature).
static Value getPositionF64(ImplicitLocOpBuilder &b, Value first, Value s) {
  return arith::UIToFPOp::create(
      b, b.getF64Type(),
      arith::IndexCastUIOp::create(b, b.getI64Type(),
                                   arith::AddIOp::create(b, first, s)));
}

static Value toBF16(ImplicitLocOpBuilder &b, Value x) {
  return arith::TruncFOp::create(b, b.getBF16Type(), x);
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitPrepareKernel(ImplicitLocOpBuilder &b, StringRef name,
                               const AttentionSignature &sig, bool forQueries,
                               bool fromBF16) {
  int64_t heads = forQueries ? sig.heads : sig.kvHeads, dim = sig.headDim;
  std::string fullName = (name + (forQueries ? "_prepare_q" : "_prepare_k") +
                          (fromBF16 ? "_bf16" : ""))
                             .str();
  OpBuilder::InsertionGuard guard(b);
  Type element = fromBF16 ? Type(b.getBF16Type()) : Type(b.getF32Type());
  SmallVector<Type> inputs = {getRowsType(element, heads, dim),
                              getRowsType(b.getBF16Type(), heads, dim)};
  StepLengths::addTypes(b.getContext(), inputs);
  if (!forQueries)
    inputs.push_back(getKeyScaleType(b.getContext()));
  auto func = createKernel(b, fullName, inputs);
  Value in = func.getArgument(0), out = func.getArgument(1);
  StepLengths lengths = StepLengths::get(func, 2);
  Value keyScale = forQueries ? Value() : func.getArgument(4);
  ElementPreparer preparer(b, func, sig);
  Value batch, s;
  std::tie(batch, s) = getRow(b, in);
  Value position =
      getPositionF64(b, lengths.positionOf(b, lengths.entryOf(b, batch)), s);
  preparer.startRow(position);
  forEachOfRow(b, heads, dim, [&](Value h, Value d) {
    SmallVector<Value> at = {batch, s, h, d};
    memref::StoreOp::create(
        b, toBF16(b, preparer.prepare(in, at, position, forQueries, keyScale)),
        out, at);
  });
  return func;
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitPrepareStepKernel(ImplicitLocOpBuilder &b, StringRef name,
                                   const AttentionSignature &sig,
                                   bool fromBF16) {
  OpBuilder::InsertionGuard guard(b);
  Type element = fromBF16 ? Type(b.getBF16Type()) : Type(b.getF32Type());
  Type bf16 = b.getBF16Type();
  int64_t dim = sig.headDim, vDim = sig.vHeadDim;
  SmallVector<Type> inputs = {getRowsType(element, sig.heads, dim),
                              getRowsType(bf16, sig.heads, dim),
                              getRowsType(element, sig.kvHeads, dim),
                              getRowsType(element, sig.kvHeads, vDim),
                              getRowsType(bf16, sig.kvHeads, dim),
                              getRowsType(bf16, sig.kvHeads, vDim)};
  StepLengths::addTypes(b.getContext(), inputs);
  inputs.append({getKeyScaleType(b.getContext()), b.getIndexType()});
  auto func = createKernel(
      b, (name + "_prepare_step" + (fromBF16 ? "_bf16" : "")).str(), inputs);
  Value queries = func.getArgument(0), preparedQueries = func.getArgument(1);
  Value newKeys = func.getArgument(2), newValues = func.getArgument(3);
  Value keys = func.getArgument(4), values = func.getArgument(5);
  StepLengths lengths = StepLengths::get(func, 6);
  Value keyScale = func.getArgument(8), ring = func.getArgument(9);
  ElementPreparer preparer(b, func, sig);
  // One CTA per (batch entry, token) of the new keys; its threads stride
  // over each row's heads x dims. The entry's rows of the cache are its
  // sequence's.
  Value batch, token;
  std::tie(batch, token) = getRow(b, newKeys);
  StepLengths::Entry entry = lengths.entryOf(b, batch);
  Value sequence = entry.sequence, first = lengths.positionOf(b, entry);
  Value count = memref::DimOp::create(b, newKeys, 1);
  Value positionF64 = getPositionF64(b, first, token);
  preparer.startRow(positionF64);
  // The queries, where the step has them (an append has none: 0 rows).
  Value hasQueries =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult, token,
                            memref::DimOp::create(b, queries, 1));
  ifThen(b, hasQueries, [&] {
    forEachOfRow(b, sig.heads, dim, [&](Value h, Value d) {
      SmallVector<Value> at = {batch, token, h, d};
      memref::StoreOp::create(
          b,
          toBF16(b, preparer.prepare(queries, at, positionF64,
                                     /*forQueries=*/true)),
          preparedQueries, at);
    });
  });
  // Keys and values go to their rows of the cache, as the store kernel
  // puts them (CacheKernels.cpp).
  ifKeptInCache(
      b, token, count, first, ring, keys, entry.padding,
      [&](const CacheRows &at) {
        // K=V layers' caches keep the values only (the decode kernel derives
        // keys from them; `keys` is then the value cache).
        if (!sig.derivesKeys)
          forEachOfRow(b, sig.kvHeads, dim, [&](Value h, Value d) {
            Value x =
                preparer.prepare(newKeys, ValueRange{batch, token, h, d},
                                 positionF64, /*forQueries=*/false, keyScale);
            at.store(b, toBF16(b, x), keys, sequence, {h, d});
          });
        // Values are stored as they are (K=V layers: the raw keys, unscaled).
        forEachOfRow(b, sig.kvHeads, vDim, [&](Value h, Value d) {
          Value x = memref::LoadOp::create(b, newValues,
                                           ValueRange{batch, token, h, d});
          at.store(b, fromBF16 ? x : toBF16(b, x), values, sequence, {h, d});
        });
      });
  return func;
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitDeriveKeysKernel(ImplicitLocOpBuilder &b, StringRef name,
                                  const AttentionSignature &sig) {
  OpBuilder::InsertionGuard guard(b);
  Type bf16 = b.getBF16Type();
  int64_t dim = sig.headDim;
  auto func = createKernel(
      b, (name + "_derive_kv").str(),
      {getRowsType(bf16, sig.kvHeads, dim), getRowsType(bf16, sig.kvHeads, dim),
       getRowsType(bf16, sig.kvHeads, dim), getKeyScaleType(b.getContext()),
       b.getIndexType(), b.getIndexType()});
  Value cache = func.getArgument(0), keys = func.getArgument(1);
  Value values = func.getArgument(2), keyScale = func.getArgument(3);
  Value first = func.getArgument(4), ring = func.getArgument(5);
  ElementPreparer preparer(b, func, sig);
  // One CTA per (batch, position) of the range, read from its ring row.
  Value batch, t;
  std::tie(batch, t) = getRow(b, keys);
  Value at = arith::AddIOp::create(b, first, t);
  Value row = arith::RemUIOp::create(b, at, ring);
  Value position = getPositionF64(b, first, t);
  preparer.startRow(position);
  forEachOfRow(b, sig.kvHeads, dim, [&](Value h, Value d) {
    SmallVector<Value> from = {batch, row, h, d}, to = {batch, t, h, d};
    memref::StoreOp::create(
        b,
        toBF16(b, preparer.prepare(cache, from, position,
                                   /*forQueries=*/false, keyScale)),
        keys, to);
    memref::StoreOp::create(b, memref::LoadOp::create(b, cache, from), values,
                            to);
  });
  return func;
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitElementConversionKernel(ImplicitLocOpBuilder &b,
                                         StringRef name, Type from, Type to) {
  OpBuilder::InsertionGuard guard(b);
  auto func = createKernel(b, name,
                           {MemRefType::get({ShapedType::kDynamic}, from),
                            MemRefType::get({ShapedType::kDynamic}, to)});
  Value in = func.getArgument(0), out = func.getArgument(1);
  using mlir::gpu::Dimension;
  Value threads = index(b, kThreads);
  Value first = arith::AddIOp::create(
      b,
      arith::MulIOp::create(b, mlir::gpu::BlockIdOp::create(b, Dimension::x),
                            threads),
      mlir::gpu::ThreadIdOp::create(b, Dimension::x));
  Value stride = arith::MulIOp::create(
      b, mlir::gpu::GridDimOp::create(b, Dimension::x), threads);
  forLoop(b, first, memref::DimOp::create(b, in, 0), stride, [&](Value i) {
    Value x = memref::LoadOp::create(b, in, i);
    Value y = from.getIntOrFloatBitWidth() < to.getIntOrFloatBitWidth()
                  ? Value(arith::ExtFOp::create(b, to, x))
                  : Value(arith::TruncFOp::create(b, to, x));
    memref::StoreOp::create(b, y, out, i);
  });
  return func;
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitConvertKernel(ImplicitLocOpBuilder &b, StringRef name,
                               const AttentionSignature &sig) {
  OpBuilder::InsertionGuard guard(b);
  auto func =
      createKernel(b, (name + "_prepare_v").str(),
                   {getRowsType(b.getF32Type(), sig.kvHeads, sig.vHeadDim),
                    getRowsType(b.getBF16Type(), sig.kvHeads, sig.vHeadDim)});
  Value in = func.getArgument(0), out = func.getArgument(1);
  Value batch, s;
  std::tie(batch, s) = getRow(b, in);
  forEachOfRow(b, sig.kvHeads, sig.vHeadDim, [&](Value h, Value d) {
    SmallVector<Value> at = {batch, s, h, d};
    memref::StoreOp::create(b, toBF16(b, memref::LoadOp::create(b, in, at)),
                            out, at);
  });
  return func;
}
