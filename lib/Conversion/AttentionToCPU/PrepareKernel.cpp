//===- PrepareKernel.cpp - Rotate and scale query and key rows -----------===//
//
// RoPE is applied once per row before attention instead of once per
// (query tile, key tile) pair inside it: angles are computed in f64 (positions
// reach 10^6 and more), cos and sin once per (position, pair) and reused by
// every head of the row. Queries also absorb the score scale and the Llama 4
// temperature, so the attention kernel multiplies nothing.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "hybrid/Dialect/Hybrid/Utils/Rope.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::cpu;

func::FuncOp hybrid::cpu::emitPrepareKernel(ImplicitLocOpBuilder &b,
                                            StringRef name,
                                            const AttentionSignature &sig,
                                            bool forQueries) {
  int64_t heads = forQueries ? sig.heads : sig.kvHeads;
  int64_t dim = sig.headDim;
  int64_t dyn = ShapedType::kDynamic;
  auto rows = MemRefType::get({dyn, dyn, heads, dim}, b.getF32Type());
  Type idx = b.getIndexType();
  std::string fullName =
      (name + (forQueries ? "_prepare_q" : "_prepare_k")).str();
  func::FuncOp func =
      createKernelFunc(b, fullName, {rows, rows, idx, idx, idx});
  OpBuilder::InsertionGuard guard(b);
  Block *entry = &func.getBody().front();
  b.setInsertionPointToStart(entry);
  Value in = entry->getArgument(0), out = entry->getArgument(1);
  Value firstPosition = entry->getArgument(2);

  RopeTable rope = computeRopeTable(sig.positional, dim);
  Value invFreq;
  if (!rope.inverseFrequencies.empty())
    invFreq =
        getF64Table(b, func, fullName + "_inv_freq", rope.inverseFrequencies);

  auto vecType = VectorType::get({kLanes}, b.getF32Type());
  Value c0 = index(b, 0), c1 = index(b, 1);
  Value seq = memref::DimOp::create(b, in, 1);
  forLoop(b, entry->getArgument(3), entry->getArgument(4), c1, [&](Value w) {
    Value batch = arith::DivUIOp::create(b, w, seq);
    Value s = arith::RemUIOp::create(b, w, seq);
    Value position = arith::UIToFPOp::create(
        b, b.getF64Type(),
        arith::IndexCastUIOp::create(
            b, b.getI64Type(), arith::AddIOp::create(b, firstPosition, s)));

    // Queries carry the score scale (and temperature) from here on.
    Value factor;
    if (forQueries) {
      factor =
          arith::ConstantOp::create(b, b.getF64FloatAttr(sig.score.getScale()));
      if (TemperatureTuningAttr tuning = sig.score.getTemperature())
        factor = arith::MulFOp::create(b, factor,
                                       getTemperature(b, position, tuning));
      factor = arith::TruncFOp::create(b, b.getF32Type(), factor);
    }
    auto scaled = [&](Value v) {
      if (!factor)
        return v;
      Value f =
          v.getType() == vecType
              ? vector::BroadcastOp::create(b, vecType, factor).getResult()
              : factor;
      return arith::MulFOp::create(b, v, f).getResult();
    };

    // Every dim scaled; the rotating pairs are overwritten below.
    forLoop(b, c0, index(b, heads), c1, [&](Value h) {
      forLoop(b, c0, index(b, dim), index(b, kLanes), [&](Value d) {
        Value v =
            vector::LoadOp::create(b, vecType, in, ValueRange{batch, s, h, d});
        vector::StoreOp::create(b, scaled(v), out, ValueRange{batch, s, h, d});
      });
    });
    if (!invFreq)
      return;

    Value half = index(b, rope.half);
    Value pairs = index(b, rope.inverseFrequencies.size());
    forLoop(b, c0, pairs, c1, [&](Value i) {
      Value angle = arith::MulFOp::create(
          b, position, memref::LoadOp::create(b, invFreq, ValueRange{i}));
      Value attention =
          arith::ConstantOp::create(b, b.getF64FloatAttr(rope.attentionFactor));
      auto trig = [&](Value v) {
        return arith::TruncFOp::create(b, b.getF32Type(),
                                       arith::MulFOp::create(b, v, attention))
            .getResult();
      };
      Value cos = trig(math::CosOp::create(b, angle));
      Value sin = trig(math::SinOp::create(b, angle));
      // Pair i: dims (i, i + half), or (2i, 2i + 1) interleaved, from the
      // rotating dims' offset on.
      Value first = i;
      if (rope.interleaved)
        first = arith::MulIOp::create(b, i, index(b, 2));
      first = arith::AddIOp::create(b, first, index(b, rope.offset));
      Value partner =
          arith::AddIOp::create(b, first, rope.interleaved ? c1 : half);
      forLoop(b, c0, index(b, heads), c1, [&](Value h) {
        Value x1 =
            memref::LoadOp::create(b, in, ValueRange{batch, s, h, first});
        Value x2 =
            memref::LoadOp::create(b, in, ValueRange{batch, s, h, partner});
        Value y1 = arith::SubFOp::create(b, arith::MulFOp::create(b, x1, cos),
                                         arith::MulFOp::create(b, x2, sin));
        Value y2 = arith::AddFOp::create(b, arith::MulFOp::create(b, x2, cos),
                                         arith::MulFOp::create(b, x1, sin));
        memref::StoreOp::create(b, scaled(y1), out,
                                ValueRange{batch, s, h, first});
        memref::StoreOp::create(b, scaled(y2), out,
                                ValueRange{batch, s, h, partner});
      });
    });
  });
  return func;
}
