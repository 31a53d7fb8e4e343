//===- FlashKernel.cpp - Fused, mask-aware flash attention for CPUs ------===//
//
// One work item computes a tile of query positions for all query heads of one
// kv head. Its R = group * q_tile rows live along vector lanes: queries are
// packed transposed once per work item (QT[d][r]) so that both products are
// broadcast-FMA micro-kernels, and the online softmax is vertical (no
// horizontal reductions):
//
//   ST[j][r]  = sum_d K[j][d] * QT[d][r]          (scores, transposed)
//   OT[e][r]  = alpha[r] * OT[e][r] + sum_j V[j][e] * PT[j][r]
//
// Each key tile's keys and values are copied once into scratch (KT, VT),
// where every row block of the work item reads them.
//
// The key tiles visited are the mask's range for the first and last query of
// the work item. Keys and values may live in a ring of rows (a decode
// session's sliding-window or chunk cache, for steps of many tokens): key
// position j is row (firstRow + j) % rows, so the range is at most two runs
// of consecutive rows, visited one after the other. Each block of 32 rows
// computes, per key tile, only the keys its rows see (from its first row's
// begin to its last row's end: ranges grow with the position), and only row
// vectors that do not see all of them evaluate the mask per element. So a work
// item of many rows (long prompts: 256) shares each key and value it loads,
// while the keys a block computes are those of a 32-row work item: what the
// mask hides is not computed.
//
// Decode steps, which bring few queries, have their own kernel
// (DecodeKernel.cpp).
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

// Register blocking of the micro-kernels: kBlock keys (or value dims) by
// kRowVectors vectors of rows gives 16 accumulators.
constexpr int64_t kBlock = 8;
constexpr int64_t kRowVectors = 2;
constexpr int64_t kRowBlock = kLanes * kRowVectors;

/// One step of both micro-kernels: acc[i * kRowVectors + n] += scalar(i) *
/// rows[n] for the kBlock scalars (keys' or values' elements), broadcast.
SmallVector<Value> broadcastFMA(ImplicitLocOpBuilder &b, VectorType vec,
                                function_ref<Value(int64_t)> scalar,
                                ArrayRef<Value> rows, ValueRange acc) {
  SmallVector<Value> next;
  for (int64_t i = 0; i < kBlock; ++i) {
    Value x = vector::BroadcastOp::create(b, vec, scalar(i));
    for (int64_t n = 0; n < kRowVectors; ++n)
      next.push_back(
          vector::FMAOp::create(b, x, rows[n], acc[i * kRowVectors + n]));
  }
  return next;
}

/// The rows x cols window of 2-D scratch at (row, col). The micro-kernels
/// load their kBlock keys or values through it at constant indices, which
/// become address displacements: one register for all of them, where
/// kBlock loop-invariant index registers spilled.
Value getWindow(ImplicitLocOpBuilder &b, Value scratch, OpFoldResult row,
                OpFoldResult col, int64_t rows, int64_t cols) {
  OpFoldResult one = b.getIndexAttr(1);
  return memref::SubViewOp::create(
      b, scratch, ArrayRef<OpFoldResult>{row, col},
      ArrayRef<OpFoldResult>{b.getIndexAttr(rows), b.getIndexAttr(cols)},
      ArrayRef<OpFoldResult>{one, one});
}

class FlashEmitter {
public:
  FlashEmitter(ImplicitLocOpBuilder &b, const AttentionSignature &sig,
               const TileSizes &tiles, Type kvElement)
      : b(b), sig(sig), kvElement(kvElement), group(sig.groupSize()),
        qTile(tiles.queries), kTile(tiles.keys), rows(group * tiles.queries),
        vec(VectorType::get({kLanes}, b.getF32Type())),
        mask(VectorType::get({kLanes}, b.getI1Type())),
        ivec(VectorType::get({kLanes}, b.getI32Type())) {}

  func::FuncOp emit(StringRef name);

private:
  // Visible key range [begin, end) of the query at `position` (index values).
  Value keyBegin(Value position);
  Value keyEnd(Value position);

  // Both fill the work item's first `usedRows` rows (whole row blocks).
  void packQueries(Value batch, Value group, Value q0, Value valid,
                   Value usedRows);
  void initRows(Value group, Value q0, Value valid, Value usedRows);
  // Copies the `count` keys and values of the tile at kt into KT and VT.
  void packKeyTile(Value batch, Value group, Value kt, Value count);
  // One block of kRowBlock rows from `rb` over the keys [kt + jLo, kt + jEnd)
  // of the tile at kt: the keys some row of the block sees.
  void scores(Value jLo, Value jEnd, Value rb);
  void softmax(Value kt, Value jLo, Value jEnd, Value rb, Value validRows);
  void softmaxRows(Value kt, Value jLo, Value jEnd, Value rc, bool masked);
  void accumulate(Value jLo, Value jEnd, Value rb);
  void store(Value batch, Value g, Value q0, Value valid);
  /// Key tiles over positions [lo, hi) for the first `validRows` rows.
  void visitKeys(Value batch, Value group, Value lo, Value hi, Value validRows);
  /// The same over positions [lo, hi) of one run of rows (rowShift).
  void visitRun(Value batch, Value group, Value lo, Value hi, Value validRows);

  Value splat(Value scalar) {
    return vector::BroadcastOp::create(b, vec, scalar);
  }
  Value zeros() {
    return arith::ConstantOp::create(
        b, vec, DenseElementsAttr::get(vec, b.getF32FloatAttr(0.0)));
  }
  Value loadVec(Value memref, ValueRange indices) {
    return vector::LoadOp::create(b, vec, memref, indices);
  }

  ImplicitLocOpBuilder &b;
  const AttentionSignature &sig;
  Type kvElement; // of k and v: f32, bf16 or f8E4M3FN (widened as copied)
  int64_t group, qTile, kTile, rows;
  VectorType vec, mask, ivec;

  // Kernel arguments and per-call values: `numKeys` positions in all, the
  // first query at `offset`; key position j in row (firstRow + j) %
  // cacheRows.
  Value q, k, v, sinks, out, numKeys, offset, firstRow, cacheRows;
  // The run of rows being visited: key position j is row j + rowShift.
  Value rowShift;
  // Scratch reused by every work item.
  Value queriesT, scoresT, outputT, keysT, valuesT, rowMax, rowSum, rowAlpha,
      rowBegin, rowEnd;
};

} // namespace

Value FlashEmitter::keyBegin(Value position) {
  return getKeyBegin(b, sig.mask, position);
}

Value FlashEmitter::keyEnd(Value position) {
  return getKeyEnd(b, sig.mask, position, numKeys);
}

/// QT[d][r] = q[b, q0 + r / group, g * group + r % group, d]; rows past the
/// last query are zero.
void FlashEmitter::packQueries(Value batch, Value g, Value q0, Value valid,
                               Value usedRows) {
  Value c0 = index(b, 0), c1 = index(b, 1), groupSize = index(b, group);
  Value zero = f32(b, 0.0);
  forLoop(b, c0, usedRows, c1, [&](Value r) {
    Value i = arith::DivUIOp::create(b, r, groupSize);
    Value head =
        arith::AddIOp::create(b, arith::MulIOp::create(b, g, groupSize),
                              arith::RemUIOp::create(b, r, groupSize));
    Value isValid =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, valid);
    // Clamped so that padding rows read a real row; their value is dropped.
    Value position = arith::AddIOp::create(
        b, q0,
        arith::MinUIOp::create(b, i, arith::SubIOp::create(b, valid, c1)));
    forLoop(b, c0, index(b, sig.headDim), c1, [&](Value d) {
      Value x =
          memref::LoadOp::create(b, q, ValueRange{batch, position, head, d});
      memref::StoreOp::create(b, arith::SelectOp::create(b, isValid, x, zero),
                              queriesT, ValueRange{d, r});
    });
  });
}

/// Running max and sum per row (a sink starts them at its logit), the
/// visible key range per row, and a zero accumulator.
void FlashEmitter::initRows(Value g, Value q0, Value valid, Value usedRows) {
  Value c0 = index(b, 0), c1 = index(b, 1), groupSize = index(b, group);
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  forLoop(b, c0, usedRows, c1, [&](Value r) {
    Value i = arith::DivUIOp::create(b, r, groupSize);
    if (sinks) {
      Value head =
          arith::AddIOp::create(b, arith::MulIOp::create(b, g, groupSize),
                                arith::RemUIOp::create(b, r, groupSize));
      memref::StoreOp::create(b, memref::LoadOp::create(b, sinks, head), rowMax,
                              r);
      memref::StoreOp::create(b, f32(b, 1.0), rowSum, r);
    } else {
      memref::StoreOp::create(b, negInf, rowMax, r);
      memref::StoreOp::create(b, f32(b, 0.0), rowSum, r);
    }
    Value position =
        arith::AddIOp::create(b, offset, arith::AddIOp::create(b, q0, i));
    Value isValid =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i, valid);
    Value begin = keyBegin(position), end = keyEnd(position);
    // Padding rows see nothing.
    end = arith::SelectOp::create(b, isValid, end, begin);
    auto toI32 = [&](Value x) {
      return arith::IndexCastOp::create(b, b.getI32Type(), x).getResult();
    };
    memref::StoreOp::create(b, toI32(begin), rowBegin, r);
    memref::StoreOp::create(b, toI32(end), rowEnd, r);
  });
  Value zero = zeros();
  forLoop(b, c0, index(b, sig.vHeadDim), c1, [&](Value e) {
    forLoop(b, c0, usedRows, index(b, kLanes), [&](Value r) {
      vector::StoreOp::create(b, zero, outputT, ValueRange{e, r});
    });
  });
}

/// KT[j] = k[batch, kt + j + rowShift, g] and VT[j] = v[...] for j < count;
/// KT's rows from count to the end of its key block are zeros (the scores
/// micro-kernel reads whole blocks). In the caller's tensors consecutive
/// keys are Hkv * D floats apart, 4 KiB at 8 kv heads of 128: a tile's keys
/// would fall into a few L1 sets and be read from L2 by every row block.
/// KT's and VT's rows are one vector longer than D (no power-of-two stride).
/// The copy costs one load and store per element for the 2 * G * q_tile /
/// 16 FMAs each element feeds.
void FlashEmitter::packKeyTile(Value batch, Value g, Value kt, Value count) {
  Value c0 = index(b, 0), c1 = index(b, 1), keyBlock = index(b, kBlock);
  // Rows are copied in straight-line vectors: as a loop, LLVM made each row
  // a memcpy call, a call and a string move for 8 or 16 vector moves.
  auto copyRow = [&](Value from, Value row, Value to, Value j, int64_t dim) {
    // Whole vectors, or half vectors where the dim is 8 modulo 16.
    int64_t width = dim % kLanes == 0 ? kLanes : kBlock;
    for (int64_t d = 0; d < dim; d += width)
      vector::StoreOp::create(
          b, loadAsF32(b, width, from, ValueRange{batch, row, g, index(b, d)}),
          to, ValueRange{j, index(b, d)});
  };
  forLoop(b, c0, count, c1, [&](Value j) {
    Value row =
        arith::AddIOp::create(b, arith::AddIOp::create(b, kt, j), rowShift);
    copyRow(k, row, keysT, j, sig.headDim);
    copyRow(v, row, valuesT, j, sig.vHeadDim);
  });
  Value zero = zeros();
  Value blockEnd = arith::MulIOp::create(
      b, arith::CeilDivUIOp::create(b, count, keyBlock), keyBlock);
  forLoop(b, count, blockEnd, c1, [&](Value j) {
    for (int64_t d = 0; d < sig.headDim; d += kLanes)
      vector::StoreOp::create(b, zero, keysT, ValueRange{j, index(b, d)});
  });
}

/// ST[j][r] of the block's rows for keys kt + [jLo, jEnd): kBlock keys by
/// kRowVectors row vectors per micro-kernel, the key dim innermost.
void FlashEmitter::scores(Value jLo, Value jEnd, Value rb) {
  Value c0 = index(b, 0), c1 = index(b, 1);
  forLoop(b, jLo, jEnd, index(b, kBlock), [&](Value jb) {
    Value keyRows =
        getWindow(b, keysT, jb, b.getIndexAttr(0), kBlock, sig.headDim);
    SmallVector<Value> init(kBlock * kRowVectors, zeros());
    auto loop = scf::ForOp::create(
        b, c0, index(b, sig.headDim), c1, init,
        [&](OpBuilder &nested, Location loc, Value d, ValueRange acc) {
          ImplicitLocOpBuilder ib(loc, nested);
          SmallVector<Value> qv;
          for (int64_t n = 0; n < kRowVectors; ++n)
            qv.push_back(vector::LoadOp::create(
                ib, vec, queriesT,
                ValueRange{
                    d, arith::AddIOp::create(ib, rb, index(ib, n * kLanes))}));
          scf::YieldOp::create(ib, broadcastFMA(
                                       ib, vec,
                                       [&](int64_t j) -> Value {
                                         return memref::LoadOp::create(
                                             ib, keyRows,
                                             ValueRange{index(ib, j), d});
                                       },
                                       qv, acc));
        });
    for (int64_t j = 0; j < kBlock; ++j)
      for (int64_t n = 0; n < kRowVectors; ++n)
        vector::StoreOp::create(
            b, loop.getResult(j * kRowVectors + n), scoresT,
            ValueRange{arith::AddIOp::create(b, jb, index(b, j)),
                       arith::AddIOp::create(b, rb, index(b, n * kLanes))});
  });
}

/// Online softmax over the block's keys, one vector of rows at a time; a
/// vector whose rows all see every one of them skips the mask.
void FlashEmitter::softmax(Value kt, Value jLo, Value jEnd, Value rb,
                           Value validRows) {
  Value lanes = index(b, kLanes);
  auto toI32 = [&](Value x) {
    return arith::IndexCastOp::create(b, b.getI32Type(), x).getResult();
  };
  Value keysBegin = toI32(arith::AddIOp::create(b, kt, jLo));
  Value keysEnd = toI32(arith::AddIOp::create(b, kt, jEnd));
  forLoop(b, rb, arith::AddIOp::create(b, rb, index(b, kRowBlock)), lanes,
          [&](Value rc) {
            // Rows are ordered by position and visible ranges grow with it: the
            // vector's last row starts latest, its first ends earliest.
            Value last = arith::SubIOp::create(
                b, arith::AddIOp::create(b, rc, lanes), index(b, 1));
            Value interior = arith::AndIOp::create(
                b,
                arith::AndIOp::create(
                    b,
                    arith::CmpIOp::create(b, arith::CmpIPredicate::ult, last,
                                          validRows),
                    arith::CmpIOp::create(
                        b, arith::CmpIPredicate::sle,
                        memref::LoadOp::create(b, rowBegin, last), keysBegin)),
                arith::CmpIOp::create(b, arith::CmpIPredicate::sge,
                                      memref::LoadOp::create(b, rowEnd, rc),
                                      keysEnd));
            ifThen(
                b, interior,
                [&] { softmaxRows(kt, jLo, jEnd, rc, /*masked=*/false); },
                [&] { softmaxRows(kt, jLo, jEnd, rc, /*masked=*/true); });
          });
}

/// Online softmax of the vector of rows at `rc`: soft-cap and mask the
/// scores, update the running max, turn scores into probabilities in place,
/// rescale the running sum and record the factor for the accumulator.
void FlashEmitter::softmaxRows(Value kt, Value jLo, Value jEnd, Value rc,
                               bool masked) {
  float inf = std::numeric_limits<float>::infinity();
  Value negInf = splat(f32(b, -inf)), zero = splat(f32(b, 0.0));
  double cap = sig.score.getSoftcap();
  Value begin, end;
  if (masked) {
    begin = vector::LoadOp::create(b, ivec, rowBegin, rc);
    end = vector::LoadOp::create(b, ivec, rowEnd, rc);
  }
  auto visible = [&](Value j) -> Value {
    Value key = arith::IndexCastOp::create(b, b.getI32Type(),
                                           arith::AddIOp::create(b, kt, j));
    Value keys = vector::BroadcastOp::create(b, ivec, key);
    return arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, keys, begin),
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, keys, end));
  };

  Value tileMax = reduceLoop(b, jLo, jEnd, negInf, [&](Value j, Value acc) {
    Value s = loadVec(scoresT, {j, rc});
    if (cap > 0) {
      Value c = splat(f32(b, cap)), inv = splat(f32(b, 1.0 / cap));
      s = arith::MulFOp::create(
          b, c, math::TanhOp::create(b, arith::MulFOp::create(b, s, inv)));
    }
    if (masked)
      s = arith::SelectOp::create(b, visible(j), s, negInf);
    vector::StoreOp::create(b, s, scoresT, ValueRange{j, rc});
    // acc > s ? acc : s, one vmaxps (arith.maximumf's NaN and signed-zero
    // rules take six instructions in a dependent chain). A NaN score may be
    // dropped here, but its probability is NaN all the same, and so is the
    // row's sum and output.
    return arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, acc, s), acc, s);
  });
  Value oldMax = loadVec(rowMax, {rc});
  Value newMax = arith::MaximumFOp::create(b, oldMax, tileMax);
  // A row that has seen nothing keeps -inf; subtract 0 instead.
  Value safeMax = arith::SelectOp::create(
      b, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, newMax, negInf),
      zero, newMax);
  Value scaledMax = scaleByLog2E(b, safeMax);
  Value alpha = arith::SelectOp::create(
      b, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, oldMax, negInf),
      zero, emitMaxRatio(b, oldMax, scaledMax));
  Value negScaledMax = arith::NegFOp::create(b, scaledMax);

  Value tileSum = reduceLoop(b, jLo, jEnd, zero, [&](Value j, Value acc) {
    Value s = loadVec(scoresT, {j, rc});
    Value p = emitSoftmaxExp(b, s, negScaledMax);
    if (masked)
      p = arith::SelectOp::create(b, visible(j), p, zero);
    vector::StoreOp::create(b, p, scoresT, ValueRange{j, rc});
    return arith::AddFOp::create(b, acc, p);
  });
  Value sum = arith::AddFOp::create(
      b, arith::MulFOp::create(b, loadVec(rowSum, {rc}), alpha), tileSum);
  vector::StoreOp::create(b, sum, rowSum, rc);
  vector::StoreOp::create(b, newMax, rowMax, rc);
  vector::StoreOp::create(b, alpha, rowAlpha, rc);
}

/// OT[e][r] = alpha[r] * OT[e][r] + sum_j VT[j][e] * PT[j][r].
void FlashEmitter::accumulate(Value jLo, Value jEnd, Value rb) {
  Value c0 = index(b, 0), c1 = index(b, 1);
  forLoop(b, c0, index(b, sig.vHeadDim), index(b, kBlock), [&](Value eb) {
    SmallVector<Value> dims;
    for (int64_t e = 0; e < kBlock; ++e)
      dims.push_back(arith::AddIOp::create(b, eb, index(b, e)));
    SmallVector<Value> rowIdx, init;
    for (int64_t n = 0; n < kRowVectors; ++n)
      rowIdx.push_back(arith::AddIOp::create(b, rb, index(b, n * kLanes)));
    for (int64_t e = 0; e < kBlock; ++e)
      for (int64_t n = 0; n < kRowVectors; ++n)
        init.push_back(
            arith::MulFOp::create(b, loadVec(outputT, {dims[e], rowIdx[n]}),
                                  loadVec(rowAlpha, {rowIdx[n]})));
    auto loop = scf::ForOp::create(
        b, jLo, jEnd, c1, init,
        [&](OpBuilder &nested, Location loc, Value j, ValueRange acc) {
          ImplicitLocOpBuilder ib(loc, nested);
          SmallVector<Value> pv;
          for (int64_t n = 0; n < kRowVectors; ++n)
            pv.push_back(vector::LoadOp::create(ib, vec, scoresT,
                                                ValueRange{j, rowIdx[n]}));
          Value values = getWindow(ib, valuesT, j, eb, 1, kBlock);
          scf::YieldOp::create(ib, broadcastFMA(
                                       ib, vec,
                                       [&](int64_t e) -> Value {
                                         return memref::LoadOp::create(
                                             ib, values,
                                             ValueRange{c0, index(ib, e)});
                                       },
                                       pv, acc));
        });
    for (int64_t e = 0; e < kBlock; ++e)
      for (int64_t n = 0; n < kRowVectors; ++n)
        vector::StoreOp::create(b, loop.getResult(e * kRowVectors + n), outputT,
                                ValueRange{dims[e], rowIdx[n]});
  });
}

/// out[b, q0 + i, head, e] = OT[e][r] / sum[r]; a row without any visible
/// key (sum 0) writes zeros.
void FlashEmitter::store(Value batch, Value g, Value q0, Value valid) {
  Value c0 = index(b, 0), c1 = index(b, 1), groupSize = index(b, group);
  Value zero = f32(b, 0.0);
  Value validRows = arith::MulIOp::create(b, valid, groupSize);
  forLoop(b, c0, validRows, c1, [&](Value r) {
    Value position =
        arith::AddIOp::create(b, q0, arith::DivUIOp::create(b, r, groupSize));
    Value head =
        arith::AddIOp::create(b, arith::MulIOp::create(b, g, groupSize),
                              arith::RemUIOp::create(b, r, groupSize));
    Value sum = memref::LoadOp::create(b, rowSum, r);
    Value inverse = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, sum, zero),
        arith::DivFOp::create(b, f32(b, 1.0), sum), zero);
    forLoop(b, c0, index(b, sig.vHeadDim), c1, [&](Value e) {
      Value x = memref::LoadOp::create(b, outputT, ValueRange{e, r});
      memref::StoreOp::create(b, arith::MulFOp::create(b, x, inverse), out,
                              ValueRange{batch, position, head, e});
    });
  });
}

void FlashEmitter::visitKeys(Value batch, Value g, Value lo, Value hi,
                             Value validRows) {
  Value c0 = index(b, 0), c1 = index(b, 1);
  // Positions [lo, hi) as runs of consecutive rows: those before the ring
  // wraps, then those after (none for a prompt's own keys).
  Value wrap = arith::SubIOp::create(b, cacheRows, firstRow);
  forLoop(b, c0, index(b, 2), c1, [&](Value run) {
    Value beforeWrap =
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, run, c0);
    Value runLo = arith::SelectOp::create(b, beforeWrap, lo,
                                          arith::MaxSIOp::create(b, lo, wrap));
    Value runHi = arith::SelectOp::create(
        b, beforeWrap, arith::MinSIOp::create(b, hi, wrap), hi);
    rowShift = arith::SelectOp::create(
        b, beforeWrap, firstRow, arith::SubIOp::create(b, firstRow, cacheRows));
    visitRun(batch, g, runLo, runHi, validRows);
  });
}

void FlashEmitter::visitRun(Value batch, Value g, Value lo, Value hi,
                            Value validRows) {
  Value c0 = index(b, 0), c1 = index(b, 1), kTileSize = index(b, kTile);
  Value block = index(b, kRowBlock), keyBlock = index(b, kBlock);
  Value lastValid = arith::SubIOp::create(b, validRows, c1);
  auto toIndex = [&](Value x) {
    return arith::IndexCastOp::create(b, b.getIndexType(), x).getResult();
  };
  forLoop(b, lo, hi, kTileSize, [&](Value kt) {
    Value count =
        arith::MinSIOp::create(b, kTileSize, arith::SubIOp::create(b, hi, kt));
    packKeyTile(batch, g, kt, count);
    forLoop(b, c0, validRows, block, [&](Value rb) {
      // The keys of the tile some row of the block sees: from the first
      // row's begin (in whole key blocks) to the last valid row's end (rows
      // are ordered by position, and visible ranges grow with it).
      Value blockLast = arith::MinUIOp::create(
          b, arith::AddIOp::create(b, rb, index(b, kRowBlock - 1)), lastValid);
      Value begin = arith::SubIOp::create(
          b, toIndex(memref::LoadOp::create(b, rowBegin, rb)), kt);
      Value jLo = arith::MulIOp::create(
          b,
          arith::DivUIOp::create(b, arith::MaxSIOp::create(b, begin, c0),
                                 keyBlock),
          keyBlock);
      Value jEnd = arith::MinSIOp::create(
          b,
          arith::SubIOp::create(
              b, toIndex(memref::LoadOp::create(b, rowEnd, blockLast)), kt),
          count);
      ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, jLo, jEnd),
             [&] {
               scores(jLo, jEnd, rb);
               softmax(kt, jLo, jEnd, rb, validRows);
               accumulate(jLo, jEnd, rb);
             });
    });
  });
}

func::FuncOp FlashEmitter::emit(StringRef name) {
  Type f32Type = b.getF32Type(), idx = b.getIndexType();
  SmallVector<Type> inputs = getAttentionInputTypes(b, sig, kvElement);
  inputs.append({getRowsType(b.getF32Type(), sig.heads, sig.vHeadDim), idx, idx,
                 idx, idx, idx});
  func::FuncOp func = createKernelFunc(b, name, inputs);
  OpBuilder::InsertionGuard guard(b);
  Block *entry = &func.getBody().front();
  b.setInsertionPointToStart(entry);
  unsigned arg = 0;
  q = entry->getArgument(arg++);
  k = entry->getArgument(arg++);
  v = entry->getArgument(arg++);
  if (sig.score.getSinks())
    sinks = entry->getArgument(arg++);
  out = entry->getArgument(arg++);
  numKeys = entry->getArgument(arg++);
  firstRow = entry->getArgument(arg++);
  Value tileArg = entry->getArgument(arg++),
        workBegin = entry->getArgument(arg++),
        workEnd = entry->getArgument(arg);

  auto scratch = [&](ArrayRef<int64_t> shape, Type type) {
    return memref::AllocaOp::create(b, MemRefType::get(shape, type),
                                    ValueRange(), b.getI64IntegerAttr(64))
        .getResult();
  };
  // Rows of the transposed scratch are one vector longer than needed: with
  // a power-of-two stride (256 rows: 1 KiB) a work item of few rows would
  // map all of QT's, ST's and OT's lines to a quarter of the L1 sets.
  int64_t stride = rows + kLanes;
  queriesT = scratch({sig.headDim, stride}, f32Type);
  scoresT = scratch({kTile, stride}, f32Type);
  outputT = scratch({sig.vHeadDim, stride}, f32Type);
  keysT = scratch({kTile, sig.headDim + kLanes}, f32Type);
  valuesT = scratch({kTile, sig.vHeadDim + kLanes}, f32Type);
  rowMax = scratch({rows}, f32Type);
  rowSum = scratch({rows}, f32Type);
  rowAlpha = scratch({rows}, f32Type);
  rowBegin = scratch({rows}, b.getI32Type());
  rowEnd = scratch({rows}, b.getI32Type());

  Value c1 = index(b, 1);
  Value numQueries = memref::DimOp::create(b, q, 1);
  cacheRows = memref::DimOp::create(b, k, 1);
  offset = arith::SubIOp::create(b, numKeys, numQueries);
  // Positions per work item: the caller's choice, at most the tile the
  // scratch is sized for (long prompts share each key among more rows, short
  // ones keep enough work items for every thread).
  Value qTileSize = arith::MaxUIOp::create(
      b, c1, arith::MinUIOp::create(b, tileArg, index(b, qTile)));
  Value numTiles = arith::CeilDivUIOp::create(b, numQueries, qTileSize);
  Value kvHeads = index(b, sig.kvHeads);

  forLoop(b, workBegin, workEnd, c1, [&](Value w) {
    // Heaviest tiles (last queries) first: better balance under causal masks.
    Value tile =
        arith::SubIOp::create(b, arith::SubIOp::create(b, numTiles, c1),
                              arith::RemUIOp::create(b, w, numTiles));
    Value rest = arith::DivUIOp::create(b, w, numTiles);
    Value g = arith::RemUIOp::create(b, rest, kvHeads);
    Value batch = arith::DivUIOp::create(b, rest, kvHeads);
    Value q0 = arith::MulIOp::create(b, tile, qTileSize);
    Value valid = arith::MinUIOp::create(
        b, qTileSize, arith::SubIOp::create(b, numQueries, q0));

    Value validRows = arith::MulIOp::create(b, valid, index(b, group));
    Value block = index(b, kRowBlock);
    Value usedRows = arith::MulIOp::create(
        b, arith::CeilDivUIOp::create(b, validRows, block), block);
    packQueries(batch, g, q0, valid, usedRows);
    initRows(g, q0, valid, usedRows);
    Value first = arith::AddIOp::create(b, offset, q0);
    Value last =
        arith::SubIOp::create(b, arith::AddIOp::create(b, first, valid), c1);
    visitKeys(batch, g, keyBegin(first), keyEnd(last), validRows);
    store(batch, g, q0, valid);
  });
  return func;
}

func::FuncOp hybrid::cpu::emitFlashKernel(ImplicitLocOpBuilder &b,
                                          StringRef name,
                                          const AttentionSignature &sig,
                                          const TileSizes &tiles,
                                          Type kvElement) {
  return FlashEmitter(b, sig, tiles, kvElement).emit(name);
}
