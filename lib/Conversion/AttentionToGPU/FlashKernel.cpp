//===- FlashKernel.cpp - Tensor-core flash attention for NVIDIA GPUs -----===//
//
// One CTA of W = 4 or 8 warps computes 16 W M rows (M = 1 or 2 mma tiles
// per warp): 16 W M / G query positions for each of the G query heads of one
// kv head (GQA: the group shares every K and V tile; rows are (position,
// head) pairs, the head fastest). Eight warps halve the K and V bytes each
// row costs. Warp w owns rows 16 M w .. 16 M (w + 1) - 1, and
// every thread of it, in mma.sync's fragment layout, rows g = lane / 4 and
// g + 8 of each of its 16-row tiles and columns 2t, 2t + 1 (t = lane % 4) of
// each 8-column block. Per key tile:
//
//   S  = Q K^T      mma.sync m16n8k16, Q fragments kept in registers (up to
//                   head dim 256); each K fragment feeds the M tiles
//   m' = max(m, rowmax S)      quad shuffles (the 4 threads of a row), but
//                   only if e^(S - m) > 2^threshold somewhere in the warp
//                   (else m' = m); then l = l e^(m - m'), O = O e^(m - m')
//   P  = exp(S - m'), l += rowsum P
//   O += P V        P's accumulator layout is exactly the A operand layout
//
// K and V tiles are staged in shared memory (rows padded by 8 elements so the
// fragment reads hit 32 distinct banks) with cp.async: V(j) is in flight
// during Q K(j)^T, K(j+1) during softmax and P V(j). Rows past the last key
// read the last key (their scores are masked).
//
// The key tiles visited are the mask's range for the tile's first and last
// query; only tiles not fully visible to every row evaluate the mask.
//
// wgmma kernels may overlap softmax with the tensor cores (FlashAttention-3's
// intra-warpgroup pipelining): per tile j, the warpgroup issues S(j) =
// Q K(j)^T and O += P(j-1) V(j-1) without waiting, waits for S(j) only,
// computes tile j's softmax while P V runs, then waits for O and rescales
// it. TMA keeps K(j + S - 1) and V(j + S - 2) in flight (S >= 2 stages).
//
//===----------------------------------------------------------------------===//

#include "GPUKernelEmitter.h"
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

namespace {

/// Shared-memory rows are padded by this many elements (16 bytes).
constexpr int64_t kPad = 8;

/// One thread's part of a 16x8 f32 accumulator: rows g (c0, c1) and g + 8
/// (c2, c3), columns 2t and 2t + 1.
using Accumulator = std::array<Value, 4>;

class FlashEmitter {
public:
  FlashEmitter(ImplicitLocOpBuilder &b, const AttentionSignature &sig,
               const FlashKernelOptions &options)
      : b(b), sig(sig), kTile(options.keyTile), mTiles(options.mTiles),
        threads(options.warps * kThreadsPerWarp),
        ctaRows(getFlashRows(options.warps, options.mTiles)),
        wgmma(options.tensorCores == TensorCores::Wgmma), tma(options.tma),
        stages(options.stages), overlap(options.overlapSoftmax),
        rescaleSlack(options.rescaleThreshold * std::log(2.0)) {}

  mlir::gpu::GPUFuncOp emit(StringRef name);

private:
  /// A stage's K and V tiles and, with TMA, their mbarriers.
  struct Buffers {
    Value keys, values, keyBarrier, valueBarrier;
  };
  /// S = Q K^T per mma tile, per 8-key block.
  using Scores = SmallVector<SmallVector<Accumulator>>;
  /// A operands per mma tile, per 16-key (or 16-dim) step.
  using Fragments = SmallVector<SmallVector<std::array<Value, 4>>>;

  /// Stage `s`'s buffers (an index, constant or not).
  Buffers bufferAt(Value s);
  /// Tile j's stage j % S and the parity (j / S) % 2 of its barriers'
  /// phase (i32).
  std::pair<Buffers, Value> stageOfTile(Value j);
  /// TMA: the K (and V) loads of key tile kt into `buffers`.
  void loadTiles(Value kt, const Buffers &buffers, bool keys, bool values);

  /// The loop over the key tiles: its final (m, l, O) state.
  SmallVector<Value> emitTileLoop(ArrayRef<Value> init);
  /// The same with softmax overlapping the tensor cores (wgmma, TMA,
  /// stages >= 2).
  SmallVector<Value> emitOverlappedLoop(ArrayRef<Value> init);

  /// Q fragments of mma tile m, head dims kd .. kd + 15: kept in registers
  /// or (past head dim 256) loaded.
  std::array<Value, 4> getQueryFrag(int64_t m, int64_t kd);
  std::array<Value, 4> loadQueryFrag(int64_t m, int64_t kd);
  /// S = Q K^T by mma.sync.
  Scores multiplyKeys(Value keys);
  /// wgmma's S = Q K^T: the A registers and B descriptors of its steps.
  void getScoreSteps(Value keys, SmallVector<std::array<Value, 4>> &steps,
                     SmallVector<Value> &descriptors);
  Scores toScores(ArrayRef<Value> d);
  /// Soft-cap, then -inf for hidden keys on tiles not wholly visible.
  void capAndMask(Scores &scores, Value kt, Value nextKt);
  /// The rows' tile maxima; whether a row of the warp passes its running
  /// max by more than the slack (then the warp moves its maxima).
  Value getTileMaxima(const Scores &scores, ValueRange state,
                      SmallVector<Value> &tileMax);
  /// `state` (m, l and, unless `alpha` is given, O) with the maxima moved
  /// when `grows`: l and O times alpha = e^(m - m'). With `alpha`, O is
  /// left to rescaleOutputs, which gets the factors (1 where nothing moved).
  SmallVector<Value> moveMaxima(ValueRange state, ArrayRef<Value> tileMax,
                                Value grows,
                                SmallVector<Value> *alpha = nullptr);
  /// O times alpha per row when `grows`.
  void rescaleOutputs(MutableArrayRef<Value> outputs, ArrayRef<Value> alpha,
                      Value grows);
  /// P = e^(S - m) in place; adds each row's sum to l.
  void exponentiate(Scores &scores, ArrayRef<Value> maxima,
                    MutableArrayRef<Value> sums);
  Fragments packProbabilities(const Scores &scores);
  /// wgmma's O += P V: B descriptors of the value tile per 16 keys.
  SmallVector<Value> getValueSteps(Value values);
  /// O += P V by mma.sync.
  void multiplyValues(MutableArrayRef<Value> outputs, const Fragments &probs,
                      Value values);

  /// Issues the cp.async copies of `dim`-wide rows kt .. kt + kTile - 1 of
  /// `src` (kv head `kvHead`) into `dst` and commits them as one group.
  /// Returns the group's token.
  /// Source columns start at `colOffset` (null: 0), for value-dim slices.
  Value stageTile(Value src, Value dst, int64_t dim, Value kt,
                  Value colOffset = Value());
  void waitGroups(int32_t pending);
  /// TMA: thread 0 issues the loads of key (or value) tile kt into `tile`,
  /// 64 columns per load, completing bytes on `barrier`.
  void issueTileLoads(bool keys, Value kt, Value colOffset, Value tile,
                      Value barrier);

  /// Two bf16 values packed in the i32 an mma operand register holds.
  Value pack(Value lo, Value hi);
  /// The i32 holding `memref[indices]` and the next element.
  Value loadPair(Value memref, ValueRange indices);
  /// ldmatrix of `tiles` 8x8 bf16 tiles of shared `memref`, this lane
  /// addressing [row, col]: one i32 operand register per tile.
  SmallVector<Value> loadMatrix(Value memref, Value row, Value col,
                                int64_t tiles, bool transpose);
  Accumulator mma(ArrayRef<Value> a, ArrayRef<Value> bFrag,
                  const Accumulator &c);

  /// Max (or sum) over the 4 threads of a row.
  Value quadReduce(Value x, bool max);

  ImplicitLocOpBuilder &b;
  const AttentionSignature &sig;
  int64_t kTile;
  int64_t mTiles;      // 16-row mma tiles per warp
  int64_t threads;     // of the CTA
  int64_t ctaRows;     // (position, head) pairs of the CTA
  bool wgmma;          // warpgroup MMA on swizzled tiles, else mma.sync
  bool tma;            // K and V tiles by TMA, else cp.async
  int64_t stages;      // buffers per tile kind (S > 1: TMA loads S - 1 ahead)
  bool overlap;        // softmax overlaps the wgmma groups
  double rescaleSlack; // how far scores may pass the running max unmoved

  // Set up by emit: the shape, shared memory, this thread's rows and the
  // CTA's key range.
  int64_t dim, vDim, threadRows, kBlocks, vBlocks;
  bool queriesInRegisters;
  Type keysType, valuesType;
  FlashSharedLayout layout;
  Value shared, valueOffsetOrNull, kTileSize;
  SmallVector<Buffers> stageBuffers; // every stage at constant offsets
  SmallVector<Value> rowBegin, rowEnd, rowPosition, rowHead;
  Fragments queryFrags;
  Value lo, hi, lastBegin, firstEnd;

  Value q, k, v, sinks, out;
  Value batch, kvHead, numKeys, lastKey;
  Value lane, g, t;
  Value firstGroup; // the first key tile's cp.async group
  // TMA: tensor maps of K and V.
  Value keyMap, valueMap, isIssuer;
};

} // namespace

Value FlashEmitter::stageTile(Value src, Value dst, int64_t dim, Value kt,
                              Value colOffset) {
  // 16-byte chunks of 8 bf16; every thread issues the same number of copies
  // (the last round's spare threads repeat the last chunk) so that cp.async
  // group counts agree across the CTA.
  int64_t chunksPerRow = dim / 8, chunks = kTile * chunksPerRow;
  Value tid = mlir::gpu::ThreadIdOp::create(b, mlir::gpu::Dimension::x);
  auto issue = [&](bool pastTheEnd) -> Value {
    SmallVector<Value> tokens;
    for (int64_t c = 0; c < chunks; c += threads) {
      Value i = arith::AddIOp::create(b, tid, index(b, c));
      if (c + threads > chunks)
        i = arith::MinUIOp::create(b, i, index(b, chunks - 1));
      Value row = arith::DivUIOp::create(b, i, index(b, chunksPerRow));
      Value chunk = arith::RemUIOp::create(b, i, index(b, chunksPerRow));
      Value col = arith::MulIOp::create(b, chunk, index(b, 8));
      Value key = arith::AddIOp::create(b, kt, row);
      if (pastTheEnd) // rows past the last key repeat it
        key = arith::MinUIOp::create(b, key, lastKey);
      Value srcCol = colOffset ? arith::AddIOp::create(b, col, colOffset) : col;
      SmallVector<Value> at = {row, col};
      if (wgmma) {
        std::array<Value, 3> swizzled = getSwizzledChunk(b, row, chunk);
        at.assign(swizzled.begin(), swizzled.end());
      }
      tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
          b, dst, at, src, ValueRange{batch, key, kvHead, srcCol},
          b.getIndexAttr(8),
          /*srcElements=*/Value(), /*bypassL1=*/b.getUnitAttr()));
    }
    return nvgpu::DeviceAsyncCreateGroupOp::create(b, tokens);
  };
  // Only the tile that crosses the last key clamps its rows: elsewhere the
  // copies' addresses are one base plus constant offsets.
  Value whole = arith::CmpIOp::create(
      b, arith::CmpIPredicate::ule,
      arith::AddIOp::create(b, kt, index(b, kTile)), numKeys);
  auto branch = scf::IfOp::create(
      b, TypeRange{nvgpu::DeviceAsyncTokenType::get(b.getContext())}, whole,
      /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&branch.getThenRegion().front());
    scf::YieldOp::create(b, issue(false));
    b.setInsertionPointToStart(&branch.getElseRegion().front());
    scf::YieldOp::create(b, issue(true));
  }
  return branch.getResult(0);
}

void FlashEmitter::issueTileLoads(bool keys, Value kt, Value colOffset,
                                  Value tile, Value barrier) {
  int64_t width = keys ? sig.headDim : getValueSlice(sig.vHeadDim);
  ifThen(b, isIssuer, [&] {
    arriveExpectingBytes(b, barrier, kTile * width * 2);
    // Box {64 columns, 1 head, kTile keys, 1 batch} of [B][S][H][D] rows:
    // keys past the end read as zeros (their scores are masked).
    for (int64_t block = 0; block < width / kSwizzleRow; ++block) {
      Value col = arith::AddIOp::create(b, colOffset ? colOffset : index(b, 0),
                                        index(b, block * kSwizzleRow));
      loadTile(b, getSharedPointer(b, tile, block * kTile * 2 * kSwizzleRow),
               keys ? keyMap : valueMap, ValueRange{col, kvHead, kt, batch},
               barrier);
    }
  });
}

void FlashEmitter::waitGroups(int32_t pending) {
  // cp.async.wait_group counts this thread's committed groups; the token
  // operand only ties the wait to the copies in the IR.
  nvgpu::DeviceAsyncWaitOp::create(b, firstGroup, b.getI32IntegerAttr(pending));
}

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
  Value width =
      arith::ConstantOp::create(b, b.getI32IntegerAttr(kThreadsPerWarp));
  for (int32_t offset : {1, 2}) {
    Value other =
        mlir::gpu::ShuffleOp::create(
            b, x, arith::ConstantOp::create(b, b.getI32IntegerAttr(offset)),
            width, mlir::gpu::ShuffleMode::XOR)
            .getShuffleResult();
    x = max ? Value(arith::MaximumFOp::create(b, x, other))
            : Value(arith::AddFOp::create(b, x, other));
  }
  return x;
}

FlashEmitter::Buffers FlashEmitter::bufferAt(Value s) {
  auto carve = [&](Type type, int64_t base, int64_t stride) -> Value {
    // Constant stages get constant offsets (no arithmetic to fold).
    std::optional<int64_t> constant = getConstantIntValue(s);
    Value offset = constant
                       ? index(b, base + *constant * stride)
                       : Value(arith::AddIOp::create(
                             b, index(b, base),
                             arith::MulIOp::create(b, s, index(b, stride))));
    return memref::ViewOp::create(b, type, shared, offset, ValueRange{});
  };
  Buffers buffers;
  buffers.keys = carve(keysType, layout.keys, layout.keyStage);
  buffers.values = carve(valuesType, layout.values, layout.valueStage);
  if (tma) {
    auto workgroup = mlir::gpu::AddressSpaceAttr::get(
        b.getContext(), mlir::gpu::AddressSpace::Workgroup);
    Value barriers =
        carve(MemRefType::get({2}, b.getI64Type(), MemRefLayoutAttrInterface(),
                              workgroup),
              layout.barriers, 16);
    buffers.keyBarrier = getSharedPointer(b, barriers);
    buffers.valueBarrier = getSharedPointer(b, barriers, 8);
  }
  return buffers;
}

std::pair<FlashEmitter::Buffers, Value> FlashEmitter::stageOfTile(Value j) {
  // Each barrier completes one phase per use of its stage.
  Value parity = arith::IndexCastOp::create(
      b, b.getI32Type(),
      arith::RemUIOp::create(b, arith::DivUIOp::create(b, j, index(b, stages)),
                             index(b, 2)));
  return {bufferAt(arith::RemUIOp::create(b, j, index(b, stages))), parity};
}

void FlashEmitter::loadTiles(Value kt, const Buffers &buffers, bool keys,
                             bool values) {
  if (keys)
    issueTileLoads(/*keys=*/true, kt, Value(), buffers.keys,
                   buffers.keyBarrier);
  if (values)
    issueTileLoads(/*keys=*/false, kt, valueOffsetOrNull, buffers.values,
                   buffers.valueBarrier);
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

void FlashEmitter::getScoreSteps(Value keys,
                                 SmallVector<std::array<Value, 4>> &steps,
                                 SmallVector<Value> &descriptors) {
  // One m64nKTILEk16 per 16 head dims: B is the K tile, K-major (rows of
  // keys); a 16-dim step starts 32 bytes further into its block.
  Value descriptor = getMatrixDescriptor(b, keys, /*leadingBytes=*/16,
                                         /*strideBytes=*/8 * 2 * kSwizzleRow);
  for (int64_t kd = 0; kd < dim; kd += 16) {
    steps.push_back(getQueryFrag(0, kd));
    descriptors.push_back(offsetDescriptor(
        b, descriptor,
        (kd / kSwizzleRow) * kTile * 2 * kSwizzleRow + (kd % kSwizzleRow) * 2));
  }
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
          for (int64_t vb = 0; vb < vBlocks; ++vb)
            for (int64_t i = 2 * (r % 2); i < 2 * (r % 2) + 2; ++i) {
              Value &o =
                  rescaled[2 * threadRows + ((r / 2) * vBlocks + vb) * 4 + i];
              o = arith::MulFOp::create(b, o, factor);
            }
        }
        return rescaled;
      },
      [&] { return unmoved; });
  SmallVector<Value> moved(results.begin(), results.begin() + kept);
  if (alpha)
    alpha->assign(results.begin() + kept, results.end());
  return moved;
}

void FlashEmitter::rescaleOutputs(MutableArrayRef<Value> outputs,
                                  ArrayRef<Value> alpha, Value grows) {
  SmallVector<Value> unmoved(outputs.begin(), outputs.end());
  ValueRange results = ifThenElse(
      b, grows, SmallVector<Type>(outputs.size(), b.getF32Type()),
      [&] {
        SmallVector<Value> rescaled = unmoved;
        for (int64_t r = 0; r < threadRows; ++r)
          for (int64_t vb = 0; vb < vBlocks; ++vb)
            for (int64_t i = 2 * (r % 2); i < 2 * (r % 2) + 2; ++i) {
              Value &o = rescaled[((r / 2) * vBlocks + vb) * 4 + i];
              o = arith::MulFOp::create(b, o, alpha[r]);
            }
        return rescaled;
      },
      [&] { return unmoved; });
  llvm::copy(results, outputs.begin());
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
        acc[i] = math::Exp2Op::create(
            b, math::FmaOp::create(b, acc[i], log2e, scaledMax));
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

SmallVector<Value> FlashEmitter::emitTileLoop(ArrayRef<Value> init) {
  if (tma) {
    // One stage: K(j + 1) loads during softmax and P V(j), V(j) during
    // Q K(j)^T. S stages: tiles j + 1 .. j + S - 1 load during tile j, the
    // first S - 1 of them here.
    if (stages == 1)
      ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, lo, hi),
             [&] { loadTiles(lo, stageBuffers[0], true, /*values=*/false); });
    for (int64_t s = 0; s + 1 < stages; ++s) {
      Value kt = arith::AddIOp::create(b, lo, index(b, s * kTile));
      ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kt, hi),
             [&] { loadTiles(kt, stageBuffers[s], true, /*values=*/true); });
    }
  } else {
    firstGroup = stageTile(k, stageBuffers[0].keys, dim, lo);
  }
  auto loop = scf::ForOp::create(b, lo, hi, kTileSize, init);
  {
    OpBuilder::InsertionGuard inLoop(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kt = loop.getInductionVar();
    ValueRange state = loop.getRegionIterArgs();
    Value nextKt = arith::AddIOp::create(b, kt, kTileSize);
    Value hasNext =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, nextKt, hi);

    // This tile's K and V buffers (and, with TMA, their mbarriers).
    Buffers current = stageBuffers[0];
    Value parity;
    if (tma) {
      Value j = arith::DivUIOp::create(b, arith::SubIOp::create(b, kt, lo),
                                       kTileSize);
      if (stages == 1) {
        parity = arith::IndexCastOp::create(
            b, b.getI32Type(), arith::RemUIOp::create(b, j, index(b, 2)));
        // V is free: every warp passed the last tile's closing barrier.
        loadTiles(kt, current, /*keys=*/false, /*values=*/true);
      } else {
        std::tie(current, parity) = stageOfTile(j);
        // Tile j + S - 1 loads into stage (j - 1) % S, which every warp
        // left at the last tile's closing barrier.
        Value ahead =
            arith::AddIOp::create(b, kt, index(b, (stages - 1) * kTile));
        ifThen(b,
               arith::CmpIOp::create(b, arith::CmpIPredicate::slt, ahead, hi),
               [&] {
                 Value stage = arith::RemUIOp::create(
                     b, arith::AddIOp::create(b, j, index(b, stages - 1)),
                     index(b, stages));
                 loadTiles(ahead, bufferAt(stage), true, /*values=*/true);
               });
      }
      waitBarrier(b, current.keyBarrier, parity);
    } else {
      waitGroups(0);
      if (wgmma)
        fenceSharedForAsyncProxy(b);
      mlir::gpu::BarrierOp::create(b);
      stageTile(v, current.values, vDim, kt, valueOffsetOrNull);
    }

    Scores scores;
    if (wgmma) {
      SmallVector<std::array<Value, 4>> steps;
      SmallVector<Value> descriptors;
      getScoreSteps(current.keys, steps, descriptors);
      scores = toScores(warpgroupMmaFromZero(b, kTile / 2, steps, descriptors,
                                             /*nMajor=*/false));
    } else {
      scores = multiplyKeys(current.keys);
    }

    // One stage: every warp is done with the K tile, prefetch the next one.
    if (stages == 1) {
      mlir::gpu::BarrierOp::create(b);
      ifThen(b, hasNext, [&] {
        if (tma)
          issueTileLoads(/*keys=*/true, nextKt, Value(), current.keys,
                         current.keyBarrier);
        else
          stageTile(k, current.keys, dim, nextKt);
      });
    }

    capAndMask(scores, kt, nextKt);
    SmallVector<Value> tileMax;
    Value grows = getTileMaxima(scores, state, tileMax);
    SmallVector<Value> next = moveMaxima(state, tileMax, grows);
    MutableArrayRef<Value> all(next);
    exponentiate(scores, all.take_front(threadRows),
                 all.slice(threadRows, threadRows));
    Fragments probs = packProbabilities(scores);

    // V(j) has landed (K(j+1) may still be in flight).
    if (tma) {
      waitBarrier(b, current.valueBarrier, parity);
    } else {
      ifThen(
          b, hasNext, [&] { waitGroups(1); }, [&] { waitGroups(0); });
      if (wgmma)
        fenceSharedForAsyncProxy(b);
      mlir::gpu::BarrierOp::create(b);
    }

    // O += P V.
    MutableArrayRef<Value> outputs = all.drop_front(2 * threadRows);
    if (wgmma)
      llvm::copy(warpgroupMma(b, outputs, probs[0],
                              getValueSteps(current.values),
                              /*nMajor=*/true),
                 outputs.begin());
    else
      multiplyValues(outputs, probs, current.values);
    // Every warp is done with the V tile before the next tile overwrites it.
    mlir::gpu::BarrierOp::create(b);
    scf::YieldOp::create(b, next);
  }
  // A loop that ran no tile left its first K tile in flight (TMA issues
  // none then).
  if (!tma)
    waitGroups(0);
  return SmallVector<Value>(loop.getResults());
}

SmallVector<Value> FlashEmitter::emitOverlappedLoop(ArrayRef<Value> init) {
  int64_t stats = 2 * threadRows, outs = vBlocks * 4;
  auto tileIndex = [&](Value kt) -> Value {
    return arith::DivUIOp::create(b, arith::SubIOp::create(b, kt, lo),
                                  kTileSize);
  };
  // Tile j's K (or V) load, when there is a tile j.
  auto loadTile = [&](Value j, bool keys) {
    Value kt =
        arith::AddIOp::create(b, lo, arith::MulIOp::create(b, j, kTileSize));
    ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kt, hi),
           [&] { loadTiles(kt, stageOfTile(j).first, keys, !keys); });
  };
  auto flatten = [](ArrayRef<std::array<Value, 4>> frags) {
    SmallVector<Value> flat;
    for (const std::array<Value, 4> &frag : frags)
      flat.append(frag.begin(), frag.end());
    return flat;
  };
  auto unflatten = [](ValueRange flat) {
    SmallVector<std::array<Value, 4>> frags;
    for (size_t i = 0; i < flat.size(); i += 4)
      frags.push_back({flat[i], flat[i + 1], flat[i + 2], flat[i + 3]});
    return frags;
  };
  // Tile j's softmax on S(j) landed: the moved (m, l), e^(m - m') and
  // whether the warp moved, then P in place of S.
  struct Softmax {
    SmallVector<Value> stats, alpha;
    Value grows;
    Fragments probs;
  };
  auto softmax = [&](Scores &scores, Value kt, ValueRange state) {
    capAndMask(scores, kt, arith::AddIOp::create(b, kt, kTileSize));
    Softmax result;
    SmallVector<Value> tileMax;
    result.grows = getTileMaxima(scores, state, tileMax);
    result.stats = moveMaxima(state.take_front(stats), tileMax, result.grows,
                              &result.alpha);
    MutableArrayRef<Value> all(result.stats);
    exponentiate(scores, all.take_front(threadRows),
                 all.drop_front(threadRows));
    result.probs = packProbabilities(scores);
    return result;
  };

  Value any = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, lo, hi);
  ValueRange result = ifThenElse(
      b, any, SmallVector<Type>(init.size(), b.getF32Type()),
      [&] {
        // Tile 0, with every stage free: K(0 .. S - 1), V(0 .. S - 2) load.
        for (int64_t s = 0; s < stages; ++s)
          loadTile(index(b, s), /*keys=*/true);
        for (int64_t s = 0; s + 1 < stages; ++s)
          loadTile(index(b, s), /*keys=*/false);
        SmallVector<std::array<Value, 4>> steps;
        SmallVector<Value> descriptors;
        waitBarrier(b, stageBuffers[0].keyBarrier,
                    arith::ConstantOp::create(b, b.getI32IntegerAttr(0)));
        getScoreSteps(stageBuffers[0].keys, steps, descriptors);
        Scores scores = toScores(warpgroupMmaFromZero(
            b, kTile / 2, steps, descriptors, /*nMajor=*/false));
        // O is still zero: only l needs rescaling.
        Softmax first = softmax(scores, lo, init);
        // Every warp is done with K(0): K(S) loads into its stage next.
        mlir::gpu::BarrierOp::create(b);

        SmallVector<Value> carried = first.stats;
        carried.append(init.begin() + stats, init.end());
        carried.append(flatten(first.probs[0]));
        auto loop = scf::ForOp::create(
            b, arith::AddIOp::create(b, lo, kTileSize), hi, kTileSize, carried);
        {
          OpBuilder::InsertionGuard inLoop(b);
          b.setInsertionPointToStart(loop.getBody());
          Value kt = loop.getInductionVar();
          ValueRange state = loop.getRegionIterArgs();
          Value j = tileIndex(kt);
          // K(j + S - 1) loads into the stage K(j - 1) left (at the last
          // tile's closing barrier), V(j + S - 2) into the one V(j - 2)
          // left.
          loadTile(arith::AddIOp::create(b, j, index(b, stages - 1)),
                   /*keys=*/true);
          loadTile(arith::AddIOp::create(b, j, index(b, stages - 2)),
                   /*keys=*/false);
          auto [current, parity] = stageOfTile(j);
          auto [previous, previousParity] =
              stageOfTile(arith::SubIOp::create(b, j, index(b, 1)));

          // Issue S(j) = Q K(j)^T, then O += P(j - 1) V(j - 1).
          SmallVector<std::array<Value, 4>> steps;
          SmallVector<Value> descriptors;
          waitBarrier(b, current.keyBarrier, parity);
          getScoreSteps(current.keys, steps, descriptors);
          SmallVector<Value> pendingScores =
              warpgroupMmaFromZero(b, kTile / 2, steps, descriptors,
                                   /*nMajor=*/false, /*wait=*/false);
          waitBarrier(b, previous.valueBarrier, previousParity);
          SmallVector<Value> probs(state.drop_front(stats + outs));
          SmallVector<Value> pendingOutputs =
              warpgroupMma(b, SmallVector<Value>(state.slice(stats, outs)),
                           unflatten(probs), getValueSteps(previous.values),
                           /*nMajor=*/true, /*wait=*/false);

          // S(j) lands; tile j's softmax runs while P V does.
          Scores scores =
              toScores(waitWarpgroupMma(b, 1, pendingScores, flatten(steps)));
          Softmax tile = softmax(scores, kt, state);
          SmallVector<Value> outputs =
              waitWarpgroupMma(b, 0, pendingOutputs, probs);
          rescaleOutputs(outputs, tile.alpha, tile.grows);
          // Every warp is done with K(j) and V(j - 1).
          mlir::gpu::BarrierOp::create(b);
          SmallVector<Value> next = tile.stats;
          next.append(outputs);
          next.append(flatten(tile.probs[0]));
          scf::YieldOp::create(b, next);
        }
        // The last tile's P V.
        ValueRange last = loop.getResults();
        auto [buffers, parity] =
            stageOfTile(tileIndex(arith::SubIOp::create(b, hi, index(b, 1))));
        waitBarrier(b, buffers.valueBarrier, parity);
        SmallVector<Value> done(last.take_front(stats));
        done.append(warpgroupMma(b, SmallVector<Value>(last.slice(stats, outs)),
                                 unflatten(last.drop_front(stats + outs)),
                                 getValueSteps(buffers.values),
                                 /*nMajor=*/true));
        return done;
      },
      [&] { return SmallVector<Value>(init); });
  return SmallVector<Value>(result);
}

mlir::gpu::GPUFuncOp FlashEmitter::emit(StringRef name) {
  Type bf16 = b.getBF16Type(), f32Type = b.getF32Type();
  // Each CTA accumulates one slice of vDim value dims (all of them up to
  // 256); queries stay in registers up to head dim 256, beyond that they
  // are reloaded per key tile (L1-resident).
  dim = sig.headDim;
  vDim = getValueSlice(sig.vHeadDim);
  int64_t slices = sig.vHeadDim / vDim;
  queriesInRegisters = dim <= 256;
  SmallVector<Type> inputs = {getRowsType(bf16, sig.heads, dim),
                              getRowsType(bf16, sig.kvHeads, dim),
                              getRowsType(bf16, sig.kvHeads, sig.vHeadDim)};
  if (sig.score.getSinks())
    inputs.push_back(MemRefType::get({sig.heads}, f32Type));
  inputs.push_back(getRowsType(f32Type, sig.heads, sig.vHeadDim));
  if (tma) // CUtensorMap pointers (global memory) of K and V
    inputs.append(2, LLVM::LLVMPointerType::get(b.getContext()));
  auto workgroup = mlir::gpu::AddressSpaceAttr::get(
      b.getContext(), mlir::gpu::AddressSpace::Workgroup);
  // mma.sync: rows padded against bank conflicts; wgmma: [column block]
  // [row][64], 128-byte swizzled.
  auto tileType = [&](int64_t width) -> Type {
    SmallVector<int64_t> shape = {kTile, width + kPad};
    if (wgmma)
      shape = {width / kSwizzleRow, kTile, kSwizzleRow};
    return MemRefType::get(shape, bf16, MemRefLayoutAttrInterface(), workgroup);
  };
  keysType = tileType(dim);
  valuesType = tileType(vDim);

  OpBuilder::InsertionGuard guard(b);
  auto func = createKernel(b, name, inputs, /*workgroup=*/{}, threads);
  unsigned arg = 0;
  q = func.getArgument(arg++);
  k = func.getArgument(arg++);
  v = func.getArgument(arg++);
  if (sig.score.getSinks())
    sinks = func.getArgument(arg++);
  out = func.getArgument(arg++);
  if (tma) {
    keyMap = func.getArgument(arg++);
    valueMap = func.getArgument(arg++);
  }
  // The tiles live in dynamic shared memory, whose size the runtime passes
  // at launch (past 48 KiB, after opting the kernel in): static shared
  // memory stops at 48 KiB.
  layout =
      FlashSharedLayout::get(kTile, dim, vDim, /*swizzled=*/wgmma, tma, stages);
  func->setAttr("hybrid.shared_bytes", b.getI64IntegerAttr(layout.bytes));
  shared = mlir::gpu::DynamicSharedMemoryOp::create(
      b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                         MemRefLayoutAttrInterface(), workgroup));
  for (int64_t st = 0; st < stages; ++st)
    stageBuffers.push_back(bufferAt(index(b, st)));

  Value c1 = index(b, 1);
  using mlir::gpu::Dimension;
  Value numTiles = mlir::gpu::GridDimOp::create(b, Dimension::x);
  // Heaviest tiles (last queries) first: better balance under causal masks.
  Value tile =
      arith::SubIOp::create(b, arith::SubIOp::create(b, numTiles, c1),
                            mlir::gpu::BlockIdOp::create(b, Dimension::x));
  // Block y: kv head, and value slice within it.
  Value headAndSlice = mlir::gpu::BlockIdOp::create(b, Dimension::y);
  kvHead = headAndSlice;
  Value valueOffset = index(b, 0);
  if (slices > 1) {
    kvHead = arith::DivUIOp::create(b, headAndSlice, index(b, slices));
    valueOffset = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, headAndSlice, index(b, slices)),
        index(b, vDim));
  }
  // Value slices past the first read their columns of V from here.
  valueOffsetOrNull = slices > 1 ? valueOffset : Value();
  batch = mlir::gpu::BlockIdOp::create(b, Dimension::z);
  Value tid = mlir::gpu::ThreadIdOp::create(b, Dimension::x);
  Value warp = arith::DivUIOp::create(b, tid, index(b, kThreadsPerWarp));
  lane = arith::RemUIOp::create(b, tid, index(b, kThreadsPerWarp));
  g = arith::DivUIOp::create(b, lane, index(b, 4));
  t = arith::RemUIOp::create(b, lane, index(b, 4));

  Value numQueries = memref::DimOp::create(b, q, 1);
  numKeys = memref::DimOp::create(b, k, 1);
  lastKey = arith::SubIOp::create(b, numKeys, c1);
  Value offset = arith::SubIOp::create(b, numKeys, numQueries);
  // The CTA's rows are (position, query head of the group) pairs, the head
  // fastest: a GQA group shares every K and V tile.
  int64_t group = sig.groupSize(), positions = getQueryTile(group, ctaRows);
  Value q0 = arith::MulIOp::create(b, tile, index(b, positions));
  Value valid = arith::MinUIOp::create(
      b, index(b, positions), arith::SubIOp::create(b, numQueries, q0));
  Value validRows = arith::MulIOp::create(b, valid, index(b, group));

  // This thread's rows (tile-relative): per mma tile m, rows g and g + 8 of
  // the warp's 16-row slice m (row index 2m and 2m + 1 below); their
  // positions, heads and key ranges.
  threadRows = 2 * mTiles;
  Value warpRow = arith::MulIOp::create(b, warp, index(b, 16 * mTiles));
  SmallVector<Value> rows(threadRows), rowValid(threadRows);
  rowBegin.resize(threadRows);
  rowEnd.resize(threadRows);
  rowPosition.resize(threadRows);
  rowHead.resize(threadRows);
  for (int64_t r = 0; r < threadRows; ++r) {
    rows[r] = arith::AddIOp::create(b, arith::AddIOp::create(b, warpRow, g),
                                    index(b, 8 * r));
    rowValid[r] =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, rows[r], validRows);
    rowHead[r] = arith::AddIOp::create(
        b, arith::MulIOp::create(b, kvHead, index(b, group)),
        arith::RemUIOp::create(b, rows[r], index(b, group)));
    // Padding rows read the tile's last query; they are never stored.
    rowPosition[r] = arith::AddIOp::create(
        b, q0,
        arith::MinUIOp::create(
            b, arith::DivUIOp::create(b, rows[r], index(b, group)),
            arith::SubIOp::create(b, valid, c1)));
    Value position = arith::AddIOp::create(b, offset, rowPosition[r]);
    rowBegin[r] = getKeyBegin(b, sig.mask, position);
    // Padding rows see nothing.
    rowEnd[r] = arith::SelectOp::create(
        b, rowValid[r], getKeyEnd(b, sig.mask, position, numKeys), rowBegin[r]);
  }

  // Q fragments of every mma tile for every 16-wide slice of the head dim
  // (up to head dim 256).
  if (queriesInRegisters) {
    queryFrags.resize(mTiles);
    for (int64_t m = 0; m < mTiles; ++m)
      for (int64_t kd = 0; kd < dim; kd += 16)
        queryFrags[m].push_back(loadQueryFrag(m, kd));
  }

  Value first = arith::AddIOp::create(b, offset, q0);
  Value last =
      arith::SubIOp::create(b, arith::AddIOp::create(b, first, valid), c1);
  lo = getKeyBegin(b, sig.mask, first);
  hi = getKeyEnd(b, sig.mask, last, numKeys);
  lastBegin = getKeyBegin(b, sig.mask, last);
  firstEnd = getKeyEnd(b, sig.mask, first, numKeys);

  float inf = std::numeric_limits<float>::infinity();
  Value negInf = f32(b, -inf), zero = f32(b, 0.0);
  // A sink logit per row (its query head's), which starts the running max.
  SmallVector<Value> sink(threadRows);
  if (sinks)
    for (int64_t r = 0; r < threadRows; ++r)
      sink[r] = memref::LoadOp::create(b, sinks, rowHead[r]);
  // Loop state: running max and (this thread's partial) sum per row, then
  // the output accumulators, per mma tile 4 values per 8 value dims.
  vBlocks = vDim / 8;
  kBlocks = kTile / 8;
  SmallVector<Value> init;
  for (int64_t r = 0; r < threadRows; ++r)
    init.push_back(sinks ? sink[r] : negInf);
  init.append(threadRows, zero);
  init.append(mTiles * vBlocks * 4, zero);
  int64_t sumAt = threadRows, outAt = 2 * threadRows;
  auto outIndex = [&](int64_t m, int64_t vb, int64_t i) {
    return outAt + (m * vBlocks + vb) * 4 + i;
  };

  kTileSize = index(b, kTile);
  if (tma) {
    isIssuer =
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, index(b, 0));
    ifThen(b, isIssuer, [&] {
      for (const Buffers &buffers : stageBuffers) {
        initBarrier(b, buffers.keyBarrier, 1);
        initBarrier(b, buffers.valueBarrier, 1);
      }
      acquireTensorMap(b, keyMap);
      acquireTensorMap(b, valueMap);
    });
    mlir::gpu::BarrierOp::create(b);
  }
  SmallVector<Value> result =
      overlap ? emitOverlappedLoop(init) : emitTileLoop(init);

  // out = O / l; a sink adds e^(sink - m) to l; a row without any visible
  // key (l = 0) writes zeros.
  Value twoT = arith::MulIOp::create(b, t, index(b, 2));
  for (int64_t r = 0; r < threadRows; ++r) {
    int64_t m = r / 2, h = r % 2;
    Value sum = quadReduce(result[sumAt + r], /*max=*/false);
    if (sinks)
      sum =
          arith::AddFOp::create(b, sum, expOfDifference(b, sink[r], result[r]));
    Value inverse = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, sum, zero),
        arith::DivFOp::create(b, f32(b, 1.0), sum), zero);
    ifThen(b, rowValid[r], [&] {
      for (int64_t vb = 0; vb < vBlocks; ++vb)
        for (int64_t i = 0; i < 2; ++i) {
          Value col = arith::AddIOp::create(
              b, valueOffset,
              arith::AddIOp::create(b, twoT, index(b, vb * 8 + i)));
          memref::StoreOp::create(
              b,
              arith::MulFOp::create(b, result[outIndex(m, vb, 2 * h + i)],
                                    inverse),
              out, ValueRange{batch, rowPosition[r], rowHead[r], col});
        }
    });
  }
  return func;
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitFlashKernel(ImplicitLocOpBuilder &b, StringRef name,
                             const AttentionSignature &sig,
                             const FlashKernelOptions &options) {
  return FlashEmitter(b, sig, options).emit(name);
}
