//===- KernelBuilders.cpp - What every attention kernel emitter shares ---===//

#include "KernelBuilders.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <limits>

using namespace mlir;
using namespace hybrid;

AttentionSignature AttentionSignature::get(AttentionOp op) {
  auto q = cast<RankedTensorType>(op.getQuery().getType());
  auto k = cast<RankedTensorType>(op.getKey().getType());
  auto v = cast<RankedTensorType>(op.getValue().getType());
  AttentionSignature sig;
  sig.heads = q.getDimSize(2);
  sig.kvHeads = k.getDimSize(2);
  sig.headDim = q.getDimSize(3);
  sig.vHeadDim = v.getDimSize(3);
  sig.mask = op.getMask();
  sig.positional = op.getPositional();
  sig.score = op.getScore();
  Operation *kernel = op->getParentOp();
  sig.derivesKeys = kernel && kernel->hasAttr(kKEqVAttrName);
  sig.valuesInKeys = kernel && kernel->hasAttr(kLatentAttrName);
  return sig;
}

MemRefType hybrid::getRowsType(Type element, int64_t heads, int64_t dim) {
  int64_t dyn = ShapedType::kDynamic;
  return MemRefType::get({dyn, dyn, heads, dim}, element);
}

MemRefType hybrid::getValuesType(Type element, const AttentionSignature &sig) {
  if (!sig.valuesInKeys)
    return getRowsType(element, sig.kvHeads, sig.vHeadDim);
  int64_t dyn = ShapedType::kDynamic;
  auto layout =
      StridedLayoutAttr::get(element.getContext(), /*offset=*/0,
                             {dyn, sig.kvHeads * sig.headDim, sig.headDim, 1});
  return MemRefType::get({dyn, dyn, sig.kvHeads, sig.vHeadDim}, element,
                         layout);
}

FailureOr<SmallVector<std::pair<Operation *, AttentionOp>>>
hybrid::getAttentionKernels(ModuleOp module, StringRef notF32) {
  SmallVector<std::pair<Operation *, AttentionOp>> kernels;
  for (Operation &op : module.getOps()) {
    if (op.getNumRegions() != 1 || op.getRegion(0).empty())
      continue;
    SmallVector<AttentionOp> ops;
    op.getRegion(0).walk([&](AttentionOp a) { ops.push_back(a); });
    if (ops.empty())
      continue;
    if (ops.size() != 1)
      return op.emitOpError("expected exactly one hybrid.attention per "
                            "kernel function (run hybrid-extract-attention)");
    AttentionOp attention = ops.front();
    if (!cast<RankedTensorType>(attention.getQuery().getType())
             .getElementType()
             .isF32())
      return attention.emitOpError(notF32);
    // K=V kernels derive keys with rotate-half pairs only.
    if (op.hasAttr(kKEqVAttrName) && attention.getPositional().getInterleaved())
      return attention.emitOpError("in a K=V kernel: interleaved RoPE is not "
                                   "supported");
    kernels.push_back({&op, attention});
  }
  return kernels;
}

void hybrid::forLoop(ImplicitLocOpBuilder &b, Value lb, Value ub, Value step,
                     function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(b, lb, ub, step);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  body(loop.getInductionVar());
}

SmallVector<Value>
hybrid::reduceLoop(ImplicitLocOpBuilder &b, Value lb, Value ub,
                   ValueRange inits,
                   function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto loop = scf::ForOp::create(b, lb, ub,
                                 arith::ConstantIndexOp::create(b, 1), inits);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  scf::YieldOp::create(b,
                       body(loop.getInductionVar(), loop.getRegionIterArgs()));
  return SmallVector<Value>(loop.getResults());
}

Value hybrid::reduceLoop(ImplicitLocOpBuilder &b, Value lb, Value ub,
                         Value init, function_ref<Value(Value, Value)> body) {
  return reduceLoop(b, lb, ub, ValueRange{init},
                    [&](Value iv, ValueRange accs) -> SmallVector<Value> {
                      return {body(iv, accs.front())};
                    })
      .front();
}

void hybrid::ifThen(ImplicitLocOpBuilder &b, Value cond,
                    function_ref<void()> thenBody,
                    function_ref<void()> elseBody) {
  auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/bool(elseBody));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(op.thenBlock()->getTerminator());
  thenBody();
  if (elseBody) {
    b.setInsertionPoint(op.elseBlock()->getTerminator());
    elseBody();
  }
}

ValueRange hybrid::ifThenElse(ImplicitLocOpBuilder &b, Value cond,
                              TypeRange types,
                              function_ref<SmallVector<Value>()> thenBody,
                              function_ref<SmallVector<Value>()> elseBody) {
  auto op = scf::IfOp::create(b, types, cond, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(op.thenBlock());
  scf::YieldOp::create(b, thenBody());
  b.setInsertionPointToStart(op.elseBlock());
  scf::YieldOp::create(b, elseBody());
  return op.getResults();
}

Value hybrid::getKeyBegin(ImplicitLocOpBuilder &b, MaskAttr m, Value position) {
  switch (m.getKind()) {
  case MaskKind::full:
    return index(b, 0);
  case MaskKind::sliding_window:
    return arith::MaxSIOp::create(
        b, index(b, 0),
        arith::SubIOp::create(b, position, index(b, m.getWindow() - 1)));
  case MaskKind::chunked: {
    Value c = index(b, m.getChunk());
    return arith::MulIOp::create(b, arith::DivSIOp::create(b, position, c), c);
  }
  }
  llvm_unreachable("unknown mask kind");
}

Value hybrid::getKeyEnd(ImplicitLocOpBuilder &b, MaskAttr m, Value position,
                        Value numKeys) {
  Value end;
  if (m.getCausal()) {
    end = arith::AddIOp::create(b, position, index(b, 1));
  } else if (m.getKind() == MaskKind::full) {
    return numKeys;
  } else if (m.getKind() == MaskKind::sliding_window) {
    end = arith::AddIOp::create(b, position, index(b, m.getWindow()));
  } else {
    Value c = index(b, m.getChunk());
    Value chunk = arith::DivSIOp::create(b, position, c);
    end = arith::MulIOp::create(b, arith::AddIOp::create(b, chunk, index(b, 1)),
                                c);
  }
  return arith::MinSIOp::create(b, end, numKeys);
}

std::pair<Value, Value> hybrid::getSplitKeyRange(ImplicitLocOpBuilder &b,
                                                 Value rangeBegin,
                                                 Value rangeEnd, Value split,
                                                 Value numSplits, Value tile) {
  Value length = arith::SubIOp::create(b, rangeEnd, rangeBegin);
  Value splitLength = arith::MulIOp::create(
      b,
      arith::CeilDivUIOp::create(
          b, arith::CeilDivUIOp::create(b, length, numSplits), tile),
      tile);
  Value lo = arith::MinSIOp::create(
      b, rangeEnd,
      arith::AddIOp::create(b, rangeBegin,
                            arith::MulIOp::create(b, split, splitLength)));
  Value hi = arith::MinSIOp::create(b, rangeEnd,
                                    arith::AddIOp::create(b, lo, splitLength));
  return {lo, hi};
}

Value hybrid::getMaxOverSplits(ImplicitLocOpBuilder &b, Value partialMax,
                               Value numSplits,
                               function_ref<SmallVector<Value>(Value)> at) {
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  auto loop = scf::ForOp::create(
      b, index(b, 0), numSplits, index(b, 1), ValueRange{negInf},
      [&](OpBuilder &nested, Location loc, Value s, ValueRange acc) {
        ImplicitLocOpBuilder ib(loc, nested);
        Value m = memref::LoadOp::create(ib, partialMax, at(s));
        scf::YieldOp::create(
            ib, ValueRange{arith::MaximumFOp::create(ib, acc[0], m)});
      });
  return loop.getResult(0);
}

Value hybrid::getF64Table(ImplicitLocOpBuilder &b, Operation *func,
                          StringRef name, ArrayRef<double> values) {
  auto type = MemRefType::get({int64_t(values.size())}, b.getF64Type());
  auto tensorType =
      RankedTensorType::get({int64_t(values.size())}, b.getF64Type());
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(func);
    memref::GlobalOp::create(b, name, b.getStringAttr("private"), type,
                             DenseElementsAttr::get(tensorType, values),
                             /*constant=*/true, /*alignment=*/IntegerAttr());
  }
  return memref::GetGlobalOp::create(b, type, name);
}

Value hybrid::getTemperature(ImplicitLocOpBuilder &b, Value position,
                             TemperatureTuningAttr tuning) {
  auto cst = [&](double v) {
    return arith::ConstantOp::create(b, b.getF64FloatAttr(v));
  };
  Value next =
      arith::AddFOp::create(b, position, cst(double(tuning.getOffset())));
  Value bucket = math::FloorOp::create(
      b, arith::DivFOp::create(b, next, cst(tuning.getFloorScale())));
  Value log = math::LogOp::create(b, arith::AddFOp::create(b, bucket, cst(1)));
  return arith::AddFOp::create(
      b, arith::MulFOp::create(b, log, cst(tuning.getAttnScale())), cst(1.0));
}
