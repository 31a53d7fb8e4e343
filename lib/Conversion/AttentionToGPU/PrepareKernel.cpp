//===- PrepareKernel.cpp - f32 rows to rotated, scaled bf16 rows ---------===//
//
// As on CPUs (see AttentionToCPU/PrepareKernel.cpp), RoPE, the score scale and
// the temperature are applied once per row, not once per (query tile, key
// tile) pair; here the same pass also converts to the tensor cores' bf16.
// One CTA per (batch, position) row; its threads stride over heads x dims.
// Angles are f64 (positions reach 10^6 and more). The rows' first position
// is read from device memory (a layer's length, which CUDA graph replays
// advance).
//
//===----------------------------------------------------------------------===//

#include "GPUKernelEmitter.h"
#include "hybrid/Dialect/Hybrid/Utils/Rope.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

/// Calls `body(batch, s, h, d)` for every element of the CTA's row of
/// `rows` ([B, S, heads, dim]), the row being block x.
static void forEachElement(ImplicitLocOpBuilder &b, Value rows, int64_t heads,
                           int64_t dim, function_ref<void(ValueRange)> body) {
  Value row = mlir::gpu::BlockIdOp::create(b, mlir::gpu::Dimension::x);
  Value seq = memref::DimOp::create(b, rows, 1);
  Value batch = arith::DivUIOp::create(b, row, seq);
  Value s = arith::RemUIOp::create(b, row, seq);
  Value tid = mlir::gpu::ThreadIdOp::create(b, mlir::gpu::Dimension::x);
  forLoop(b, tid, index(b, heads * dim), index(b, kThreads), [&](Value i) {
    Value h = arith::DivUIOp::create(b, i, index(b, dim));
    Value d = arith::RemUIOp::create(b, i, index(b, dim));
    body({batch, s, h, d});
  });
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
  auto func = createKernel(b, fullName,
                           {getRowsType(element, heads, dim),
                            getRowsType(b.getBF16Type(), heads, dim),
                            getPositionType(b.getContext())});
  Value in = func.getArgument(0), out = func.getArgument(1);
  Value firstPosition = loadPosition(b, func.getArgument(2));
  RopeTable rope = computeRopeTable(sig.positional, dim);
  Value invFreq;
  if (!rope.inverseFrequencies.empty())
    invFreq =
        getF64Table(b, func, fullName + "_inv_freq", rope.inverseFrequencies);
  Type f64 = b.getF64Type(), f32Type = b.getF32Type();
  auto f64Const = [&](double v) -> Value {
    return arith::ConstantOp::create(b, b.getF64FloatAttr(v));
  };
  // Rotation and scaling in f32, whatever the rows hold.
  auto load = [&](ValueRange at) -> Value {
    Value x = memref::LoadOp::create(b, in, at);
    return fromBF16 ? Value(arith::ExtFOp::create(b, f32Type, x)) : x;
  };

  forEachElement(b, in, heads, dim, [&](ValueRange at) {
    Value s = at[1], d = at[3];
    Value position = arith::UIToFPOp::create(
        b, f64,
        arith::IndexCastUIOp::create(
            b, b.getI64Type(), arith::AddIOp::create(b, firstPosition, s)));
    Value x = load(at);
    Value y = x;
    if (invFreq) {
      // d < pairs pairs with d + half; half <= d < half + pairs with d - half;
      // other dims (partial rotary) pass through.
      Value half = index(b, rope.half);
      Value pairs = index(b, rope.inverseFrequencies.size());
      Value first =
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, d, pairs);
      Value shifted = arith::SubIOp::create(b, d, half);
      Value second = arith::AndIOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::uge, d, half),
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, shifted, pairs));
      Value rotates = arith::OrIOp::create(b, first, second);
      auto ifOp = scf::IfOp::create(b, TypeRange{f32Type}, rotates,
                                    /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard inside(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        Value i = arith::SelectOp::create(b, first, d, shifted);
        Value partnerDim = arith::SelectOp::create(
            b, first, arith::AddIOp::create(b, d, half), shifted);
        Value angle = arith::MulFOp::create(
            b, position, memref::LoadOp::create(b, invFreq, ValueRange{i}));
        Value factor = f64Const(rope.attentionFactor);
        auto trig = [&](Value v) -> Value {
          return arith::TruncFOp::create(b, f32Type,
                                         arith::MulFOp::create(b, v, factor));
        };
        Value cos = trig(math::CosOp::create(b, angle));
        Value sin = trig(math::SinOp::create(b, angle));
        Value partner = load(ValueRange{at[0], at[1], at[2], partnerDim});
        // First half: x cos - x' sin; second half: x cos + x' sin.
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
    memref::StoreOp::create(b, arith::TruncFOp::create(b, b.getBF16Type(), y),
                            out, at);
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
  forEachElement(b, in, sig.kvHeads, sig.vHeadDim, [&](ValueRange at) {
    Value x = memref::LoadOp::create(b, in, at);
    memref::StoreOp::create(b, arith::TruncFOp::create(b, b.getBF16Type(), x),
                            out, at);
  });
  return func;
}
