//===- DecodeKernel.cpp - Attention of a few new tokens over a KV cache ---===//
//
// A decode step brings one or a few query positions, so the prefill
// kernel's layout (rows along vector lanes) would leave most lanes idle.
// Here one work item is one query position for every head, vectors run
// along the head dims instead, and every key and value vector is loaded once
// for the G query heads of its kv head:
//
//   s[h][j]   = reduce_add(sum_c q[h][c] * K[j][h / G][c])  (c: 16-wide chunks)
//   OT[h][c]  = alpha[h] * OT[h][c] + sum_j p[h][j] * V[j][h / G][c]
//
// A step reads its whole cache once, so the cache's memory order sets its
// speed: the loops run over keys outside and kv heads inside, reading each
// [Hkv, D] cache row front to back (a work item per kv head would read
// 512-byte pieces 4 KiB apart at 8 kv heads: measured 0.55x the bandwidth).
//
// The query's visible keys form one interval [begin(p), p + 1), so no
// element is ever masked. The key at position p lives in cache row
// p % capacity (ring buffers wrap at most once inside a query's range; the
// range is visited as two contiguous row runs), and the range is split in
// `num_splits` parts whose unnormalised partial results (accumulator, max,
// sum) the combine kernel merges by log-sum-exp (flash-decoding), so that a
// single sequence keeps every core busy.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace hybrid;
using namespace hybrid::cpu;

namespace {

class DecodeEmitter {
public:
  DecodeEmitter(ImplicitLocOpBuilder &b, const AttentionSignature &sig,
                int64_t keyTile)
      : b(b), sig(sig), group(sig.groupSize()),
        kTile((keyTile + kLanes - 1) / kLanes * kLanes),
        keyWidth(sig.headDim % kLanes == 0 ? kLanes : 8),
        valueWidth(sig.vHeadDim % kLanes == 0 ? kLanes : 8) {}

  func::FuncOp emit(StringRef name);

private:
  /// Keys at positions [lo, hi), stored from cache row `lo - base` on.
  void visitKeys(Value lo, Value hi, Value base);
  void scores(Value row, Value count);
  void softmax();
  void accumulate(Value row, Value count);

  /// body(j, head, chunks) for the `count` cache rows from `row`, key by
  /// key and kv head by kv head (the cache's memory order), for each query
  /// head of the kv head: `chunks` are the kv head's `width`-wide vectors of
  /// `cache`, loaded once for its G query heads.
  void
  forEachCacheVector(Value cache, int64_t width, Value row, Value count,
                     function_ref<void(Value, Value, ArrayRef<Value>)> body);
  /// body(head) for every query head.
  void forEachHead(function_ref<void(Value)> body) {
    forLoop(b, index(b, 0), index(b, sig.heads), index(b, 1), body);
  }

  VectorType vector(int64_t width) {
    return VectorType::get({width}, b.getF32Type());
  }
  Value splat(VectorType type, Value scalar) {
    return vector::BroadcastOp::create(b, type, scalar);
  }
  Value zeros(VectorType type) {
    return arith::ConstantOp::create(
        b, type, DenseElementsAttr::get(type, b.getF32FloatAttr(0.0)));
  }
  /// A sum of lanes in any order (a tree, not 15 dependent adds).
  Value sumLanes(Value vec) {
    return vector::ReductionOp::create(b, vector::CombiningKind::ADD, vec,
                                       Value(), arith::FastMathFlags::reassoc);
  }

  ImplicitLocOpBuilder &b;
  const AttentionSignature &sig;
  int64_t group, kTile, keyWidth, valueWidth;

  // Per work item: batch, and scratch with one row per query head.
  Value batch, q, k, v;
  Value queries; // [Hq, D]: the query rows
  Value scoresT; // [Hq, kTile]: scores, then probabilities; -inf past count
  Value outputT; // [Hq, Dv]: unnormalised accumulator
  Value rowMax, rowSum, rowAlpha; // [Hq]
};

} // namespace

void DecodeEmitter::forEachCacheVector(
    Value cache, int64_t width, Value row, Value count,
    function_ref<void(Value, Value, ArrayRef<Value>)> body) {
  Value c0 = index(b, 0), c1 = index(b, 1);
  VectorType type = vector(width);
  int64_t dim = cast<MemRefType>(cache.getType()).getDimSize(3);
  forLoop(b, c0, count, c1, [&](Value j) {
    Value key = arith::AddIOp::create(b, row, j);
    forLoop(b, c0, index(b, sig.kvHeads), c1, [&](Value kvHead) {
      SmallVector<Value> chunks;
      for (int64_t c = 0; c < dim; c += width)
        chunks.push_back(vector::LoadOp::create(
            b, type, cache, ValueRange{batch, key, kvHead, index(b, c)}));
      Value firstHead = arith::MulIOp::create(b, kvHead, index(b, group));
      for (int64_t r = 0; r < group; ++r)
        body(j, arith::AddIOp::create(b, firstHead, index(b, r)), chunks);
    });
  });
}

/// s[h][j] for the `count` keys from cache row `row`.
void DecodeEmitter::scores(Value row, Value count) {
  VectorType kv = vector(keyWidth);
  forEachCacheVector(
      k, keyWidth, row, count, [&](Value j, Value head, ArrayRef<Value> keys) {
        Value acc = zeros(kv);
        for (auto [c, key] : llvm::enumerate(keys)) {
          Value qc = vector::LoadOp::create(
              b, kv, queries, ValueRange{head, index(b, c * keyWidth)});
          acc = vector::FMAOp::create(b, qc, key, acc);
        }
        memref::StoreOp::create(b, sumLanes(acc), scoresT, ValueRange{head, j});
      });
}

/// Per head, vectorised along the tile: soft-cap, running max, p = e^(s -
/// max) in place, running sum, and the factor the accumulator is scaled by.
void DecodeEmitter::softmax() {
  VectorType sv = vector(kLanes);
  float inf = std::numeric_limits<float>::infinity();
  Value negInf = f32(b, -inf), zero = f32(b, 0.0);
  double cap = sig.score.getSoftcap();
  forEachHead([&](Value head) {
    Value tileMax = splat(sv, negInf);
    SmallVector<Value> chunks;
    for (int64_t j = 0; j < kTile; j += kLanes) {
      Value s =
          vector::LoadOp::create(b, sv, scoresT, ValueRange{head, index(b, j)});
      if (cap > 0) {
        Value capped = arith::MulFOp::create(
            b, splat(sv, f32(b, cap)),
            math::TanhOp::create(
                b, arith::MulFOp::create(b, s, splat(sv, f32(b, 1.0 / cap)))));
        // Padding past the tile's keys stays -inf (the cap would bound it).
        s = arith::SelectOp::create(
            b,
            arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, s,
                                  splat(sv, negInf)),
            s, capped);
      }
      chunks.push_back(s);
      tileMax = arith::MaximumFOp::create(b, tileMax, s);
    }
    Value oldMax = memref::LoadOp::create(b, rowMax, head);
    Value newMax = arith::MaximumFOp::create(
        b, oldMax,
        vector::ReductionOp::create(b, vector::CombiningKind::MAXIMUMF,
                                    tileMax));
    // A head that has seen nothing keeps -inf; subtract 0 instead.
    Value safeMax = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, newMax, negInf),
        zero, newMax);
    Value alpha = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, oldMax, negInf),
        zero,
        math::ExpOp::create(b, arith::SubFOp::create(b, oldMax, safeMax)));
    Value sum = splat(sv, zero);
    for (int64_t c = 0; c < int64_t(chunks.size()); ++c) {
      Value p = math::ExpOp::create(
          b, arith::SubFOp::create(b, chunks[c], splat(sv, safeMax)));
      vector::StoreOp::create(b, p, scoresT,
                              ValueRange{head, index(b, c * kLanes)});
      sum = arith::AddFOp::create(b, sum, p);
    }
    Value total = arith::AddFOp::create(
        b,
        arith::MulFOp::create(b, memref::LoadOp::create(b, rowSum, head),
                              alpha),
        sumLanes(sum));
    memref::StoreOp::create(b, total, rowSum, head);
    memref::StoreOp::create(b, newMax, rowMax, head);
    memref::StoreOp::create(b, alpha, rowAlpha, head);
  });
}

/// OT[h] = alpha[h] * OT[h] + sum_j p[h][j] * V[row + j][h / G], key by key
/// (the cache's order); each value row is loaded once for the G heads.
void DecodeEmitter::accumulate(Value row, Value count) {
  VectorType vv = vector(valueWidth);
  forEachHead([&](Value head) {
    Value alpha = splat(vv, memref::LoadOp::create(b, rowAlpha, head));
    for (int64_t c = 0; c < sig.vHeadDim; c += valueWidth) {
      SmallVector<Value, 2> at{head, index(b, c)};
      vector::StoreOp::create(
          b,
          arith::MulFOp::create(b, vector::LoadOp::create(b, vv, outputT, at),
                                alpha),
          outputT, at);
    }
  });
  forEachCacheVector(
      v, valueWidth, row, count,
      [&](Value j, Value head, ArrayRef<Value> values) {
        Value p =
            splat(vv, memref::LoadOp::create(b, scoresT, ValueRange{head, j}));
        for (auto [c, value] : llvm::enumerate(values)) {
          SmallVector<Value, 2> at{head, index(b, c * valueWidth)};
          vector::StoreOp::create(
              b,
              vector::FMAOp::create(b, p, value,
                                    vector::LoadOp::create(b, vv, outputT, at)),
              outputT, at);
        }
      });
}

void DecodeEmitter::visitKeys(Value lo, Value hi, Value base) {
  Value kTileSize = index(b, kTile);
  VectorType sv = vector(kLanes);
  Value negInf = splat(sv, f32(b, -std::numeric_limits<float>::infinity()));
  forLoop(b, lo, hi, kTileSize, [&](Value kt) {
    Value count =
        arith::MinSIOp::create(b, kTileSize, arith::SubIOp::create(b, hi, kt));
    Value row = arith::SubIOp::create(b, kt, base);
    // Scores past `count` stay -inf: probability 0.
    forEachHead([&](Value head) {
      for (int64_t j = 0; j < kTile; j += kLanes)
        vector::StoreOp::create(b, negInf, scoresT,
                                ValueRange{head, index(b, j)});
    });
    scores(row, count);
    softmax();
    accumulate(row, count);
  });
}

func::FuncOp DecodeEmitter::emit(StringRef name) {
  int64_t dyn = ShapedType::kDynamic;
  Type f32Type = b.getF32Type(), idx = b.getIndexType();
  bool hasSinks = sig.score.getSinks();
  SmallVector<Type> inputs = getAttentionInputTypes(b, sig);
  inputs.append(
      {MemRefType::get({dyn, dyn, dyn, sig.heads, sig.vHeadDim}, f32Type),
       MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type),
       MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type), idx, idx, idx,
       idx});
  func::FuncOp func = createKernelFunc(b, name, inputs);
  OpBuilder::InsertionGuard guard(b);
  Block *entry = &func.getBody().front();
  b.setInsertionPointToStart(entry);
  unsigned arg = 0;
  q = entry->getArgument(arg++);
  k = entry->getArgument(arg++);
  v = entry->getArgument(arg++);
  Value sinks = hasSinks ? entry->getArgument(arg++) : Value();
  Value partialOut = entry->getArgument(arg++);
  Value partialMax = entry->getArgument(arg++);
  Value partialSum = entry->getArgument(arg++);
  Value position = entry->getArgument(arg++);
  Value numSplits = entry->getArgument(arg++);
  Value workBegin = entry->getArgument(arg++),
        workEnd = entry->getArgument(arg);

  auto scratch = [&](ArrayRef<int64_t> shape) {
    return memref::AllocaOp::create(b, MemRefType::get(shape, f32Type),
                                    ValueRange(), b.getI64IntegerAttr(64))
        .getResult();
  };
  queries = scratch({sig.heads, sig.headDim});
  scoresT = scratch({sig.heads, kTile});
  outputT = scratch({sig.heads, sig.vHeadDim});
  rowMax = scratch({sig.heads});
  rowSum = scratch({sig.heads});
  rowAlpha = scratch({sig.heads});

  Value c0 = index(b, 0), c1 = index(b, 1);
  Value numQueries = memref::DimOp::create(b, q, 1);
  Value capacity = memref::DimOp::create(b, k, 1);
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  VectorType kv = vector(keyWidth), vv = vector(valueWidth);

  forLoop(b, workBegin, workEnd, c1, [&](Value w) {
    // w = (batch * T + query) * num_splits + split.
    Value split = arith::RemUIOp::create(b, w, numSplits);
    Value rest = arith::DivUIOp::create(b, w, numSplits);
    Value query = arith::RemUIOp::create(b, rest, numQueries);
    batch = arith::DivUIOp::create(b, rest, numQueries);
    Value first = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, split, c0);

    // The query rows, and the running state (a sink counts once: in the
    // first split).
    forEachHead([&](Value head) {
      for (int64_t c = 0; c < sig.headDim; c += keyWidth)
        vector::StoreOp::create(
            b,
            vector::LoadOp::create(b, kv, q,
                                   ValueRange{batch, query, head, index(b, c)}),
            queries, ValueRange{head, index(b, c)});
      for (int64_t c = 0; c < sig.vHeadDim; c += valueWidth)
        vector::StoreOp::create(b, zeros(vv), outputT,
                                ValueRange{head, index(b, c)});
      Value max = negInf, sum = f32(b, 0.0);
      if (sinks) {
        max = arith::SelectOp::create(
            b, first, memref::LoadOp::create(b, sinks, head), negInf);
        sum = arith::SelectOp::create(b, first, f32(b, 1.0), sum);
      }
      memref::StoreOp::create(b, max, rowMax, head);
      memref::StoreOp::create(b, sum, rowSum, head);
    });

    auto [lo, hi] =
        getSplitKeyRange(b, sig.mask, arith::AddIOp::create(b, position, query),
                         split, numSplits, index(b, kTile));
    // Rows run from (lo / capacity) * capacity up to the wrap, then from 0.
    Value base = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, lo, capacity), capacity);
    Value wrap = arith::AddIOp::create(b, base, capacity);
    visitKeys(lo, arith::MinSIOp::create(b, hi, wrap), base);
    visitKeys(wrap, hi, wrap);

    forEachHead([&](Value head) {
      SmallVector<Value, 4> at{split, batch, query, head};
      memref::StoreOp::create(b, memref::LoadOp::create(b, rowMax, head),
                              partialMax, at);
      memref::StoreOp::create(b, memref::LoadOp::create(b, rowSum, head),
                              partialSum, at);
      for (int64_t c = 0; c < sig.vHeadDim; c += valueWidth)
        vector::StoreOp::create(
            b,
            vector::LoadOp::create(b, vv, outputT,
                                   ValueRange{head, index(b, c)}),
            partialOut, ValueRange{split, batch, query, head, index(b, c)});
    });
  });
  return func;
}

func::FuncOp hybrid::cpu::emitDecodeKernel(ImplicitLocOpBuilder &b,
                                           StringRef name,
                                           const AttentionSignature &sig,
                                           int64_t keyTile) {
  return DecodeEmitter(b, sig, keyTile).emit(name);
}

func::FuncOp hybrid::cpu::emitCombineKernel(ImplicitLocOpBuilder &b,
                                            StringRef name,
                                            const AttentionSignature &sig) {
  int64_t dyn = ShapedType::kDynamic;
  Type f32Type = b.getF32Type(), idx = b.getIndexType();
  auto partialOutType =
      MemRefType::get({dyn, dyn, dyn, sig.heads, sig.vHeadDim}, f32Type);
  auto partialType = MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type);
  auto outType = MemRefType::get({dyn, dyn, sig.heads, sig.vHeadDim}, f32Type);
  func::FuncOp func = createKernelFunc(
      b, name, {partialOutType, partialType, partialType, outType, idx, idx});
  OpBuilder::InsertionGuard guard(b);
  Block *entry = &func.getBody().front();
  b.setInsertionPointToStart(entry);
  Value partialOut = entry->getArgument(0), partialMax = entry->getArgument(1),
        partialSum = entry->getArgument(2), out = entry->getArgument(3);
  Value c0 = index(b, 0), c1 = index(b, 1);
  Value numSplits = memref::DimOp::create(b, partialMax, 0);
  Value numQueries = memref::DimOp::create(b, out, 1);
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  Value zero = f32(b, 0.0);
  // One work item per (batch, query position) row of the output.
  forLoop(b, entry->getArgument(4), entry->getArgument(5), c1, [&](Value w) {
    Value batch = arith::DivUIOp::create(b, w, numQueries);
    Value position = arith::RemUIOp::create(b, w, numQueries);
    forLoop(b, c0, index(b, sig.heads), c1, [&](Value h) {
      auto at = [&](Value split) {
        return SmallVector<Value>{split, batch, position, h};
      };
      Value max = getMaxOverSplits(b, partialMax, numSplits, at);
      forLoop(b, c0, index(b, sig.vHeadDim), c1, [&](Value e) {
        memref::StoreOp::create(b, zero, out,
                                ValueRange{batch, position, h, e});
      });
      // weight(split) = e^(max_split - max); splits that saw nothing: 0.
      Value sum =
          reduceLoop(b, c0, numSplits, zero, [&](Value s, Value acc) -> Value {
            Value m = memref::LoadOp::create(b, partialMax, at(s));
            Value weight = arith::SelectOp::create(
                b,
                arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, m, negInf),
                zero, math::ExpOp::create(b, arith::SubFOp::create(b, m, max)));
            forLoop(b, c0, index(b, sig.vHeadDim), c1, [&](Value e) {
              SmallVector<Value, 4> o{batch, position, h, e};
              Value x = memref::LoadOp::create(
                  b, partialOut, ValueRange{s, batch, position, h, e});
              memref::StoreOp::create(
                  b,
                  arith::AddFOp::create(b, memref::LoadOp::create(b, out, o),
                                        arith::MulFOp::create(b, weight, x)),
                  out, o);
            });
            Value l = memref::LoadOp::create(b, partialSum, at(s));
            return arith::AddFOp::create(b, acc,
                                         arith::MulFOp::create(b, weight, l));
          });
      Value inverse = arith::SelectOp::create(
          b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, sum, zero),
          arith::DivFOp::create(b, f32(b, 1.0), sum), zero);
      forLoop(b, c0, index(b, sig.vHeadDim), c1, [&](Value e) {
        SmallVector<Value, 4> o{batch, position, h, e};
        memref::StoreOp::create(
            b,
            arith::MulFOp::create(b, memref::LoadOp::create(b, out, o),
                                  inverse),
            out, o);
      });
    });
  });
  return func;
}
