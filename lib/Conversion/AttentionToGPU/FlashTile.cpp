//===- FlashTile.cpp - One key tile of the flash kernel ------------------===//
//
// S = Q K^T (mma.sync fed by ldmatrix, or wgmma's operands), soft-cap and
// boundary masking, the online softmax with lazy rescaling, P packed as A
// operands, and O += P V by mma.sync.
//
//===----------------------------------------------------------------------===//

#include "FlashEmitter.h"
#include "TensorMemoryAccess.h"
#include "WarpgroupMma.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

Value FlashEmitter::pack(Value lo, Value hi) {
  Type bf16 = b.getBF16Type();
  auto truncate = [&](Value x) -> Value {
    return x.getType() == bf16 ? x : arith::TruncFOp::create(b, bf16, x);
  };
  Value pair = vector::FromElementsOp::create(
      b, VectorType::get({2}, bf16), ValueRange{truncate(lo), truncate(hi)});
  Value word =
      vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), pair);
  return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
}

Value FlashEmitter::loadPair(Value memref, ValueRange indices) {
  // Pairs start at even columns of rows with an even number of elements.
  Value pair = vector::LoadOp::create(
      b, VectorType::get({2}, b.getBF16Type()), memref, indices,
      /*nontemporal=*/false, llvm::MaybeAlign(4));
  Value word =
      vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()), pair);
  return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
}

SmallVector<Value> FlashEmitter::loadMatrix(Value memref, Value row, Value col,
                                            int64_t tiles, bool transpose) {
  Type bf16 = b.getBF16Type();
  Value matrix =
      nvgpu::LdMatrixOp::create(b, VectorType::get({tiles, 2}, bf16), memref,
                                ValueRange{row, col}, transpose, tiles);
  SmallVector<Value> registers;
  for (int64_t i = 0; i < tiles; ++i) {
    Value pair = vector::ExtractOp::create(b, matrix, ArrayRef<int64_t>{i});
    Value word = vector::BitCastOp::create(
        b, VectorType::get({1}, b.getI32Type()), pair);
    registers.push_back(
        vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0}));
  }
  return registers;
}

Accumulator FlashEmitter::mma(ArrayRef<Value> a, ArrayRef<Value> bFrag,
                              const Accumulator &c) {
  Type f32Type = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(
      b.getContext(), {f32Type, f32Type, f32Type, f32Type});
  Value d = NVVM::MmaOp::create(
      b, resultType, a, bFrag, ArrayRef<Value>(c), {16, 8, 16},
      /*b1Op=*/std::nullopt, /*intOverflow=*/std::nullopt,
      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  Accumulator result;
  for (int64_t i = 0; i < 4; ++i)
    result[i] = LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{i});
  return result;
}

Value FlashEmitter::quadReduce(Value x, bool max) {
  return reduceLanes(b, x, max, 4);
}

std::array<Value, 4> FlashEmitter::getQueryFrag(int64_t m, int64_t kd) {
  return queriesInRegisters ? queryFrags[m][kd / 16] : loadQueryFrag(m, kd);
}

std::array<Value, 4> FlashEmitter::loadQueryFrag(int64_t m, int64_t kd) {
  // Rows g and g + 8, columns 2t (+1) and 2t + 8 (+1).
  Value col = arith::AddIOp::create(b, arith::MulIOp::create(b, t, index(b, 2)),
                                    index(b, kd));
  Value col8 = arith::AddIOp::create(b, col, index(b, 8));
  auto at = [&](int64_t r, Value c) {
    return loadPair(q, ValueRange{batch, rowPosition[r], rowHead[r], c});
  };
  return {at(2 * m, col), at(2 * m + 1, col), at(2 * m, col8),
          at(2 * m + 1, col8)};
}

FlashEmitter::Scores FlashEmitter::multiplyKeys(Value keys) {
  // B operands (rows: keys g, columns: head dims 2t, 2t + 1) come from
  // ldmatrix: 8x8 tiles of K (key rows, dim columns), lane L addressing row
  // L % 8 of tile L / 8; x4 loads two 16-dim steps. Each K fragment feeds
  // every mma tile of the warp.
  Value zero = f32(b, 0.0);
  Value laneRow = arith::RemUIOp::create(b, lane, index(b, 8));
  Value laneTile = arith::DivUIOp::create(b, lane, index(b, 8));
  Scores scores(mTiles, SmallVector<Accumulator>(
                            kBlocks, Accumulator{zero, zero, zero, zero}));
  for (int64_t kd = 0; kd < dim; kd += 32) {
    int64_t tiles = kd + 32 <= dim ? 4 : 2;
    Fragments a(mTiles);
    for (int64_t m = 0; m < mTiles; ++m)
      for (int64_t step = 0; step < tiles / 2; ++step)
        a[m].push_back(getQueryFrag(m, kd + 16 * step));
    Value col = arith::AddIOp::create(
        b, arith::MulIOp::create(b, laneTile, index(b, 8)), index(b, kd));
    for (int64_t nb = 0; nb < kBlocks; ++nb) {
      Value key = arith::AddIOp::create(b, laneRow, index(b, nb * 8));
      SmallVector<Value> frags = loadMatrix(keys, key, col, tiles, false);
      for (int64_t m = 0; m < mTiles; ++m)
        for (int64_t step = 0; step < tiles / 2; ++step)
          scores[m][nb] =
              mma(a[m][step], {frags[2 * step], frags[2 * step + 1]},
                  scores[m][nb]);
    }
  }
  return scores;
}

SmallVector<Value>
FlashEmitter::multiplyKeysByWarpgroup(Value keys, bool wait,
                                      SmallVector<Value> *queries) {
  // One m64nKTILEk16 per 16 head dims: B is the K tile, K-major (rows of
  // keys); a 16-dim step starts 32 bytes further into its block.
  Value descriptor = getMatrixDescriptor(b, keys, /*leadingBytes=*/16,
                                         /*strideBytes=*/8 * 2 * kSwizzleRow);
  SmallVector<std::array<Value, 4>> steps;
  SmallVector<Value> descriptors;
  for (int64_t kd = 0; kd < dim; kd += 16) {
    steps.push_back(getQueryFrag(0, kd));
    descriptors.push_back(offsetDescriptor(
        b, descriptor,
        (kd / kSwizzleRow) * kTile * 2 * kSwizzleRow + (kd % kSwizzleRow) * 2));
    if (queries)
      queries->append(steps.back().begin(), steps.back().end());
  }
  return warpgroupMmaFromZero(b, kTile / 2, steps, descriptors,
                              /*nMajor=*/false, wait);
}

SmallVector<Value> FlashEmitter::updateSoftmax(Scores &scores, Value kt,
                                               ValueRange state, Value &grows,
                                               SmallVector<Value> *alpha) {
  capAndMask(scores, kt, arith::AddIOp::create(b, kt, kTileSize));
  SmallVector<Value> tileMax;
  grows = getTileMaxima(scores, state, tileMax);
  SmallVector<Value> next = moveMaxima(state, tileMax, grows, alpha);
  MutableArrayRef<Value> all(next);
  exponentiate(scores, all.take_front(threadRows),
               all.slice(threadRows, threadRows));
  return next;
}

FlashEmitter::Scores FlashEmitter::toScores(ArrayRef<Value> d) {
  // wgmma's accumulators, 4 per 8 columns, in mma.sync's layout.
  Scores scores(1, SmallVector<Accumulator>(kBlocks));
  for (int64_t i = 0; i < kTile / 2; ++i)
    scores[0][i / 4][i % 4] = d[i];
  return scores;
}

void FlashEmitter::capAndMask(Scores &scores, Value kt, Value nextKt) {
  double cap = sig.score.getSoftcap();
  if (cap > 0)
    for (auto &tileScores : scores)
      for (Accumulator &acc : tileScores)
        for (Value &s : acc)
          s = arith::MulFOp::create(
              b, f32(b, cap),
              math::TanhOp::create(
                  b, arith::MulFOp::create(b, s, f32(b, 1 / cap))));
  Value interior = arith::AndIOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::sle, lastBegin, kt),
      arith::CmpIOp::create(b, arith::CmpIPredicate::sle, nextKt, firstEnd));
  SmallVector<Value> flat;
  for (const auto &tileScores : scores)
    for (const Accumulator &acc : tileScores)
      flat.append(acc.begin(), acc.end());
  ValueRange masked = ifThenElse(
      b, interior, SmallVector<Type>(flat.size(), b.getF32Type()),
      [&] { return flat; },
      [&] {
        SmallVector<Value> hidden = flat;
        Value negInf = f32(b, -std::numeric_limits<float>::infinity());
        for (int64_t m = 0; m < mTiles; ++m)
          for (int64_t nb = 0; nb < kBlocks; ++nb)
            for (int64_t i = 0; i < 4; ++i) {
              int64_t r = 2 * m + i / 2;
              Value key = arith::AddIOp::create(
                  b, kt,
                  arith::AddIOp::create(
                      b, arith::MulIOp::create(b, t, index(b, 2)),
                      index(b, nb * 8 + i % 2)));
              Value visible = arith::AndIOp::create(
                  b,
                  arith::CmpIOp::create(b, arith::CmpIPredicate::sge, key,
                                        rowBegin[r]),
                  arith::CmpIOp::create(b, arith::CmpIPredicate::slt, key,
                                        rowEnd[r]));
              Value &s = hidden[(m * kBlocks + nb) * 4 + i];
              s = arith::SelectOp::create(b, visible, s, negInf);
            }
        return hidden;
      });
  for (int64_t m = 0; m < mTiles; ++m)
    for (int64_t nb = 0; nb < kBlocks; ++nb)
      for (int64_t i = 0; i < 4; ++i)
        scores[m][nb][i] = masked[(m * kBlocks + nb) * 4 + i];
}

Value FlashEmitter::getTileMaxima(const Scores &scores, ValueRange state,
                                  SmallVector<Value> &tileMax) {
  // Row 2m + h holds entries 2h and 2h + 1 of the accumulators of mma
  // tile m.
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  tileMax.assign(threadRows, Value());
  Value grows = arith::ConstantOp::create(b, b.getBoolAttr(false));
  for (int64_t r = 0; r < threadRows; ++r) {
    int64_t m = r / 2, h = r % 2;
    tileMax[r] = negInf;
    for (const Accumulator &acc : scores[m])
      tileMax[r] = arith::MaximumFOp::create(
          b, tileMax[r],
          arith::MaximumFOp::create(b, acc[2 * h], acc[2 * h + 1]));
    tileMax[r] = quadReduce(tileMax[r], /*max=*/true);
    // -inf + slack is -inf: a row's first visible key always moves it.
    grows = arith::OrIOp::create(
        b, grows,
        arith::CmpFOp::create(
            b, arith::CmpFPredicate::OGT, tileMax[r],
            arith::AddFOp::create(b, state[r], f32(b, rescaleSlack))));
  }
  // Lazy rescaling: the running max m only moves when some row of the
  // warp sees a score more than `rescaleSlack` above it; then every row
  // of the warp rescales O and l by e^(m - m'). Otherwise m stays, the
  // tile's probabilities are e^(s - m) <= e^slack (exact: O and l share
  // m), and the warp skips the O x alpha multiplies (64 per thread at
  // value dim 128) -- after the first tiles, almost always.
  return NVVM::VoteSyncOp::create(
      b, b.getI1Type(), arith::ConstantOp::create(b, b.getI32IntegerAttr(-1)),
      grows, NVVM::VoteSyncKind::any);
}

SmallVector<Value> FlashEmitter::moveMaxima(ValueRange state,
                                            ArrayRef<Value> tileMax,
                                            Value grows,
                                            SmallVector<Value> *alpha) {
  int64_t sumAt = threadRows, kept = alpha ? 2 * threadRows : state.size();
  SmallVector<Value> unmoved(state.begin(), state.begin() + kept);
  if (alpha)
    unmoved.append(threadRows, f32(b, 1.0));
  ValueRange results = ifThenElse(
      b, grows, SmallVector<Type>(unmoved.size(), b.getF32Type()),
      [&] {
        SmallVector<Value> rescaled(state.begin(), state.begin() + kept);
        for (int64_t r = 0; r < threadRows; ++r) {
          Value newMax = arith::MaximumFOp::create(b, state[r], tileMax[r]);
          // A row that has seen nothing keeps -inf; subtract 0 instead.
          Value factor = expOfDifference(b, state[r], finiteOrZero(b, newMax));
          rescaled[r] = newMax;
          rescaled[sumAt + r] =
              arith::MulFOp::create(b, state[sumAt + r], factor);
          if (alpha) {
            rescaled.push_back(factor);
            continue;
          }
          scaleRowOutputs(MutableArrayRef(rescaled).drop_front(2 * threadRows),
                          r, factor);
        }
        return rescaled;
      },
      [&] { return unmoved; });
  SmallVector<Value> moved(results.begin(), results.begin() + kept);
  if (alpha)
    alpha->assign(results.begin() + kept, results.end());
  return moved;
}

void FlashEmitter::scaleRowOutputs(MutableArrayRef<Value> outputs, int64_t r,
                                   Value factor) {
  // Row r's values: elements 2 (r % 2) and 2 (r % 2) + 1 of each of its
  // accumulator tile's value blocks.
  for (int64_t vb = 0; vb < vBlocks; ++vb)
    for (int64_t i = 2 * (r % 2); i < 2 * (r % 2) + 2; ++i) {
      Value &o = outputs[((r / 2) * vBlocks + vb) * 4 + i];
      o = arith::MulFOp::create(b, o, factor);
    }
}

void FlashEmitter::rescaleOutputs(MutableArrayRef<Value> outputs,
                                  ArrayRef<Value> alpha) {
  for (int64_t r = 0; r < threadRows; ++r)
    scaleRowOutputs(outputs, r, alpha[r]);
}

void FlashEmitter::exponentiate(Scores &scores, ArrayRef<Value> maxima,
                                MutableArrayRef<Value> sums) {
  for (int64_t r = 0; r < threadRows; ++r) {
    int64_t m = r / 2, h = r % 2;
    Value sum = sums[r];
    // p = 2^(s log2 e - max log2 e): one FMA and one ex2 per score.
    Value log2e = f32(b, 1.4426950408889634);
    Value scaledMax = arith::NegFOp::create(
        b, arith::MulFOp::create(b, finiteOrZero(b, maxima[r]), log2e));
    for (Accumulator &acc : scores[m])
      for (int64_t i = 2 * h; i < 2 * h + 2; ++i) {
        acc[i] =
            exp2Flushed(b, math::FmaOp::create(b, acc[i], log2e, scaledMax));
        sum = arith::AddFOp::create(b, sum, acc[i]);
      }
    sums[r] = sum;
  }
}

FlashEmitter::Fragments FlashEmitter::packProbabilities(const Scores &scores) {
  // P as A operands, 16 keys (two accumulator blocks) per k step.
  Fragments probs(mTiles);
  for (int64_t m = 0; m < mTiles; ++m)
    for (int64_t kk = 0; kk < kBlocks / 2; ++kk) {
      const Accumulator &lo8 = scores[m][2 * kk], &hi8 = scores[m][2 * kk + 1];
      probs[m].push_back({pack(lo8[0], lo8[1]), pack(lo8[2], lo8[3]),
                          pack(hi8[0], hi8[1]), pack(hi8[2], hi8[3])});
    }
  return probs;
}

SmallVector<Value> FlashEmitter::getValueSteps(Value values) {
  // One m64nVDIMk16 per 16 keys: B is the V tile, N-major (rows of keys,
  // value dims contiguous), 64-dim blocks kTile rows apart.
  Value descriptor =
      getMatrixDescriptor(b, values, /*leadingBytes=*/kTile * 2 * kSwizzleRow,
                          /*strideBytes=*/8 * 2 * kSwizzleRow);
  SmallVector<Value> descriptors;
  for (int64_t kk = 0; kk < kBlocks / 2; ++kk)
    descriptors.push_back(
        offsetDescriptor(b, descriptor, kk * 16 * 2 * kSwizzleRow));
  return descriptors;
}

void FlashEmitter::multiplyValues(MutableArrayRef<Value> outputs,
                                  const Fragments &probs, Value values) {
  // B operands (rows: keys 2t, 2t + 1, columns: value dims g) come from
  // transposing ldmatrix on V (key rows, dim columns): per 16 keys, x4
  // gives two 8-dim blocks, lane L addressing key row 8 (L / 8 % 2) + L % 8
  // of dim block L / 16.
  Value laneRow = arith::RemUIOp::create(b, lane, index(b, 8));
  Value laneTile = arith::DivUIOp::create(b, lane, index(b, 8));
  Value keyHalf = arith::MulIOp::create(
      b, arith::RemUIOp::create(b, laneTile, index(b, 2)), index(b, 8));
  Value dimHalf = arith::MulIOp::create(
      b, arith::DivUIOp::create(b, lane, index(b, 16)), index(b, 8));
  auto at = [&](int64_t m, int64_t vb, int64_t i) -> Value & {
    return outputs[(m * vBlocks + vb) * 4 + i];
  };
  for (int64_t vb = 0; vb < vBlocks; vb += 2) {
    // acc[m][half]: value block vb + half of mma tile m.
    SmallVector<std::array<Accumulator, 2>> acc(mTiles);
    for (int64_t m = 0; m < mTiles; ++m)
      for (int64_t half = 0; half < 2; ++half)
        for (int64_t i = 0; i < 4; ++i)
          acc[m][half][i] = at(m, vb + half, i);
    Value col = arith::AddIOp::create(b, dimHalf, index(b, vb * 8));
    for (int64_t kk = 0; kk < kBlocks / 2; ++kk) {
      Value key = arith::AddIOp::create(
          b, arith::AddIOp::create(b, keyHalf, laneRow), index(b, kk * 16));
      SmallVector<Value> frags = loadMatrix(values, key, col, 4, true);
      for (int64_t m = 0; m < mTiles; ++m)
        for (int64_t half = 0; half < 2; ++half)
          acc[m][half] =
              mma(probs[m][kk], {frags[2 * half], frags[2 * half + 1]},
                  acc[m][half]);
    }
    for (int64_t m = 0; m < mTiles; ++m)
      for (int64_t half = 0; half < 2; ++half)
        for (int64_t i = 0; i < 4; ++i)
          at(m, vb + half, i) = acc[m][half][i];
  }
}
