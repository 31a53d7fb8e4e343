//===- DecodeKernel.cpp - Attention of a few new tokens over a GPU cache --===//
//
// A decode step reads the whole visible cache once for G = Hq / Hkv query
// rows: memory-bound, so plain SIMT code, split across CTAs over the key
// range (flash-decoding) and merged by the last split to finish. One CTA of
// 128 threads per (split, query position and kv head, batch); per tile of 128
// keys, for G' of the kv head's G query rows (G' = G up to 8, else the
// kv head's rows are served G' at a time, each slice re-reading the keys:
// a thread's state is 8 floats per row, and registers run out past 8):
//
//   thread j:  s[r] = q[r] . K[key j]        G' dot products, q in shared
//   CTA:       m' = max(m, max_j s)          warp shuffles, then 4 warps
//   thread j:  p[r][j] = e^(s[r] - m'), its share of the running sum
//   thread t:  O_t[r][8c..8c+7] = O_t[r][..] e^(m - m')
//                                 + sum_{j in its keys} p[r][j] V[key j][8c..]
//
// where c = t % (Dv / 8) picks 16 bytes of a value row (one vector load per
// key) and t / (Dv / 8) one of 128 / (Dv / 8) interleaved subsets of the
// tile's keys; the subsets' partial sums are added once per split, through
// shared memory.
//
// The step's first position is its sequence's length in the layer, read
// from device memory (a CUDA graph's replays advance it; the batch entries'
// sequences may stand at different lengths: StepLengths, which also names
// the cache sequence each entry reads); the grid's splits divide whatever
// key range it gives, and a split past the range's end writes an empty
// partial. The key at position p lives in cache row p % rows (ring and chunk
// caches wrap; `rows`, an argument: a cache may hold mirror rows past the
// ring); a query's visible keys are one interval, so only the tile past the
// range's end masks anything. Each split writes its unnormalised accumulator,
// max and sum; a sink counts once, in split 0. A padding entry's range is
// empty: its splits read no key and its rows merge to zeros (a sink's
// weight times an empty accumulator, where the layer has sinks).
//
// Then it counts itself done in a device counter of its (batch, query
// position, kv head) (fence, barrier, one atomic add); the split that
// brings the count to the grid's splits merges them all (SplitMerge.cpp)
// into the output rows, so a step is one launch, and its merge runs
// beside other splits' work instead of as a kernel of a CTA or two after
// them all. The last of those merges adds the step's positions to each
// sequence's length (every CTA has read them by then). The last arrivals reset
// the counters, so each launch (and graph replay) finds them zero.
//
// K=V layers' caches keep values only; thread j derives its key from them:
// times the key scale (an operand, in shared memory), then rotated. Per
// tile the CTA reduces each pair's angle at the tile's first position kt
// modulo 2 pi in f64 (positions reach 10^6); key kt + j's angle is that plus
// j theta_i in f32, under 2 pi + 128 radians, where sin.approx and
// cos.approx are accurate to 2^-20.5 (one MUFU each per pair and key: well
// under the time its 2 bytes a dim take from memory).
//
//===----------------------------------------------------------------------===//

#include "GPUKernelEmitter.h"
#include "hybrid/Dialect/Hybrid/Utils/Rope.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/MathExtras.h"

#include <limits>

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

namespace {

/// Keys per tile: one per thread.
constexpr int64_t kDecodeTile = kThreads;
constexpr int64_t kWarps = kThreads / kThreadsPerWarp;

class DecodeEmitter {
public:
  DecodeEmitter(ImplicitLocOpBuilder &b, const AttentionSignature &sig,
                bool bf16Output)
      : b(b), sig(sig), bf16Output(bf16Output),
        group(getDecodeRowsPerCta(sig.groupSize())),
        valueSlots((sig.vHeadDim + kThreads - 1) / kThreads),
        chunks(sig.vHeadDim / 8), keyGroups(kThreads / chunks) {
    if (sig.derivesKeys)
      rope = computeRopeTable(sig.positional, sig.headDim);
    // The layer verifier refuses K=V layers rotating from another dim.
    assert(rope.offset == 0 && "K=V keys rotate from dim 0");
  }

  mlir::gpu::GPUFuncOp emit(StringRef name);

private:
  /// Max (or sum) of `x` over the CTA; every thread gets the result.
  /// `slot` picks this row's column of the shared scratch.
  Value reduceCTA(Value x, bool max, int64_t slot);
  /// G' dot products of the shared queries with the key at cache `row`
  /// (K=V: derived from its values).
  SmallVector<Value> scores(Value row);
  /// K=V: 16-byte chunk `c` (dims 8c..8c+7) of the thread's key, derived
  /// from the value chunks `load` gives (bf16, as stored).
  Value deriveChunk(int64_t c, function_ref<Value(int64_t)> load,
                    DenseMap<int64_t, Value> &scaled,
                    DenseMap<int64_t, std::pair<Value, Value>> &trig);
  /// K=V with RoPE: each pair's angle at the tile's first position `kt`,
  /// modulo 2 pi, into shared memory (every thread calls it).
  void startTile(Value kt);
  /// The kernel's work for the G' query heads from `firstHead` of the CTA's
  /// kv head: their queries into shared memory, the key range's tiles, the
  /// split's partial results.
  void serveHeads(Value firstHead);
  /// After every slice: counts this split done and, in the last split of
  /// its (batch, query, kv head), merges the splits (and, in the last of
  /// those, advances the layer's length).
  void finishSplit();

  ImplicitLocOpBuilder &b;
  const AttentionSignature &sig;
  bool bf16Output;
  int64_t group, valueSlots;
  /// 16-byte chunks of a value row; key subsets that many threads cover.
  int64_t chunks, keyGroups;

  /// K=V layers' rotation (empty otherwise, and for NoPE).
  RopeTable rope;

  Value q, k, v, sinks, keyScale, partialOut, partialMax, partialSum;
  Value out, counters, position, rows, split, numSplits, query;
  /// The CTA's batch entry, its cache sequence and whether it is padding
  /// (StepLengths).
  Value batch, sequence, padding, kvHead, tid, lane, warp;
  StepLengths lengths;
  Value sQ, sP, sRow, sRed, sAcc, sLast;
  SplitMerge merge;
  /// K=V: the key scale, the tile's angles, the thread's key offset (f32).
  Value sScale, sPhase, offset, inverseFrequencies;
};

} // namespace

Value DecodeEmitter::reduceCTA(Value x, bool max, int64_t slot) {
  auto combine = [&](Value a, Value c) -> Value {
    return max ? Value(arith::MaximumFOp::create(b, a, c))
               : Value(arith::AddFOp::create(b, a, c));
  };
  x = reduceWarp(b, x, max);
  Value slotIndex = index(b, slot);
  ifThen(b,
         arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, index(b, 0)),
         [&] {
           memref::StoreOp::create(b, x, sRed, ValueRange{slotIndex, warp});
         });
  mlir::gpu::BarrierOp::create(b);
  Value result =
      memref::LoadOp::create(b, sRed, ValueRange{slotIndex, index(b, 0)});
  for (int64_t w = 1; w < kWarps; ++w)
    result = combine(result, memref::LoadOp::create(
                                 b, sRed, ValueRange{slotIndex, index(b, w)}));
  return result;
}

SmallVector<Value> DecodeEmitter::scores(Value row) {
  // 8 dims (16 bytes of bf16) per load; head dims are multiples of 16. The
  // loads are issued a batch of 8 at a time so that each thread keeps
  // several in flight: one outstanding load per thread cannot cover memory
  // latency.
  auto vec8 = VectorType::get({8}, b.getF32Type());
  Value zeros = arith::ConstantOp::create(
      b, vec8, DenseElementsAttr::get(vec8, b.getF32FloatAttr(0.0)));
  SmallVector<Value> acc(group, zeros);
  auto addChunk = [&](int64_t c, Value keyF32) {
    Value d = index(b, 8 * c);
    for (int64_t r = 0; r < group; ++r) {
      Value q = vector::LoadOp::create(b, vec8, sQ, ValueRange{index(b, r), d});
      acc[r] = vector::FMAOp::create(b, q, keyF32, acc[r]);
    }
  };
  DenseMap<int64_t, Value> loaded;
  auto load = [&](int64_t c) {
    Value &chunk = loaded[c];
    if (!chunk)
      chunk = vector::LoadOp::create(
          b, VectorType::get({8}, b.getBF16Type()), k,
          ValueRange{sequence, row, kvHead, index(b, 8 * c)},
          /*nontemporal=*/false, llvm::MaybeAlign(16));
    return chunk;
  };
  // Chunks in the order they are used: a derived key's chunk with the
  // chunks holding its dims' rotation partners right after it, so that a
  // pair's values and angle are live for one batch.
  int64_t numChunks = sig.headDim / 8;
  SmallVector<int64_t> order;
  SmallVector<bool> placed(numChunks, false);
  auto place = [&](int64_t c) {
    if (!placed[c])
      order.push_back(c);
    placed[c] = true;
  };
  int64_t pairs = rope.inverseFrequencies.size();
  for (int64_t c = 0; c < numChunks; ++c) {
    place(c);
    for (int64_t d = 8 * c; d < 8 * c + 8 && d < pairs; ++d)
      place((d + rope.half) / 8);
  }
  DenseMap<int64_t, Value> scaled;
  DenseMap<int64_t, std::pair<Value, Value>> trig;
  constexpr int64_t kBatch = 8;
  for (int64_t first = 0; first < numChunks; first += kBatch) {
    ArrayRef<int64_t> batchChunks =
        ArrayRef(order).slice(first, std::min(kBatch, numChunks - first));
    for (int64_t c : batchChunks)
      load(c);
    for (int64_t c : batchChunks)
      addChunk(c, sig.derivesKeys
                      ? deriveChunk(c, load, scaled, trig)
                      : Value(arith::ExtFOp::create(b, vec8, load(c))));
  }
  SmallVector<Value> result;
  for (Value a : acc)
    result.push_back(
        vector::ReductionOp::create(b, vector::CombiningKind::ADD, a));
  return result;
}

Value DecodeEmitter::deriveChunk(
    int64_t c, function_ref<Value(int64_t)> load,
    DenseMap<int64_t, Value> &scaled,
    DenseMap<int64_t, std::pair<Value, Value>> &trig) {
  auto vec8 = VectorType::get({8}, b.getF32Type());
  // Dim d times the key scale, in f32.
  auto element = [&](int64_t d) -> Value {
    Value &chunk = scaled[d / 8];
    if (!chunk)
      chunk = arith::MulFOp::create(
          b, arith::ExtFOp::create(b, vec8, load(d / 8)),
          vector::LoadOp::create(b, vec8, sScale, index(b, d / 8 * 8)));
    return vector::ExtractOp::create(b, chunk, d % 8);
  };
  // Pair i's cos and sin at the thread's key (times yarn's factor).
  auto angle = [&](int64_t i) {
    std::pair<Value, Value> &cs = trig[i];
    if (cs.first)
      return cs;
    Value phase = memref::LoadOp::create(b, sPhase, index(b, i));
    Value a = math::FmaOp::create(
        b, offset, f32(b, float(rope.inverseFrequencies[i])), phase);
    auto approx = [&](StringRef intrinsic) -> Value {
      Value x = LLVM::CallIntrinsicOp::create(b, b.getF32Type(),
                                              b.getStringAttr(intrinsic),
                                              ValueRange{a})
                    .getResult(0);
      if (rope.attentionFactor != 1.0)
        x = arith::MulFOp::create(b, x, f32(b, float(rope.attentionFactor)));
      return x;
    };
    cs = {approx("llvm.nvvm.cos.approx.ftz.f"),
          approx("llvm.nvvm.sin.approx.ftz.f")};
    return cs;
  };
  int64_t pairs = rope.inverseFrequencies.size(), half = rope.half;
  SmallVector<Value> dims;
  for (int64_t d = 8 * c; d < 8 * c + 8; ++d) {
    Value x = element(d);
    // First of a pair: x cos - x' sin; second: x cos + x' sin.
    bool first = d < pairs, second = d >= half && d - half < pairs;
    if (first || second) {
      int64_t i = first ? d : d - half;
      auto [cos, sin] = angle(i);
      Value partner = element(first ? d + half : d - half);
      Value turned = arith::MulFOp::create(b, partner, sin);
      if (first)
        turned = arith::NegFOp::create(b, turned);
      x = math::FmaOp::create(b, x, cos, turned);
    }
    dims.push_back(x);
  }
  return vector::FromElementsOp::create(b, vec8, dims);
}

void DecodeEmitter::startTile(Value kt) {
  Type f64 = b.getF64Type();
  Value p = arith::UIToFPOp::create(
      b, f64, arith::IndexCastUIOp::create(b, b.getI64Type(), kt));
  double twoPi = 2 * llvm::numbers::pi;
  forLoop(
      b, tid, index(b, rope.inverseFrequencies.size()), index(b, kThreads),
      [&](Value i) {
        Value angle = arith::MulFOp::create(
            b, p, memref::LoadOp::create(b, inverseFrequencies, i));
        // Angles are >= 0: truncation is floor.
        Value turns = arith::UIToFPOp::create(
            b, f64,
            arith::FPToUIOp::create(
                b, b.getI64Type(),
                arith::MulFOp::create(b, angle,
                                      arith::ConstantOp::create(
                                          b, b.getF64FloatAttr(1 / twoPi)))));
        Value phase = arith::SubFOp::create(
            b, angle,
            arith::MulFOp::create(
                b, turns,
                arith::ConstantOp::create(b, b.getF64FloatAttr(twoPi))));
        memref::StoreOp::create(
            b, arith::TruncFOp::create(b, b.getF32Type(), phase), sPhase, i);
      });
  mlir::gpu::BarrierOp::create(b);
}

mlir::gpu::GPUFuncOp DecodeEmitter::emit(StringRef name) {
  Type bf16 = b.getBF16Type(), f32Type = b.getF32Type();
  int64_t dim = sig.headDim, vDim = sig.vHeadDim, dyn = ShapedType::kDynamic;
  SmallVector<Type> inputs = {getRowsType(bf16, sig.heads, dim),
                              getRowsType(bf16, sig.kvHeads, dim),
                              getRowsType(bf16, sig.kvHeads, vDim)};
  if (sig.score.getSinks())
    inputs.push_back(MemRefType::get({sig.heads}, f32Type));
  if (sig.derivesKeys)
    inputs.push_back(getKeyScaleType(b.getContext()));
  inputs.append({MemRefType::get({dyn, dyn, dyn, sig.heads, vDim}, f32Type),
                 MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type),
                 MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type),
                 getRowsType(bf16Output ? bf16 : f32Type, sig.heads, vDim),
                 MemRefType::get({dyn}, b.getI32Type())});
  StepLengths::addTypes(b.getContext(), inputs);
  inputs.push_back(b.getIndexType());
  OpBuilder::InsertionGuard guard(b);
  auto func = createKernel(b, name, inputs,
                           {getWorkgroupType({group, dim}, f32Type),
                            getWorkgroupType({group, kDecodeTile}, f32Type),
                            getWorkgroupType({kDecodeTile}, b.getIndexType()),
                            // [row][warp]: a row's partials are one
                            // 16-byte load that reads no other row's (a
                            // [warp][row] layout let that vector load race
                            // with the next row's writes).
                            getWorkgroupType({group, kWarps}, f32Type),
                            getWorkgroupType({keyGroups, vDim}, f32Type),
                            getWorkgroupType({1}, b.getI32Type())});
  for (unsigned i : {0u, 3u, 4u})
    func.setWorkgroupAttributionAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                                     b.getI64IntegerAttr(16));
  unsigned arg = 0;
  q = func.getArgument(arg++);
  k = func.getArgument(arg++);
  v = func.getArgument(arg++);
  sinks = sig.score.getSinks() ? func.getArgument(arg++) : Value();
  keyScale = sig.derivesKeys ? func.getArgument(arg++) : Value();
  partialOut = func.getArgument(arg++);
  partialMax = func.getArgument(arg++);
  partialSum = func.getArgument(arg++);
  out = func.getArgument(arg++);
  counters = func.getArgument(arg++);
  lengths = StepLengths::get(func, arg);
  arg += 2;
  // The ring's rows: the cache's rows past them mirror its first (for the
  // flash kernel's tiles), and none of them is read here.
  rows = func.getArgument(arg);
  sQ = func.getWorkgroupAttributions()[0];
  sP = func.getWorkgroupAttributions()[1];
  sRow = func.getWorkgroupAttributions()[2];
  sRed = func.getWorkgroupAttributions()[3];
  sAcc = func.getWorkgroupAttributions()[4];
  sLast = func.getWorkgroupAttributions()[5];
  merge = SplitMerge::allocate(func, sig);
  if (sig.derivesKeys) {
    sScale = addAlignedWorkgroupBuffer(func, getWorkgroupType({dim}, f32Type));
    if (!rope.inverseFrequencies.empty()) {
      // Padded to whole 16 bytes: LLVM's load-store vectorizer widens the
      // last pairs' loads (3 of 23 at rotary_dim 46) to one 16-byte load,
      // which read past the CTA's shared memory (the PTX emulator faulted).
      sPhase = addAlignedWorkgroupBuffer(
          func, getWorkgroupType(
                    {int64_t(llvm::alignTo(rope.inverseFrequencies.size(), 4))},
                    f32Type));
      inverseFrequencies = getF64Table(b, func, (name + "_inv_freq").str(),
                                       rope.inverseFrequencies);
    }
  }

  using mlir::gpu::Dimension;
  Value c0 = index(b, 0);
  split = mlir::gpu::BlockIdOp::create(b, Dimension::x);
  numSplits = mlir::gpu::GridDimOp::create(b, Dimension::x);
  Value queryAndHead = mlir::gpu::BlockIdOp::create(b, Dimension::y);
  query = arith::DivUIOp::create(b, queryAndHead, index(b, sig.kvHeads));
  kvHead = arith::RemUIOp::create(b, queryAndHead, index(b, sig.kvHeads));
  batch = mlir::gpu::BlockIdOp::create(b, Dimension::z);
  StepLengths::Entry entry = lengths.entryOf(b, batch);
  sequence = entry.sequence;
  padding = entry.padding;
  position = lengths.positionOf(b, entry);
  tid = mlir::gpu::ThreadIdOp::create(b, Dimension::x);
  lane = arith::RemUIOp::create(b, tid, index(b, kThreadsPerWarp));
  warp = arith::DivUIOp::create(b, tid, index(b, kThreadsPerWarp));
  if (sig.derivesKeys) {
    // The key scale, for every key a thread derives (visible to them after
    // serveHeads' first barrier).
    forLoop(b, tid, index(b, dim), index(b, kThreads), [&](Value d) {
      memref::StoreOp::create(b, memref::LoadOp::create(b, keyScale, d), sScale,
                              d);
    });
    if (sPhase) // the thread's key offset in a tile, for its angles
      offset = arith::UIToFPOp::create(
          b, f32Type, arith::IndexCastUIOp::create(b, b.getI32Type(), tid));
  }
  int64_t slices = sig.groupSize() / group;
  Value kvHeadFirst =
      arith::MulIOp::create(b, kvHead, index(b, slices * group));
  if (slices == 1)
    serveHeads(kvHeadFirst);
  else
    forLoop(b, c0, index(b, slices), index(b, 1), [&](Value slice) {
      serveHeads(arith::AddIOp::create(
          b, kvHeadFirst, arith::MulIOp::create(b, slice, index(b, group))));
    });
  finishSplit();
  return func;
}

void DecodeEmitter::finishSplit() {
  using mlir::gpu::Dimension;
  Value c0 = index(b, 0);
  Type i32 = b.getI32Type();
  auto i32Constant = [&](int32_t x) {
    return arith::ConstantOp::create(b, b.getI32IntegerAttr(x));
  };
  auto isLast = [&](Value arrived, Value of) {
    return arith::CmpIOp::create(
        b, arith::CmpIPredicate::eq,
        arith::AddIOp::create(b, arrived, i32Constant(1)),
        arith::IndexCastUIOp::create(b, i32, of));
  };
  // This split's partials, visible GPU-wide before it counts itself (every
  // writer fences; thread 0 counts after the barrier).
  fenceDevice(b);
  mlir::gpu::BarrierOp::create(b);
  Value groups =
      arith::MulIOp::create(b, mlir::gpu::GridDimOp::create(b, Dimension::y),
                            mlir::gpu::GridDimOp::create(b, Dimension::z));
  // counters[batch, query, kv head]: splits done; counters[groups]: groups
  // merged. Their last arrivals reset them for the next launch.
  Value item = arith::AddIOp::create(
      b,
      arith::MulIOp::create(b, batch,
                            mlir::gpu::GridDimOp::create(b, Dimension::y)),
      mlir::gpu::BlockIdOp::create(b, Dimension::y));
  ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, c0), [&] {
    Value done = memref::AtomicRMWOp::create(b, arith::AtomicRMWKind::addi,
                                             i32Constant(1), counters, item);
    Value last = isLast(done, numSplits);
    memref::StoreOp::create(b, arith::ExtUIOp::create(b, i32, last), sLast, c0);
    ifThen(b, last, [&] {
      memref::StoreOp::create(b, i32Constant(0), counters, item);
      Value merged = memref::AtomicRMWOp::create(
          b, arith::AtomicRMWKind::addi, i32Constant(1), counters, groups);
      // Every CTA of the grid has read the lengths (before it counted
      // itself): the step's positions join each sequence's.
      ifThen(b, isLast(merged, groups), [&] {
        memref::StoreOp::create(b, i32Constant(0), counters, groups);
        Value positions = arith::DivUIOp::create(
            b, mlir::gpu::GridDimOp::create(b, Dimension::y),
            index(b, sig.kvHeads));
        lengths.advance(
            b, arith::IndexCastUIOp::create(b, b.getI64Type(), positions));
      });
    });
  });
  mlir::gpu::BarrierOp::create(b);
  ifThen(b,
         arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                               memref::LoadOp::create(b, sLast, c0),
                               i32Constant(0)),
         [&] {
           // The other splits' partials (acquired by thread 0's count).
           fenceDevice(b);
           merge.emit(b, {partialOut, partialMax, partialSum}, numSplits, item,
                      groups, out, tid);
         });
}

void DecodeEmitter::serveHeads(Value firstHead) {
  Type f32Type = b.getF32Type();
  int64_t dim = sig.headDim, vDim = sig.vHeadDim;
  Value c0 = index(b, 0);
  // The group's queries, in f32, shared by every thread.
  forLoop(b, tid, index(b, group * dim), index(b, kThreads), [&](Value i) {
    Value r = arith::DivUIOp::create(b, i, index(b, dim));
    Value d = arith::RemUIOp::create(b, i, index(b, dim));
    Value x = memref::LoadOp::create(
        b, q,
        ValueRange{batch, query, arith::AddIOp::create(b, firstHead, r), d});
    memref::StoreOp::create(b, arith::ExtFOp::create(b, f32Type, x), sQ,
                            ValueRange{r, d});
  });
  mlir::gpu::BarrierOp::create(b);

  Value tile = index(b, kDecodeTile);
  Value at = arith::AddIOp::create(b, position, query);
  Value begin = getKeyBegin(b, sig.mask, at);
  Value end = arith::SelectOp::create(
      b, padding, begin, arith::AddIOp::create(b, at, index(b, 1)));
  auto [lo, hi] = getSplitKeyRange(b, begin, end, split, numSplits, tile);

  float inf = std::numeric_limits<float>::infinity();
  Value negInf = f32(b, -inf), zero = f32(b, 0.0);
  Value firstSplit =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, split, c0);
  // State: max per row (the same in every thread), this thread's share of
  // the sum per row, and its partial accumulator per row (8 value dims).
  SmallVector<Value> init;
  SmallVector<Value> sinkLogits;
  for (int64_t r = 0; r < group; ++r) {
    Value max = negInf;
    if (sinks) {
      sinkLogits.push_back(memref::LoadOp::create(
          b, sinks,
          ValueRange{arith::AddIOp::create(b, firstHead, index(b, r))}));
      max = arith::SelectOp::create(b, firstSplit, sinkLogits.back(), negInf);
    }
    init.push_back(max);
  }
  init.append(group, zero);
  auto vec8 = VectorType::get({8}, f32Type);
  Value zeros8 = arith::ConstantOp::create(
      b, vec8, DenseElementsAttr::get(vec8, b.getF32FloatAttr(0.0)));
  init.append(group, zeros8);
  Value chunk = arith::RemUIOp::create(b, tid, index(b, chunks));
  Value keyGroup = arith::DivUIOp::create(b, tid, index(b, chunks));
  Value firstDim = arith::MulIOp::create(b, chunk, index(b, 8));
  double cap = sig.score.getSoftcap();

  auto loop = scf::ForOp::create(b, lo, hi, tile, init);
  {
    OpBuilder::InsertionGuard inLoop(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kt = loop.getInductionVar();
    ValueRange state = loop.getRegionIterArgs();
    Value count =
        arith::MinSIOp::create(b, tile, arith::SubIOp::create(b, hi, kt));
    Value key = arith::AddIOp::create(b, kt, tid);
    Value valid =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, tid, count);
    // Threads past the range read the tile's first key; their scores are
    // masked.
    Value row = arith::RemUIOp::create(
        b, arith::SelectOp::create(b, valid, key, kt), rows);
    if (sPhase)
      startTile(kt);
    SmallVector<Value> s = scores(row);
    SmallVector<Value> next(state.begin(), state.end());
    SmallVector<Value> alpha;
    for (int64_t r = 0; r < group; ++r) {
      Value x = s[r];
      if (cap > 0)
        x = arith::MulFOp::create(
            b, f32(b, cap),
            math::TanhOp::create(b,
                                 arith::MulFOp::create(b, x, f32(b, 1 / cap))));
      x = arith::SelectOp::create(b, valid, x, negInf);
      Value newMax =
          arith::MaximumFOp::create(b, state[r], reduceCTA(x, /*max=*/true, r));
      Value safeMax = finiteOrZero(b, newMax);
      alpha.push_back(expOfDifference(b, state[r], safeMax));
      Value prob = expOfDifference(b, x, safeMax);
      memref::StoreOp::create(b, prob, sP, ValueRange{index(b, r), tid});
      next[r] = newMax;
      next[group + r] = arith::AddFOp::create(
          b, arith::MulFOp::create(b, state[group + r], alpha[r]), prob);
    }
    memref::StoreOp::create(b, row, sRow, ValueRange{tid});
    mlir::gpu::BarrierOp::create(b);

    // O_t[r] = alpha[r] O_t[r] + sum over this thread's keys j of
    // p[r][j] V[row j][8c..8c+7]. Every key of the tile is visited: past
    // `count`, p is 0 and the row a real one.
    SmallVector<Value> accInit;
    for (int64_t r = 0; r < group; ++r)
      accInit.push_back(arith::MulFOp::create(
          b, state[2 * group + r],
          vector::BroadcastOp::create(b, vec8, alpha[r])));
    int64_t keysPerGroup = (kDecodeTile + keyGroups - 1) / keyGroups;
    bool ragged = kDecodeTile % keyGroups != 0;
    int64_t unroll = 8;
    while (keysPerGroup % unroll)
      unroll /= 2;
    auto accumulate = scf::ForOp::create(
        b, c0, index(b, keysPerGroup), index(b, unroll), accInit,
        [&](OpBuilder &nested, Location loc, Value i0, ValueRange acc) {
          ImplicitLocOpBuilder ib(loc, nested);
          // The batch's value loads are issued together.
          SmallVector<Value> keys, inTile, values;
          for (int64_t u = 0; u < unroll; ++u) {
            Value j = arith::AddIOp::create(
                ib, keyGroup,
                arith::MulIOp::create(
                    ib, arith::AddIOp::create(ib, i0, index(ib, u)),
                    index(ib, keyGroups)));
            if (ragged) {
              inTile.push_back(arith::CmpIOp::create(
                  ib, arith::CmpIPredicate::ult, j, index(ib, kDecodeTile)));
              j = arith::MinUIOp::create(ib, j, index(ib, kDecodeTile - 1));
            }
            keys.push_back(j);
            Value keyRow = memref::LoadOp::create(ib, sRow, j);
            Value value = vector::LoadOp::create(
                ib, VectorType::get({8}, ib.getBF16Type()), v,
                ValueRange{sequence, keyRow, kvHead, firstDim},
                /*nontemporal=*/false, llvm::MaybeAlign(16));
            values.push_back(arith::ExtFOp::create(ib, vec8, value));
          }
          SmallVector<Value> result(acc.begin(), acc.end());
          for (int64_t u = 0; u < unroll; ++u)
            for (int64_t r = 0; r < group; ++r) {
              Value prob = memref::LoadOp::create(
                  ib, sP, ValueRange{index(ib, r), keys[u]});
              if (ragged)
                prob =
                    arith::SelectOp::create(ib, inTile[u], prob, f32(ib, 0.0));
              result[r] = vector::FMAOp::create(
                  ib, vector::BroadcastOp::create(ib, vec8, prob), values[u],
                  result[r]);
            }
          scf::YieldOp::create(ib, result);
        });
    for (int64_t r = 0; r < group; ++r)
      next[2 * group + r] = accumulate.getResult(r);
    // sP, sRow and sRed are rewritten by the next tile.
    mlir::gpu::BarrierOp::create(b);
    scf::YieldOp::create(b, next);
  }

  ValueRange result = loop.getResults();
  for (int64_t r = 0; r < group; ++r) {
    Value head = arith::AddIOp::create(b, firstHead, index(b, r));
    SmallVector<Value> at = {split, batch, query, head};
    Value sum = reduceCTA(result[group + r], /*max=*/false, r);
    if (sinks)
      sum = arith::SelectOp::create(
          b, firstSplit,
          arith::AddFOp::create(b, sum,
                                expOfDifference(b, sinkLogits[r], result[r])),
          sum);
    ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, c0), [&] {
      memref::StoreOp::create(b, result[r], partialMax, at);
      memref::StoreOp::create(b, sum, partialSum, at);
    });
    // The key subsets' partial sums, added up through shared memory.
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::ult, keyGroup,
                                 index(b, keyGroups)),
           [&] {
             vector::StoreOp::create(b, result[2 * group + r], sAcc,
                                     ValueRange{keyGroup, firstDim});
           });
    mlir::gpu::BarrierOp::create(b);
    for (int64_t c = 0; c < valueSlots; ++c) {
      Value e = arith::AddIOp::create(b, tid, index(b, c * kThreads));
      ifThen(
          b,
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, e,
                                index(b, vDim)),
          [&] {
            Value total = memref::LoadOp::create(b, sAcc, ValueRange{c0, e});
            for (int64_t g = 1; g < keyGroups; ++g)
              total = arith::AddFOp::create(
                  b, total,
                  memref::LoadOp::create(b, sAcc, ValueRange{index(b, g), e}));
            memref::StoreOp::create(b, total, partialOut,
                                    ValueRange{split, batch, query, head, e});
          });
    }
    // sRed and sAcc are reused by the next row.
    mlir::gpu::BarrierOp::create(b);
  }
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitDecodeKernel(ImplicitLocOpBuilder &b, StringRef name,
                              const AttentionSignature &sig, bool bf16Output) {
  return DecodeEmitter(b, sig, bf16Output).emit(name);
}
