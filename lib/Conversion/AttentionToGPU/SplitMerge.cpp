//===- SplitMerge.cpp - Split-K partial results merged into rows ----------===//
//
// The decode kernel and the split-K flash kernel divide a query's key range
// across CTAs; split s leaves an unnormalised accumulator O_s, its running
// max m_s and sum l_s. One CTA merges one kv head's G query heads at one
// (batch, query position):
//
//   M = max_s m_s,  w_s = e^(m_s - M) (0 for a split that saw nothing),
//   out = sum_s w_s O_s / sum_s w_s l_s
//
// Warps take heads for M and the sum (lanes over splits, then shuffles);
// threads take the group's 4-dim output chunks and, where the group has
// fewer chunks than the CTA threads, interleaved subsets of the splits,
// added through shared memory. A thread keeps 4 splits' loads in flight:
// the partials were just written and sit in L2, so the merge takes about
// (splits / subsets / 4) L2 round trips, not one per split and element.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelEmitter.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

namespace {

constexpr int64_t kWarps = kThreads / kThreadsPerWarp;
/// Splits whose loads a thread issues together.
constexpr int64_t kSplitsInFlight = 4;
/// Output dims per chunk: one 16-byte load per split. (8 dims, two loads,
/// raised the decode kernel's registers at G = 1 from 54 to 72: the
/// merge's loads in flight outgrew the key loop's state.)
constexpr int64_t kChunkDims = 4;

/// kChunkDims-dim chunks of the group's output rows.
int64_t getChunks(const AttentionSignature &sig) {
  return sig.groupSize() * sig.vHeadDim / kChunkDims;
}

/// Interleaved subsets of the splits that threads sum apart: as many as
/// the chunks leave threads for.
int64_t getSplitSubsets(const AttentionSignature &sig) {
  return std::max<int64_t>(1, kThreads / getChunks(sig));
}

/// A split's weight e^(m - max) by its max `m`; 0 for a split that saw
/// nothing (m = -inf, so that -inf - -inf never happens).
Value getSplitWeight(ImplicitLocOpBuilder &b, Value m, Value max) {
  Value seen =
      arith::CmpFOp::create(b, arith::CmpFPredicate::ONE, m,
                            f32(b, -std::numeric_limits<float>::infinity()));
  return arith::SelectOp::create(b, seen, expOfDifference(b, m, max),
                                 f32(b, 0.0));
}

} // namespace

SplitMerge SplitMerge::allocate(mlir::gpu::GPUFuncOp func,
                                const AttentionSignature &sig) {
  Type f32Type = Float32Type::get(func.getContext());
  auto add = [&](ArrayRef<int64_t> shape) {
    return addAlignedWorkgroupBuffer(func, getWorkgroupType(shape, f32Type));
  };
  SplitMerge merge;
  merge.sig = &sig;
  merge.stats = add({2, sig.groupSize()});
  if (getSplitSubsets(sig) > 1)
    merge.sums = add({getSplitSubsets(sig), getChunks(sig) * kChunkDims});
  return merge;
}

void SplitMerge::emit(ImplicitLocOpBuilder &b, const SplitPartials &partials,
                      Value numSplits, Value item, Value items, Value out,
                      Value tid) const {
  int64_t group = sig->groupSize(), dimChunks = sig->vHeadDim / kChunkDims;
  int64_t chunks = getChunks(*sig), subsets = getSplitSubsets(*sig);
  Type f32Type = b.getF32Type();
  auto vecType = VectorType::get({kChunkDims}, f32Type);
  Value c0 = index(b, 0), c1 = index(b, 1);
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  Value zero = f32(b, 0.0);
  // Flat views: [S, B, T, Hq(, Dv)] rows indexed by split, item (batch,
  // position, kv head: B x T x Hkv of them) and the item's head r, so
  // that addresses need no descriptor strides (in the decode kernel those
  // would stay in registers through its key loop).
  auto flatten = [&](Value memref) -> Value {
    auto type = cast<MemRefType>(memref.getType());
    SmallVector<ReassociationIndices> all(1);
    for (int64_t d = 0; d < type.getRank(); ++d)
      all[0].push_back(d);
    return memref::CollapseShapeOp::create(b, memref, all);
  };
  Value flatOut = flatten(partials.out), flatMax = flatten(partials.max);
  Value flatSum = flatten(partials.sum), flatRows = flatten(out);
  // Row (split s, head r) of the item: (s items + item) G + r.
  Value itemRows = arith::MulIOp::create(b, items, index(b, group));
  Value firstRow = arith::MulIOp::create(b, item, index(b, group));
  auto rowOf = [&](OpBuilder &nested, Value s, Value r) -> Value {
    ImplicitLocOpBuilder ib(b.getLoc(), nested);
    return arith::AddIOp::create(
        ib,
        arith::AddIOp::create(ib, arith::MulIOp::create(ib, s, itemRows),
                              firstRow),
        r);
  };
  auto elementOf = [&](OpBuilder &nested, Value row, Value e) -> Value {
    ImplicitLocOpBuilder ib(b.getLoc(), nested);
    return arith::AddIOp::create(
        ib, arith::MulIOp::create(ib, row, index(ib, sig->vHeadDim)), e);
  };
  // M and 1 / sum_s w_s l_s per head, into stats: warp w takes heads w,
  // w + 4, ...; its lanes the splits.
  Value lane = arith::RemUIOp::create(b, tid, index(b, kThreadsPerWarp));
  Value warp = arith::DivUIOp::create(b, tid, index(b, kThreadsPerWarp));
  Value lanes = index(b, kThreadsPerWarp);
  for (int64_t first = 0; first < group; first += kWarps) {
    Value r = arith::AddIOp::create(b, warp, index(b, first));
    auto statsOfHead = [&] {
      // One pass: each lane's running max and sum (rescaled as its max
      // grows) over its splits, then the lanes' merged by shuffles.
      auto lanePass = scf::ForOp::create(
          b, lane, numSplits, lanes, ValueRange{negInf, zero},
          [&](OpBuilder &nested, Location loc, Value s, ValueRange acc) {
            ImplicitLocOpBuilder ib(loc, nested);
            Value at = rowOf(ib, s, r);
            Value m = memref::LoadOp::create(ib, flatMax, at);
            Value l = memref::LoadOp::create(ib, flatSum, at);
            Value max = arith::MaximumFOp::create(ib, acc[0], m);
            Value sum = math::FmaOp::create(
                ib, l, getSplitWeight(ib, m, max),
                arith::MulFOp::create(ib, acc[1],
                                      getSplitWeight(ib, acc[0], max)));
            scf::YieldOp::create(ib, ValueRange{max, sum});
          });
      Value laneMax = lanePass.getResult(0);
      Value max = reduceWarp(b, laneMax, /*max=*/true);
      Value sum =
          reduceWarp(b,
                     arith::MulFOp::create(b, lanePass.getResult(1),
                                           getSplitWeight(b, laneMax, max)),
                     /*max=*/false);
      ifThen(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, c0), [&] {
            memref::StoreOp::create(b, max, stats, ValueRange{c0, r});
            Value inverse = arith::SelectOp::create(
                b,
                arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, sum, zero),
                LLVM::CallIntrinsicOp::create(
                    b, b.getF32Type(),
                    b.getStringAttr("llvm.nvvm.rcp.approx.ftz.f"),
                    ValueRange{sum})
                    .getResult(0),
                zero);
            memref::StoreOp::create(b, inverse, stats, ValueRange{c1, r});
          });
    };
    if (first + kWarps <= group)
      statsOfHead();
    else // the last round's warps past the group sit it out (warp-uniform)
      ifThen(b,
             arith::CmpIOp::create(b, arith::CmpIPredicate::ult, r,
                                   index(b, group)),
             statsOfHead);
  }
  mlir::gpu::BarrierOp::create(b);

  // Output chunk `chunk` of the group's rows: head r's dims e0.. e0 + 3.
  auto placeOf = [&](Value chunk) -> std::pair<Value, Value> {
    return {arith::DivUIOp::create(b, chunk, index(b, dimChunks)),
            arith::MulIOp::create(
                b, arith::RemUIOp::create(b, chunk, index(b, dimChunks)),
                index(b, kChunkDims))};
  };
  auto store = [&](Value chunk, Value sum) {
    auto [r, e0] = placeOf(chunk);
    Value inverse = memref::LoadOp::create(b, stats, ValueRange{c1, r});
    Value result = arith::MulFOp::create(
        b, sum, vector::BroadcastOp::create(b, vecType, inverse));
    auto outType = cast<MemRefType>(out.getType());
    if (outType.getElementType() != f32Type)
      result = arith::TruncFOp::create(
          b, VectorType::get({kChunkDims}, outType.getElementType()), result);
    vector::StoreOp::create(
        b, result, flatRows,
        elementOf(b, arith::AddIOp::create(b, firstRow, r), e0));
  };
  // Thread w's chunk (w % chunks) over its subset (w / chunks) of the splits.
  int64_t workers = chunks * subsets;
  for (int64_t slot = 0; slot < workers; slot += kThreads) {
    Value w = arith::AddIOp::create(b, tid, index(b, slot));
    auto sumChunk = [&] {
      Value chunk = arith::RemUIOp::create(b, w, index(b, chunks));
      Value subset = arith::DivUIOp::create(b, w, index(b, chunks));
      auto [chunkHead, chunkDim] = placeOf(chunk);
      Value r = chunkHead, e0 = chunkDim; // captured below (C++17)
      Value max = memref::LoadOp::create(b, stats, ValueRange{c0, r});
      Value zeros = arith::ConstantOp::create(
          b, vecType, DenseElementsAttr::get(vecType, b.getF32FloatAttr(0.0)));
      auto loop = scf::ForOp::create(
          b, subset, numSplits, index(b, subsets * kSplitsInFlight),
          ValueRange{zeros},
          [&](OpBuilder &nested, Location loc, Value s0, ValueRange acc) {
            ImplicitLocOpBuilder ib(loc, nested);
            // Splits s0, s0 + subsets, ...: those past the last read s0's
            // rows and weigh 0. Loads first, then the arithmetic.
            SmallVector<Value> valid, maxes, rows;
            for (int64_t u = 0; u < kSplitsInFlight; ++u) {
              Value s = arith::AddIOp::create(ib, s0, index(ib, u * subsets));
              valid.push_back(arith::CmpIOp::create(
                  ib, arith::CmpIPredicate::ult, s, numSplits));
              s = arith::SelectOp::create(ib, valid.back(), s, s0);
              Value row = rowOf(ib, s, r);
              maxes.push_back(memref::LoadOp::create(ib, flatMax, row));
              rows.push_back(vector::LoadOp::create(
                  ib, vecType, flatOut, elementOf(ib, row, e0),
                  /*nontemporal=*/false, llvm::MaybeAlign(16)));
            }
            Value sum = acc[0];
            for (int64_t u = 0; u < kSplitsInFlight; ++u) {
              Value w = arith::SelectOp::create(
                  ib, valid[u], getSplitWeight(ib, maxes[u], max), zero);
              sum = vector::FMAOp::create(
                  ib, vector::BroadcastOp::create(ib, vecType, w), rows[u],
                  sum);
            }
            scf::YieldOp::create(ib, sum);
          });
      Value sum = loop.getResult(0);
      if (subsets == 1)
        store(chunk, sum);
      else
        vector::StoreOp::create(
            b, sum, sums,
            ValueRange{subset,
                       arith::MulIOp::create(b, chunk, index(b, kChunkDims))});
    };
    if (slot + kThreads <= workers)
      sumChunk();
    else
      ifThen(b,
             arith::CmpIOp::create(b, arith::CmpIPredicate::ult, w,
                                   index(b, workers)),
             sumChunk);
  }
  if (subsets == 1)
    return;
  // The subsets' sums, added (chunks < threads here).
  mlir::gpu::BarrierOp::create(b);
  ifThen(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid,
                            index(b, chunks)),
      [&] {
        Value e = arith::MulIOp::create(b, tid, index(b, kChunkDims));
        Value sum = vector::LoadOp::create(b, vecType, sums, ValueRange{c0, e});
        for (int64_t g = 1; g < subsets; ++g)
          sum = arith::AddFOp::create(
              b, sum,
              vector::LoadOp::create(b, vecType, sums,
                                     ValueRange{index(b, g), e}));
        store(tid, sum);
      });
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitCombineKernel(ImplicitLocOpBuilder &b, StringRef name,
                               const AttentionSignature &sig, bool bf16Output) {
  int64_t dyn = ShapedType::kDynamic, vDim = sig.vHeadDim;
  Type f32Type = b.getF32Type();
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Type> inputs = {
      MemRefType::get({dyn, dyn, dyn, sig.heads, vDim}, f32Type),
      MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type),
      MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type),
      getRowsType(bf16Output ? b.getBF16Type() : f32Type, sig.heads, vDim)};
  StepLengths::addTypes(b.getContext(), inputs);
  inputs.push_back(b.getI64Type());
  auto func = createKernel(b, name, inputs, {});
  SplitMerge merge = SplitMerge::allocate(func, sig);
  SplitPartials partials{func.getArgument(0), func.getArgument(1),
                         func.getArgument(2)};
  Value out = func.getArgument(3);
  StepLengths lengths = StepLengths::get(func, 4);
  Value count = func.getArgument(6);
  using mlir::gpu::Dimension;
  Value c0 = index(b, 0);
  // One CTA per (row: batch x query position, kv head).
  Value rowIndex = mlir::gpu::BlockIdOp::create(b, Dimension::x);
  Value kvHead = mlir::gpu::BlockIdOp::create(b, Dimension::y);
  Value tid = mlir::gpu::ThreadIdOp::create(b, Dimension::x);
  // The launch's tokens join the layer's length: one thread of the grid
  // (after the split-K flash kernel, the last to read it).
  Value first = arith::CmpIOp::create(
      b, arith::CmpIPredicate::eq,
      arith::OrIOp::create(b, arith::OrIOp::create(b, rowIndex, kvHead), tid),
      c0);
  Value advances = arith::AndIOp::create(
      b, first,
      arith::CmpIOp::create(
          b, arith::CmpIPredicate::ne, count,
          arith::ConstantOp::create(b, b.getI64IntegerAttr(0))));
  ifThen(b, advances, [&] { lengths.advance(b, count); });
  // Its item: (batch, position, kv head), of B x T x Hkv.
  Value item = arith::AddIOp::create(
      b, arith::MulIOp::create(b, rowIndex, index(b, sig.kvHeads)), kvHead);
  Value items = arith::MulIOp::create(
      b, mlir::gpu::GridDimOp::create(b, Dimension::x), index(b, sig.kvHeads));
  merge.emit(b, partials, memref::DimOp::create(b, partials.max, 0), item,
             items, out, tid);
  return func;
}
