//===- FlashKernel.cpp - Tensor-core flash attention for NVIDIA GPUs -----===//
//
// The flash kernel's frame: its operands, this thread's rows and their key
// ranges, the CTA's key-tile range and the loop state, then O / l written
// out. The layouts and the per-tile math: FlashEmitter.h.
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

mlir::gpu::GPUFuncOp FlashEmitter::emit(StringRef name) {
  Type bf16 = b.getBF16Type(), f32Type = b.getF32Type();
  // Each CTA accumulates one slice of vDim value dims; queries stay in
  // registers up to head dim 256, beyond that they are reloaded per key
  // tile (L1-resident).
  dim = sig.headDim;
  int64_t slices = sig.vHeadDim / vDim;
  queriesInRegisters = dim <= 256;
  SmallVector<Type> inputs = {getRowsType(bf16, sig.heads, dim),
                              getRowsType(bf16, sig.kvHeads, dim),
                              getRowsType(bf16, sig.kvHeads, sig.vHeadDim)};
  if (sig.score.getSinks())
    inputs.push_back(MemRefType::get({sig.heads}, f32Type));
  if (splitKeys) {
    // The decode combine kernel's partials: [split, B, S, Hq, Dv] O and
    // [split, B, S, Hq] max and sum.
    int64_t dyn = ShapedType::kDynamic;
    inputs.push_back(
        MemRefType::get({dyn, dyn, dyn, sig.heads, sig.vHeadDim}, f32Type));
    inputs.append(2, MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type));
  } else {
    inputs.push_back(
        getRowsType(bf16Output ? bf16 : f32Type, sig.heads, sig.vHeadDim));
  }
  // numKeys, firstRow, ringRows: where the keys are (see emit's use).
  inputs.append(3, b.getIndexType());
  if (tma) // K's and V's CUtensorMaps, by value (hybrid-tensor-map-params)
    inputs.append(2, LLVM::LLVMPointerType::get(b.getContext()));
  // mma.sync: rows padded against bank conflicts; wgmma: [column block]
  // [row][64], 128-byte swizzled.
  auto tileType = [&](int64_t width) -> Type {
    SmallVector<int64_t> shape = {kTile, width + kPad};
    if (wgmma)
      shape = {width / kSwizzleRow, kTile, kSwizzleRow};
    return getWorkgroupType(shape, bf16);
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
  if (splitKeys) {
    partialMax = func.getArgument(arg++);
    partialSum = func.getArgument(arg++);
  }
  numKeys = func.getArgument(arg++);
  firstRow = func.getArgument(arg++);
  ringRows = func.getArgument(arg++);
  if (tma) {
    keyMap = func.getArgument(arg++);
    valueMap = func.getArgument(arg++);
    markTensorMapArgs(func, 2);
  }
  // The tiles live in dynamic shared memory, whose size the runtime passes
  // at launch (past 48 KiB, after opting the kernel in): static shared
  // memory stops at 48 KiB.
  layout = FlashSharedLayout::get(kTile, dim, vDim, /*swizzled=*/wgmma, tma,
                                  stages, specialized);
  func->setAttr("hybrid.shared_bytes", b.getI64IntegerAttr(layout.bytes));
  shared = mlir::gpu::DynamicSharedMemoryOp::create(
      b, getWorkgroupType({ShapedType::kDynamic}, b.getI8Type()));
  for (int64_t st = 0; st < stages; ++st)
    stageBuffers.push_back(bufferAt(index(b, st)));

  Value c1 = index(b, 1);
  using mlir::gpu::Dimension;
  Value numTiles = mlir::gpu::GridDimOp::create(b, Dimension::x);
  // Heaviest tiles (last queries) first: better balance under causal masks.
  Value tile =
      arith::SubIOp::create(b, arith::SubIOp::create(b, numTiles, c1),
                            mlir::gpu::BlockIdOp::create(b, Dimension::x));
  // Block y: kv head, and value slice within it (split-K: split, then
  // those).
  Value headAndSlice = mlir::gpu::BlockIdOp::create(b, Dimension::y);
  Value split, numSplits;
  if (splitKeys) {
    Value perSplit = index(b, sig.kvHeads * slices);
    split = arith::DivUIOp::create(b, headAndSlice, perSplit);
    numSplits = arith::DivUIOp::create(
        b, mlir::gpu::GridDimOp::create(b, Dimension::y), perSplit);
    headAndSlice = arith::RemUIOp::create(b, headAndSlice, perSplit);
  }
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

  // The queries are the last of numKeys key positions; key j lives in row
  // firstRow + j of k and v, less ringRows past the ring's end (a KV cache
  // read in place; a prompt's keys: 0 and numKeys). A wrapping range needs
  // kTile rows past ringRows that repeat the ring's first (the runtime's
  // mirror rows), so that every whole tile is kTile consecutive rows.
  Value numQueries = memref::DimOp::create(b, q, 1);
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

  Value first = arith::AddIOp::create(b, offset, q0);
  Value last =
      arith::SubIOp::create(b, arith::AddIOp::create(b, first, valid), c1);
  lo = getKeyBegin(b, sig.mask, first);
  hi = getKeyEnd(b, sig.mask, last, numKeys);
  lastBegin = getKeyBegin(b, sig.mask, last);
  firstEnd = getKeyEnd(b, sig.mask, first, numKeys);
  // Split-K: this CTA's whole tiles of the range (the same tiles as
  // without splits; a split past the range is empty).
  if (splitKeys)
    std::tie(lo, hi) =
        getSplitKeyRange(b, lo, arith::MaxSIOp::create(b, lo, hi), split,
                         numSplits, index(b, kTile));

  kTileSize = index(b, kTile);
  // TMA: the issuing thread initialises the mbarriers and prefetches the
  // tensor maps before any warp uses them.
  auto initBarriers = [&] {
    isIssuer = arith::CmpIOp::create(
        b, arith::CmpIPredicate::eq, tid,
        index(b, specialized ? warps * kThreadsPerWarp : 0));
    ifThen(b, isIssuer, [&] {
      for (const Buffers &buffers : stageBuffers) {
        initBarrier(b, buffers.keyBarrier, 1);
        initBarrier(b, buffers.valueBarrier, 1);
        if (specialized) {
          initBarrier(b, buffers.keyEmpty, warps * kThreadsPerWarp);
          initBarrier(b, buffers.valueEmpty, warps * kThreadsPerWarp);
        }
      }
      prefetchTensorMap(b, keyMap);
      prefetchTensorMap(b, valueMap);
    });
    mlir::gpu::BarrierOp::create(b);
  };
  // Warp-specialized, the producer warps (after the compute warps) hand
  // registers over, and the first of them runs its loop; everything below
  // is the compute warps'.
  if (specialized) {
    initBarriers();
    auto roles =
        scf::IfOp::create(b,
                          arith::CmpIOp::create(b, arith::CmpIPredicate::uge,
                                                warp, index(b, warps)),
                          /*withElseRegion=*/true);
    b.setInsertionPointToStart(&roles.getThenRegion().front());
    bool rebalance = producerWarps == 4;
    if (rebalance) {
      NVVM::SetMaxRegisterOp::create(b, kProducerRegisters,
                                     NVVM::SetMaxRegisterAction::decrease);
      // ptxas honours setmaxnreg only where it knows the registers at
      // entry: .minnctapersm 1 pins them (65536 / threads: 168); without
      // it, a kernel needing fewer gets "setmaxnreg ignored" (C7508) and
      // one count for every warp. A variant's own bound replaces this.
      func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                    b.getI32IntegerAttr(1));
    }
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warp,
                                 index(b, warps)),
           [&] { emitProducerLoop(); });
    b.setInsertionPointToStart(&roles.getElseRegion().front());
    if (rebalance)
      NVVM::SetMaxRegisterOp::create(b, kConsumerRegisters,
                                     NVVM::SetMaxRegisterAction::increase);
  }

  // Q fragments of every mma tile for every 16-wide slice of the head dim
  // (up to head dim 256).
  if (queriesInRegisters) {
    queryFrags.resize(mTiles);
    for (int64_t m = 0; m < mTiles; ++m)
      for (int64_t kd = 0; kd < dim; kd += 16)
        queryFrags[m].push_back(loadQueryFrag(m, kd));
  }

  float inf = std::numeric_limits<float>::infinity();
  Value negInf = f32(b, -inf), zero = f32(b, 0.0);
  // A sink logit per row (its query head's), which starts the running max
  // (split-K: of the first split only, which adds it to the sum).
  SmallVector<Value> sink(threadRows);
  Value firstSplit = splitKeys
                         ? arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                 split, index(b, 0))
                         : Value();
  auto inFirstSplit = [&](Value x, Value otherwise) -> Value {
    return firstSplit ? arith::SelectOp::create(b, firstSplit, x, otherwise)
                      : x;
  };
  if (sinks)
    for (int64_t r = 0; r < threadRows; ++r)
      sink[r] = memref::LoadOp::create(b, sinks, rowHead[r]);
  // Loop state: running max and (this thread's partial) sum per row, then
  // the output accumulators, per mma tile 4 values per 8 value dims.
  vBlocks = vDim / 8;
  kBlocks = kTile / 8;
  SmallVector<Value> init;
  for (int64_t r = 0; r < threadRows; ++r)
    init.push_back(sinks ? inFirstSplit(sink[r], negInf) : negInf);
  init.append(threadRows, zero);
  init.append(mTiles * vBlocks * 4, zero);
  int64_t sumAt = threadRows, outAt = 2 * threadRows;
  auto outIndex = [&](int64_t m, int64_t vb, int64_t i) {
    return outAt + (m * vBlocks + vb) * 4 + i;
  };

  if (tma && !specialized)
    initBarriers();
  SmallVector<Value> result =
      overlap ? emitOverlappedLoop(init) : emitTileLoop(init);

  // out = O / l; a sink adds e^(sink - m) to l; a row without any visible
  // key (l = 0) writes zeros. Split-K writes O, m and l as they are.
  Value twoT = arith::MulIOp::create(b, t, index(b, 2));
  auto getColumn = [&](int64_t vb, int64_t i) -> Value {
    return arith::AddIOp::create(
        b, valueOffset, arith::AddIOp::create(b, twoT, index(b, vb * 8 + i)));
  };
  // One thread per row writes its max and sum (every value slice has them).
  Value writesStats =
      splitKeys
          ? arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                  arith::AddIOp::create(b, t, valueOffset),
                                  index(b, 0))
          : Value();
  for (int64_t r = 0; r < threadRows; ++r) {
    int64_t m = r / 2, h = r % 2;
    Value sum = quadReduce(result[sumAt + r], /*max=*/false);
    if (sinks)
      sum = inFirstSplit(
          arith::AddFOp::create(b, sum, expOfDifference(b, sink[r], result[r])),
          sum);
    if (splitKeys) {
      ifThen(b, rowValid[r], [&] {
        SmallVector<Value> at = {split, batch, rowPosition[r], rowHead[r]};
        for (int64_t vb = 0; vb < vBlocks; ++vb)
          for (int64_t i = 0; i < 2; ++i) {
            SmallVector<Value> element = at;
            element.push_back(getColumn(vb, i));
            memref::StoreOp::create(b, result[outIndex(m, vb, 2 * h + i)], out,
                                    element);
          }
        ifThen(b, writesStats, [&] {
          memref::StoreOp::create(b, result[r], partialMax, at);
          memref::StoreOp::create(b, sum, partialSum, at);
        });
      });
      continue;
    }
    Value inverse = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, sum, zero),
        arith::DivFOp::create(b, f32(b, 1.0), sum), zero);
    ifThen(b, rowValid[r], [&] {
      for (int64_t vb = 0; vb < vBlocks; ++vb)
        for (int64_t i = 0; i < 2; ++i) {
          Value col = getColumn(vb, i);
          Value o = arith::MulFOp::create(b, result[outIndex(m, vb, 2 * h + i)],
                                          inverse);
          if (bf16Output)
            o = arith::TruncFOp::create(b, b.getBF16Type(), o);
          memref::StoreOp::create(
              b, o, out, ValueRange{batch, rowPosition[r], rowHead[r], col});
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
