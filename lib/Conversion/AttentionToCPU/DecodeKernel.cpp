//===- DecodeKernel.cpp - Attention of a few new tokens over a KV cache ---===//
//
// A decode step brings one or a few query positions, so the prefill
// kernel's layout (rows along vector lanes) would leave most lanes idle.
// Here one work item is up to P query positions of a step for every head
// (rows t * Hq + h), vectors run along the head dims instead, and every key
// and value vector is loaded once for the P * G rows of its kv head:
//
//   s[t][h][j] = reduce_add(sum_c q[t][h][c] * K[j][h / G][c])   (c: chunks)
//   OT[t][h]   = alpha[t][h] * OT[t][h] + sum_j p[t][h][j] * V[j][h / G]
//
// so a step of several tokens (speculative decoding's draft tokens) reads
// its cache once, not once per token. The G rows of a key sum their lanes
// together (shuffles that halve G vectors' segments level by level: about
// 3 instructions a score instead of a reduction's 9; 6% faster steps at
// 64K with 8 rows per kv head). With an f8 cache and GQA 4 to 8 the scores
// pass takes 16 / G keys of a kv head at once, each query chunk loaded once
// for them, and adds their 16 sums' lanes into one vector of scores (see
// blockKeys()).
//
// Reading the cache is the step's cost, so the cache's memory order sets its
// speed: the loops run over keys outside and kv heads inside, reading each
// [Hkv, D] cache row front to back (a work item per kv head would read
// 512-byte pieces 4 KiB apart at 8 kv heads: measured 0.55x the bandwidth).
// With GQA the accumulate pass keeps its accumulators in registers: a run
// of 8 keys at a time, kv head by kv head, blocks of up to 16 (row, value
// chunk) accumulators go through the run's keys, loaded from scratch and
// stored back once a run, not once a key (their loads and stores bound the
// pass before: GQA 4 took 1.2x the time at 4K context, 1.2-1.3x at 64K with
// f32 and f8 caches). Without GQA they stay in scratch, each value vector
// loaded once for the positions of a step.
// A tile is read twice, keys by the scores pass, then values by the
// accumulate pass, and with GQA each pass computes long enough per byte that
// the hardware prefetchers do not keep a tile's loads in flight through it:
// the scores pass prefetches the tile's values into L2 and the accumulate
// pass the next tile's keys (64K context, 16 heads on 2 kv heads: 1.4x; 32
// on 8: 1.25x; a 4-token step without GQA: 1.4x).
//
// A query's visible keys form one interval [begin(p), p + 1); a work item
// visits the union of its positions' intervals and masks each row's scores
// outside its own. The key at position p lives in cache row p % capacity
// (ring buffers wrap at most once inside that union, whose length is at most
// window + step - 1 = capacity; it is visited as two contiguous row runs).
// The union is split in `num_splits` parts whose unnormalised partial
// results (accumulator, max, sum) the combine kernel merges by log-sum-exp
// (flash-decoding), so that a single sequence keeps every core busy.
//
// K=V layers' caches keep values only; their kernel derives each key as it
// loads it: times the key scale (an operand), then rotated. A key's angles
// advance by one rotation per position, so a work item computes cos and sin
// in f64 once where its range starts and steps them key by key (four
// multiply-adds per pair; libm per key and pair instead cost 7x a full
// layer's step), keeping each tile's rows in f32 for every kv head.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "hybrid/Dialect/Hybrid/Utils/Rope.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <limits>

using namespace mlir;
using namespace hybrid;
using namespace hybrid::cpu;

namespace {

/// Prefetches go to L2 (`prefetcht1`): a tile of the other tensor (64 keys
/// of every kv head by default) does not fit L1 beside the tile being read.
constexpr uint32_t kPrefetchLocality = 2;

/// Accumulators the accumulate pass keeps in vector registers (rows times
/// value chunks), leaving AVX-512's other 16 for the values and products.
constexpr int64_t kAccumulators = 16;

/// Keys the accumulate pass runs through for a kv head before the next.
constexpr int64_t kAccumulateKeys = 8;

/// x1 cos - x2 sin and x2 cos + x1 sin (a pair rotated; a complex product),
/// in fused multiply-adds: two instructions each.
Value rotateFirst(ImplicitLocOpBuilder &b, Value x1, Value x2, Value cos,
                  Value sin) {
  return math::FmaOp::create(
      b, x1, cos, arith::NegFOp::create(b, arith::MulFOp::create(b, x2, sin)));
}
Value rotateSecond(ImplicitLocOpBuilder &b, Value x1, Value x2, Value cos,
                   Value sin) {
  return math::FmaOp::create(b, x1, sin, arith::MulFOp::create(b, x2, cos));
}

class DecodeEmitter {
public:
  DecodeEmitter(ImplicitLocOpBuilder &b, const AttentionSignature &sig,
                int64_t keyTile, Type cacheElement)
      : b(b), sig(sig), cacheElement(cacheElement), group(sig.groupSize()),
        kTile((keyTile + kLanes - 1) / kLanes * kLanes),
        keyWidth(sig.headDim % kLanes == 0 ? kLanes : 8),
        valueWidth(sig.vHeadDim % kLanes == 0 ? kLanes : 8),
        positions(getDecodePositions(sig, kTile)) {
    if (sig.derivesKeys)
      rope = computeRopeTable(sig.positional, sig.headDim);
    // The layer verifier refuses K=V layers rotating from another dim.
    assert(rope.offset == 0 && "K=V keys rotate from dim 0");
    int64_t pairs = rope.inverseFrequencies.size();
    trigWidth = (pairs + kLanes - 1) / kLanes * kLanes;
    // Padding: frequency 0, so cos 1 and sin 0 that never move.
    frequencies.assign(rope.inverseFrequencies.begin(),
                       rope.inverseFrequencies.end());
    frequencies.resize(trigWidth, 0.0);
  }

  func::FuncOp emit(StringRef name);

private:
  /// Keys at positions [lo, hi), stored from cache row `lo - base` on.
  void visitKeys(Value lo, Value hi, Value base);
  void scores(Value firstKey, Value row, Value count);
  /// The scores of kv head `kvHead`'s G rows for the blockKeys() keys from
  /// tile row `j` (cache row `row + j`), where an item has one position.
  void scoreBlock(Value row, Value j, Value kvHead);
  /// Keys the scores pass takes at once per kv head (1: key by key): as many
  /// as fill a vector with their G rows' scores, which loads each query
  /// chunk once for them all and sums 16 products' lanes together, but
  /// reads 16 / G cache rows interleaved. Only for f8 caches, whose widening
  /// makes the pass compute-bound, and GQA 4 and more: there 0.89-0.98x the
  /// step's time at 4K-16K context, 0.94x at 64K; with G = 1 and 2 the
  /// interleaved rows cost more (64K: 1.24x; 16K: 1.08x), and so they do
  /// for f32 and bf16 caches, which stream at full bandwidth at 64K (GQA 4:
  /// 1.06x, 1.17x).
  int64_t blockKeys() const {
    if (!onePosition || sig.derivesKeys || !widensF8() || group < 4 ||
        group > keyWidth / 2)
      return 1;
    return keyWidth / group;
  }
  void softmax();
  void accumulate(Value row, Value count);
  /// The accumulate pass key by key in the cache's order, each value vector
  /// loaded once for the P * G rows of its kv head, their accumulators in
  /// scratch.
  void accumulateInScratch(Value row, Value count);
  /// The accumulate pass a run of kAccumulateKeys keys at a time, kv head by
  /// kv head: blocks of a kv head's rows and value chunks keep their
  /// accumulators in registers through the run.
  void accumulateInRegisters(Value row, Value count);
  /// One block of accumulateInRegisters: the accumulators of scratch rows
  /// `rows` (of kv head `kvHead`) and value chunks [first, first + width),
  /// through the keys [from, to) of the tile at cache row `row`; with
  /// `prefetch`, prefetching the next tile's keys of the kv head.
  void accumulateBlock(Value row, Value kvHead, ArrayRef<Value> rows,
                       int64_t first, int64_t width, Value from, Value to,
                       bool prefetch);

  /// K=V: the angles of the key at `position` (cos and sin of every pair,
  /// in f64) in `stateCos`/`stateSin`.
  void seedAngles(Value position);
  /// K=V: rows j < count of `trigCos`/`trigSin` for the keys from the seeded
  /// position on (f32, times yarn's attention factor), stepping the angles.
  void stepAngles(Value count);
  /// K=V: the key of tile row `j` from its loaded value chunks, in place:
  /// times the key scale, then rotated.
  void deriveKey(Value j, SmallVectorImpl<Value> &chunks);

  /// body(j, t, first scratch row, chunks) for the `count` cache rows from
  /// `row`, key by key and kv head by kv head (the cache's memory order), for
  /// each position t: the scratch rows of the kv head's G query heads follow
  /// the first; `chunks` are the kv head's `width`-wide vectors of `cache`,
  /// loaded once for its P * G rows. With `derive`, the chunks are keys
  /// derived from the values (K=V). With `prefetchCache`, each row's kv
  /// head is also prefetched from it, `ahead` rows on (getPrefetchRow): the
  /// data the next pass reads.
  void forEachCacheVector(
      Value cache, int64_t width, Value row, Value count,
      function_ref<void(Value, Value, Value, ArrayRef<Value>)> body,
      bool derive = false, Value prefetchCache = Value(), int64_t ahead = 0);
  /// Chunks [first, first + count) of kv head `kvHead`'s part of cache row
  /// `key`, `width` elements each, as f32 (f8: times 2^-8; the chunks' bytes
  /// are checked once for NaN codes, restored where there are some).
  SmallVector<Value> loadChunks(Value cache, int64_t width, Value key,
                                Value kvHead, int64_t first, int64_t count);
  /// Chunk `chunk` of kv head `kvHead`'s part of cache row `key` as f32,
  /// f8's NaN codes restored `withNaNs` (see loadChunks).
  Value loadChunk(Value cache, int64_t width, Value key, Value kvHead,
                  int64_t chunk, bool withNaNs);
  /// Prefetches kv head `kvHead`'s part of cache row `row` into L2, 64
  /// bytes at a time.
  void prefetchRow(Value cache, Value row, Value kvHead);
  /// Cache row `key + ahead`, clamped to the cache's last row.
  Value getPrefetchRow(Value key, int64_t ahead) {
    if (ahead == 0)
      return key;
    Value last =
        arith::SubIOp::create(b, memref::DimOp::create(b, k, 1), index(b, 1));
    return arith::MinUIOp::create(
        b, arith::AddIOp::create(b, key, index(b, ahead)), last);
  }
  /// The scratch row of position t's first query head of a kv head whose
  /// first query head is `firstHead`; its G query heads' rows follow.
  Value getFirstRow(Value t, Value firstHead) {
    return arith::AddIOp::create(
        b, arith::MulIOp::create(b, t, index(b, sig.heads)), firstHead);
  }
  /// The lane sums of `vectors`, a scalar each: up to a vector's lanes of
  /// them are reduced together by shuffles and adds (log2 levels), not one
  /// reduction each.
  SmallVector<Value> sumEach(ArrayRef<Value> vectors);
  /// Up to a vector's lanes of `vectors` summed into one vector: vector i's
  /// lane sum in lane i * stride (`stride` set).
  Value sumInLanes(ArrayRef<Value> vectors, int64_t &stride);
  /// Whether the passes prefetch the next one's data: where they do more
  /// than one row's work per cache vector (GQA, several positions), or read
  /// narrow elements (bf16: half the lines per instruction; without
  /// prefetches a 64K step without GQA read 19 GB/s, with them 26, the read
  /// baseline). With one
  /// row of f32, the hardware prefetchers keep up, and prefetches only cost
  /// instructions (a step at 4K context without GQA, its cache in L3: 8%
  /// slower).
  bool prefetches() const {
    return group > 1 || !onePosition || !cacheElement.isF32();
  }
  /// Whether the cache holds f8E4M3FN, which the passes widen to 2^-8 times
  /// its values (a multiply fewer per vector; widenF8E4M3FNBits): queries
  /// enter the scratch times 2^8, and outputs leave it so.
  bool widensF8() const { return isa<Float8E4M3FNType>(cacheElement); }
  /// x, or 2^8 x where widensF8() (exact: a power of 2).
  Value undoF8Scale(Value x) {
    if (!widensF8())
      return x;
    return arith::MulFOp::create(
        b, x, splat(cast<VectorType>(x.getType()), f32(b, 256.0)));
  }
  /// body(scratch row) for every position and query head of the item.
  void forEachRow(function_ref<void(Value)> body) {
    forLoop(b, index(b, 0), numRows, index(b, 1), body);
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
  Type cacheElement; // f32, bf16 or f8E4M3FN (widened as it is loaded)
  int64_t group, kTile, keyWidth, valueWidth;
  int64_t positions;        // P: query positions per work item at most
  bool onePosition = false; // emitting the branch for items of one position
  RopeTable rope;           // K=V layers' rotation (empty otherwise)
  int64_t trigWidth = 0;    // rotating pairs, rounded up to whole vectors
  SmallVector<double> frequencies; // rope's, zeros up to trigWidth

  // Per work item: batch, its positions, and scratch with a row per
  // position and query head (t * Hq + h).
  Value batch, q, k, v;
  Value firstPosition, numPositions, numRows;
  Value queries; // [P * Hq, D]: the query rows
  Value scoresT; // [P * Hq, kTile]: scores, then probabilities; -inf: hidden
  Value outputT; // [P * Hq, Dv]: unnormalised accumulator
  Value rowMax, rowSum, rowAlpha; // [P * Hq]
  func::FuncOp func;
  // K=V: the key scale [D], its chunks, the angles [trigWidth] (f64) where
  // the next key is, and the tile's cos and sin [kTile, trigWidth] (f32);
  // `keyRow` [D] rotates keys whose pairs straddle vectors.
  Value keyScale;
  SmallVector<Value> scaleChunks;
  Value inverseFrequencies; // `frequencies` in memory
  Value stateCos, stateSin, trigCos, trigSin, keyRow;
};

} // namespace

SmallVector<Value> DecodeEmitter::loadChunks(Value cache, int64_t width,
                                             Value key, Value kvHead,
                                             int64_t first, int64_t count) {
  SmallVector<Value> chunks;
  auto at = [&](int64_t chunk) {
    return SmallVector<Value, 4>{batch, key, kvHead,
                                 index(b, (first + chunk) * width)};
  };
  if (!widensF8()) {
    for (int64_t c = 0; c < count; ++c)
      chunks.push_back(loadAsF32(b, width, cache, at(c)));
    return chunks;
  }
  // Each vector widened but for the 2^8 its queries and outputs carry, and
  // NaN codes, for which the chunks' bytes are checked once.
  SmallVector<Value> raw;
  for (int64_t c = 0; c < count; ++c) {
    raw.push_back(vector::LoadOp::create(
        b, VectorType::get({width}, cacheElement), cache, at(c)));
    chunks.push_back(widenF8E4M3FNBits(b, raw.back()));
  }
  Value bytes = vector::LoadOp::create(
      b, VectorType::get({count * width}, cacheElement), cache, at(0));
  SmallVector<Type> types(chunks.size(), chunks.front().getType());
  return llvm::to_vector(ifThenElse(
      b, hasF8NaN(b, bytes), types,
      [&] {
        SmallVector<Value> withNaNs;
        for (auto [x, chunk] : llvm::zip(raw, chunks))
          withNaNs.push_back(restoreF8NaNs(b, x, chunk));
        return withNaNs;
      },
      [&] { return chunks; }));
}

Value DecodeEmitter::loadChunk(Value cache, int64_t width, Value key,
                               Value kvHead, int64_t chunk, bool withNaNs) {
  SmallVector<Value, 4> at{batch, key, kvHead, index(b, chunk * width)};
  if (!widensF8())
    return loadAsF32(b, width, cache, at);
  Value raw = vector::LoadOp::create(b, VectorType::get({width}, cacheElement),
                                     cache, at);
  Value widened = widenF8E4M3FNBits(b, raw);
  return withNaNs ? restoreF8NaNs(b, raw, widened) : widened;
}

void DecodeEmitter::prefetchRow(Value cache, Value row, Value kvHead) {
  // Prefetches ask for 64-byte lines.
  int64_t lineElements = 512 / cacheElement.getIntOrFloatBitWidth();
  int64_t dims = cast<MemRefType>(cache.getType()).getDimSize(3);
  for (int64_t c = 0; c < dims; c += lineElements)
    memref::PrefetchOp::create(b, cache,
                               ValueRange{batch, row, kvHead, index(b, c)},
                               /*isWrite=*/false,
                               /*localityHint=*/kPrefetchLocality,
                               /*isDataCache=*/true);
}

void DecodeEmitter::forEachCacheVector(
    Value cache, int64_t width, Value row, Value count,
    function_ref<void(Value, Value, Value, ArrayRef<Value>)> body, bool derive,
    Value prefetchCache, int64_t ahead) {
  Value c0 = index(b, 0), c1 = index(b, 1);
  int64_t dim = cast<MemRefType>(cache.getType()).getDimSize(3);
  forLoop(b, c0, count, c1, [&](Value j) {
    Value key = arith::AddIOp::create(b, row, j);
    forLoop(b, c0, index(b, sig.kvHeads), c1, [&](Value kvHead) {
      SmallVector<Value> chunks =
          loadChunks(cache, width, key, kvHead, 0, dim / width);
      if (prefetchCache)
        prefetchRow(prefetchCache, getPrefetchRow(key, ahead), kvHead);
      if (derive)
        deriveKey(j, chunks);
      Value firstHead = arith::MulIOp::create(b, kvHead, index(b, group));
      auto forPosition = [&](Value t) {
        body(j, t, getFirstRow(t, firstHead), chunks);
      };
      if (onePosition)
        forPosition(c0);
      else
        forLoop(b, c0, numPositions, c1, forPosition);
    });
  });
}

/// s[t][h][j] for the `count` keys from position `firstKey` (cache row
/// `row`); -inf where position t does not see the key (with several). The
/// G rows of a kv head sum their products' lanes together.
void DecodeEmitter::scores(Value firstKey, Value row, Value count) {
  VectorType kv = vector(keyWidth);
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  Value c0 = index(b, 0), c1 = index(b, 1);
  // Whole blocks of keys, then the keys left one at a time (all of them
  // without blocks).
  Value blocked, restRow = row, restCount = count;
  if (int64_t keys = blockKeys(); keys > 1) {
    Value step = index(b, keys);
    blocked =
        arith::MulIOp::create(b, arith::DivUIOp::create(b, count, step), step);
    forLoop(b, c0, blocked, step, [&](Value j) {
      forLoop(b, c0, index(b, sig.kvHeads), c1,
              [&](Value kvHead) { scoreBlock(row, j, kvHead); });
    });
    restRow = arith::AddIOp::create(b, row, blocked);
    restCount = arith::SubIOp::create(b, count, blocked);
  }
  forEachCacheVector(
      k, keyWidth, restRow, restCount,
      [&](Value rest, Value t, Value firstRow, ArrayRef<Value> keys) {
        Value j = blocked ? arith::AddIOp::create(b, blocked, rest) : rest;
        SmallVector<Value> rows, acc;
        for (int64_t r = 0; r < group; ++r) {
          rows.push_back(arith::AddIOp::create(b, firstRow, index(b, r)));
          acc.push_back(zeros(kv));
        }
        for (auto [c, key] : llvm::enumerate(keys))
          for (int64_t r = 0; r < group; ++r)
            acc[r] = vector::FMAOp::create(
                b,
                vector::LoadOp::create(
                    b, kv, queries,
                    ValueRange{rows[r], index(b, c * keyWidth)}),
                key, acc[r]);
        Value seen;
        if (!onePosition) {
          Value key = arith::AddIOp::create(b, firstKey, j);
          Value query = arith::AddIOp::create(b, firstPosition, t);
          seen = arith::AndIOp::create(
              b,
              arith::CmpIOp::create(b, arith::CmpIPredicate::sle, key, query),
              arith::CmpIOp::create(b, arith::CmpIPredicate::sge, key,
                                    getKeyBegin(b, sig.mask, query)));
        }
        for (auto [r, score] : llvm::enumerate(sumEach(acc))) {
          if (seen)
            score = arith::SelectOp::create(b, seen, score, negInf);
          memref::StoreOp::create(b, score, scoresT, ValueRange{rows[r], j});
        }
      },
      /*derive=*/sig.derivesKeys,
      // The values of these rows, for the accumulate pass after this one
      // (K=V layers read them here).
      prefetches() && !sig.derivesKeys ? v : Value());
}

void DecodeEmitter::scoreBlock(Value row, Value j, Value kvHead) {
  int64_t keys = blockKeys();
  VectorType kv = vector(keyWidth);
  Value firstRow = getFirstRow(
      index(b, 0), arith::MulIOp::create(b, kvHead, index(b, group)));
  SmallVector<Value> rows, cacheRows;
  for (int64_t r = 0; r < group; ++r)
    rows.push_back(arith::AddIOp::create(b, firstRow, index(b, r)));
  for (int64_t i = 0; i < keys; ++i)
    cacheRows.push_back(arith::AddIOp::create(
        b, row, arith::AddIOp::create(b, j, index(b, i))));
  // The values of these rows, for the accumulate pass after this one.
  if (prefetches())
    for (Value cacheRow : cacheRows)
      prefetchRow(v, cacheRow, kvHead);
  // Accumulator (row r, key i) is acc[r * keys + i]: a row's scores are
  // neighbours once summed.
  auto at = [&](int64_t r, int64_t i) { return r * keys + i; };
  // Chunk by chunk: each query chunk loaded once for the block's keys, each
  // key chunk once for the G rows; G * keys independent sums.
  int64_t chunks = sig.headDim / keyWidth;
  auto products = [&](bool withNaNs) {
    SmallVector<Value> acc(group * keys, zeros(kv));
    for (int64_t c = 0; c < chunks; ++c) {
      SmallVector<Value> query;
      for (Value r : rows)
        query.push_back(vector::LoadOp::create(
            b, kv, queries, ValueRange{r, index(b, c * keyWidth)}));
      for (auto [i, cacheRow] : llvm::enumerate(cacheRows)) {
        Value key = loadChunk(k, keyWidth, cacheRow, kvHead, c, withNaNs);
        for (int64_t r = 0; r < group; ++r)
          acc[at(r, i)] =
              vector::FMAOp::create(b, query[r], key, acc[at(r, i)]);
      }
    }
    return acc;
  };
  SmallVector<Value> acc;
  if (!widensF8()) {
    acc = products(/*withNaNs=*/false);
  } else {
    // The block's bytes checked once for NaN codes.
    Value nans;
    for (Value cacheRow : cacheRows) {
      Value has =
          hasF8NaN(b, vector::LoadOp::create(
                          b, VectorType::get({sig.headDim}, cacheElement), k,
                          ValueRange{batch, cacheRow, kvHead, index(b, 0)}));
      nans = nans ? arith::OrIOp::create(b, nans, has) : has;
    }
    SmallVector<Type> types(group * keys, kv);
    acc = llvm::to_vector(ifThenElse(
        b, nans, types, [&] { return products(/*withNaNs=*/true); },
        [&] { return products(/*withNaNs=*/false); }));
  }
  // More than half the lanes are used, so the sums fill them in order.
  int64_t stride = 0;
  Value sums = sumInLanes(acc, stride);
  assert(stride == 1 && "a block's sums fill their vector");
  for (auto [r, scratchRow] : llvm::enumerate(rows))
    vector::StoreOp::create(b,
                            vector::ExtractStridedSliceOp::create(
                                b, sums,
                                /*offsets=*/ArrayRef<int64_t>{at(r, 0)},
                                /*sizes=*/ArrayRef<int64_t>{keys},
                                /*strides=*/ArrayRef<int64_t>{1}),
                            scoresT, ValueRange{scratchRow, j});
}

SmallVector<Value> DecodeEmitter::sumEach(ArrayRef<Value> vectors) {
  auto type = cast<VectorType>(vectors.front().getType());
  int64_t lanes = type.getNumElements();
  if (vectors.size() == 1)
    return {sumLanes(vectors.front())};
  if (int64_t(vectors.size()) > lanes) {
    SmallVector<Value> sums;
    for (size_t first = 0; first < vectors.size(); first += lanes)
      llvm::append_range(
          sums, sumEach(vectors.slice(
                    first, std::min<size_t>(lanes, vectors.size() - first))));
    return sums;
  }
  int64_t stride = 0;
  Value sum = sumInLanes(vectors, stride);
  SmallVector<Value> sums;
  for (int64_t s = 0; s < int64_t(vectors.size()); ++s)
    sums.push_back(vector::ExtractOp::create(b, sum, s * stride));
  return sums;
}

Value DecodeEmitter::sumInLanes(ArrayRef<Value> vectors, int64_t &stride) {
  auto type = cast<VectorType>(vectors.front().getType());
  int64_t lanes = type.getNumElements();
  assert(int64_t(vectors.size()) <= lanes && "at most a vector's lanes");
  // Zeros up to a power of two, then two vectors into one, level by level:
  // each one's segments' first halves, then their second halves, added
  // (segments half as long, in the inputs' order).
  SmallVector<Value> level(vectors);
  level.resize(llvm::PowerOf2Ceil(vectors.size()), zeros(type));
  int64_t segments = 1, length = lanes;
  while (level.size() > 1) {
    SmallVector<int64_t> firstHalves, secondHalves;
    for (int64_t side : {int64_t(0), lanes})
      for (int64_t s = 0; s < segments; ++s)
        for (int64_t i = 0; i < length / 2; ++i) {
          firstHalves.push_back(side + s * length + i);
          secondHalves.push_back(side + s * length + length / 2 + i);
        }
    SmallVector<Value> next;
    for (size_t i = 0; i < level.size(); i += 2)
      next.push_back(arith::AddFOp::create(
          b, vector::ShuffleOp::create(b, level[i], level[i + 1], firstHalves),
          vector::ShuffleOp::create(b, level[i], level[i + 1], secondHalves)));
    level = std::move(next);
    segments *= 2;
    length /= 2;
  }
  // Then within each segment, in place: its second half onto its first.
  Value sum = level.front();
  for (; length > 1; length /= 2) {
    SmallVector<int64_t> mask;
    for (int64_t lane = 0; lane < lanes; ++lane)
      mask.push_back(lane % length < length / 2 ? lane + length / 2 : lane);
    sum = arith::AddFOp::create(b, sum,
                                vector::ShuffleOp::create(b, sum, sum, mask));
  }
  stride = lanes / segments;
  return sum;
}

/// Per row, vectorised along the tile: soft-cap, running max, p = e^(s -
/// max) in place, running sum, and the factor the accumulator is scaled by.
void DecodeEmitter::softmax() {
  VectorType sv = vector(kLanes);
  float inf = std::numeric_limits<float>::infinity();
  Value negInf = f32(b, -inf), zero = f32(b, 0.0);
  double cap = sig.score.getSoftcap();
  forEachRow([&](Value row) {
    Value tileMax = splat(sv, negInf);
    SmallVector<Value> chunks;
    for (int64_t j = 0; j < kTile; j += kLanes) {
      Value s =
          vector::LoadOp::create(b, sv, scoresT, ValueRange{row, index(b, j)});
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
    Value oldMax = memref::LoadOp::create(b, rowMax, row);
    Value newMax = arith::MaximumFOp::create(
        b, oldMax,
        vector::ReductionOp::create(b, vector::CombiningKind::MAXIMUMF,
                                    tileMax));
    // A row that has seen nothing keeps -inf; subtract 0 instead.
    Value safeMax = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, newMax, negInf),
        zero, newMax);
    Value scaledMax = scaleByLog2E(b, safeMax);
    Value alpha = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, oldMax, negInf),
        zero, emitMaxRatio(b, oldMax, scaledMax));
    Value negScaledMax = splat(sv, arith::NegFOp::create(b, scaledMax));
    Value sum = splat(sv, zero);
    for (int64_t c = 0; c < int64_t(chunks.size()); ++c) {
      Value p = emitSoftmaxExp(b, chunks[c], negScaledMax);
      vector::StoreOp::create(b, p, scoresT,
                              ValueRange{row, index(b, c * kLanes)});
      sum = arith::AddFOp::create(b, sum, p);
    }
    Value total = arith::AddFOp::create(
        b,
        arith::MulFOp::create(b, memref::LoadOp::create(b, rowSum, row), alpha),
        sumLanes(sum));
    memref::StoreOp::create(b, total, rowSum, row);
    memref::StoreOp::create(b, newMax, rowMax, row);
    memref::StoreOp::create(b, alpha, rowAlpha, row);
  });
}

/// OT[t][h] = alpha[t][h] * OT[t][h] + sum_j p[t][h][j] * V[row + j][h / G].
void DecodeEmitter::accumulate(Value row, Value count) {
  VectorType vv = vector(valueWidth);
  forEachRow([&](Value scratchRow) {
    Value alpha = splat(vv, memref::LoadOp::create(b, rowAlpha, scratchRow));
    for (int64_t c = 0; c < sig.vHeadDim; c += valueWidth) {
      SmallVector<Value, 2> at{scratchRow, index(b, c)};
      vector::StoreOp::create(
          b,
          arith::MulFOp::create(b, vector::LoadOp::create(b, vv, outputT, at),
                                alpha),
          outputT, at);
    }
  });
  // Without GQA a value vector serves one row, or the positions of a step
  // of several, which in registers would each load it again (a 4-token step
  // at 16K context: 1.2x the time); one position's step reads at memory
  // speed either way (64K context: bf16, f8 within noise; K=V 1.09x).
  if (group == 1)
    accumulateInScratch(row, count);
  else
    accumulateInRegisters(row, count);
}

void DecodeEmitter::accumulateInScratch(Value row, Value count) {
  VectorType vv = vector(valueWidth);
  forEachCacheVector(
      v, valueWidth, row, count,
      [&](Value j, Value, Value firstRow, ArrayRef<Value> values) {
        for (int64_t r = 0; r < group; ++r) {
          Value scratchRow = arith::AddIOp::create(b, firstRow, index(b, r));
          Value p = splat(vv, memref::LoadOp::create(
                                  b, scoresT, ValueRange{scratchRow, j}));
          for (auto [c, value] : llvm::enumerate(values)) {
            SmallVector<Value, 2> at{scratchRow, index(b, c * valueWidth)};
            vector::StoreOp::create(
                b,
                vector::FMAOp::create(
                    b, p, value, vector::LoadOp::create(b, vv, outputT, at)),
                outputT, at);
          }
        }
      },
      /*derive=*/false,
      // The next tile's keys (K=V: values), for the scores pass after this.
      prefetches() ? k : Value(), /*ahead=*/kTile);
}

void DecodeEmitter::accumulateInRegisters(Value row, Value count) {
  int64_t chunks = sig.vHeadDim / valueWidth;
  int64_t blockRows = std::min(group, kAccumulators);
  int64_t blockChunks =
      std::clamp<int64_t>(kAccumulators / blockRows, 1, chunks);
  Value c0 = index(b, 0), c1 = index(b, 1);
  Value runKeys = index(b, kAccumulateKeys);
  forLoop(b, c0, count, runKeys, [&](Value from) {
    Value to = arith::MinUIOp::create(b, count,
                                      arith::AddIOp::create(b, from, runKeys));
    forLoop(b, c0, index(b, sig.kvHeads), c1, [&](Value kvHead) {
      Value firstHead = arith::MulIOp::create(b, kvHead, index(b, group));
      auto forPosition = [&](Value t) {
        Value firstRow = getFirstRow(t, firstHead);
        for (int64_t r0 = 0; r0 < group; r0 += blockRows) {
          SmallVector<Value> rows;
          for (int64_t r = r0; r < std::min(group, r0 + blockRows); ++r)
            rows.push_back(arith::AddIOp::create(b, firstRow, index(b, r)));
          for (int64_t first = 0; first < chunks; first += blockChunks)
            // The next tile's keys (K=V: values), for the scores pass after
            // this: once per kv head.
            accumulateBlock(row, kvHead, rows, first,
                            std::min(blockChunks, chunks - first), from, to,
                            prefetches() && r0 == 0 && first == 0);
        }
      };
      if (onePosition)
        forPosition(c0);
      else
        forLoop(b, c0, numPositions, c1, forPosition);
    });
  });
}

void DecodeEmitter::accumulateBlock(Value row, Value kvHead,
                                    ArrayRef<Value> rows, int64_t first,
                                    int64_t width, Value from, Value to,
                                    bool prefetch) {
  VectorType vv = vector(valueWidth);
  auto at = [&](Value scratchRow, int64_t c) {
    return SmallVector<Value, 2>{scratchRow,
                                 index(b, (first + c) * valueWidth)};
  };
  SmallVector<Value> init;
  for (Value r : rows)
    for (int64_t c = 0; c < width; ++c)
      init.push_back(vector::LoadOp::create(b, vv, outputT, at(r, c)));
  SmallVector<Value> sums = reduceLoop(
      b, from, to, init, [&](Value j, ValueRange acc) -> SmallVector<Value> {
        Value key = arith::AddIOp::create(b, row, j);
        SmallVector<Value> values =
            loadChunks(v, valueWidth, key, kvHead, first, width);
        if (prefetch)
          prefetchRow(k, getPrefetchRow(key, kTile), kvHead);
        SmallVector<Value> next;
        for (auto [i, r] : llvm::enumerate(rows)) {
          Value p =
              splat(vv, memref::LoadOp::create(b, scoresT, ValueRange{r, j}));
          for (int64_t c = 0; c < width; ++c)
            next.push_back(
                vector::FMAOp::create(b, p, values[c], acc[i * width + c]));
        }
        return next;
      });
  for (auto [i, r] : llvm::enumerate(rows))
    for (int64_t c = 0; c < width; ++c)
      vector::StoreOp::create(b, sums[i * width + c], outputT, at(r, c));
}

void DecodeEmitter::seedAngles(Value position) {
  Type f64 = b.getF64Type();
  Value p = arith::UIToFPOp::create(
      b, f64, arith::IndexCastUIOp::create(b, b.getI64Type(), position));
  forLoop(b, index(b, 0), index(b, trigWidth), index(b, 1), [&](Value i) {
    // The same f64 angle as the prepare kernels' (positions reach 10^6).
    Value angle = arith::MulFOp::create(
        b, p, memref::LoadOp::create(b, inverseFrequencies, ValueRange{i}));
    memref::StoreOp::create(b, math::CosOp::create(b, angle), stateCos, i);
    memref::StoreOp::create(b, math::SinOp::create(b, angle), stateSin, i);
  });
}

void DecodeEmitter::stepAngles(Value count) {
  constexpr int64_t kF64Lanes = 8;
  auto wide = VectorType::get({kF64Lanes}, b.getF64Type());
  auto narrow = VectorType::get({kF64Lanes}, b.getF32Type());
  auto constant = [&](ArrayRef<double> values) {
    return arith::ConstantOp::create(b, wide,
                                     DenseElementsAttr::get(wide, values))
        .getResult();
  };
  Value factor = arith::ConstantOp::create(
      b, wide, DenseElementsAttr::get(wide, rope.attentionFactor));
  forLoop(b, index(b, 0), count, index(b, 1), [&](Value j) {
    for (int64_t c = 0; c < trigWidth; c += kF64Lanes) {
      // One position further: (cos, sin) times the pair's rotation, whose
      // cos and sin are constants.
      SmallVector<double> stepCos, stepSin;
      for (double f : ArrayRef(frequencies).slice(c, kF64Lanes)) {
        stepCos.push_back(std::cos(f));
        stepSin.push_back(std::sin(f));
      }
      Value at = index(b, c);
      Value cos = vector::LoadOp::create(b, wide, stateCos, at);
      Value sin = vector::LoadOp::create(b, wide, stateSin, at);
      auto store = [&](Value angle, Value trig) {
        vector::StoreOp::create(
            b,
            arith::TruncFOp::create(b, narrow,
                                    arith::MulFOp::create(b, angle, factor)),
            trig, ValueRange{j, at});
      };
      store(cos, trigCos);
      store(sin, trigSin);
      Value c1 = constant(stepCos), s1 = constant(stepSin);
      Value nextCos = rotateFirst(b, cos, sin, c1, s1);
      Value nextSin = rotateSecond(b, cos, sin, c1, s1);
      vector::StoreOp::create(b, nextCos, stateCos, at);
      vector::StoreOp::create(b, nextSin, stateSin, at);
    }
  });
}

void DecodeEmitter::deriveKey(Value j, SmallVectorImpl<Value> &chunks) {
  for (auto [chunk, scale] : llvm::zip(chunks, scaleChunks))
    chunk = arith::MulFOp::create(b, chunk, scale);
  if (!trigCos)
    return;
  int64_t pairs = rope.inverseFrequencies.size(), half = rope.half;
  VectorType type = vector(keyWidth);
  auto rotate = [&](Value x1, Value x2, Value cos, Value sin) {
    return std::pair<Value, Value>{rotateFirst(b, x1, x2, cos, sin),
                                   rotateSecond(b, x1, x2, cos, sin)};
  };
  if (half % keyWidth == 0) {
    // Pair i's dims i and i + half sit in the same lane of two chunks.
    int64_t partner = half / keyWidth;
    for (int64_t c = 0; c * keyWidth < pairs; ++c) {
      SmallVector<Value, 2> at{j, index(b, c * keyWidth)};
      std::tie(chunks[c], chunks[c + partner]) =
          rotate(chunks[c], chunks[c + partner],
                 vector::LoadOp::create(b, type, trigCos, at),
                 vector::LoadOp::create(b, type, trigSin, at));
    }
    return;
  }
  // Pairs straddle chunks: rotate through memory, element by element.
  for (auto [c, chunk] : llvm::enumerate(chunks))
    vector::StoreOp::create(b, chunk, keyRow, index(b, c * keyWidth));
  forLoop(b, index(b, 0), index(b, pairs), index(b, 1), [&](Value i) {
    Value other = arith::AddIOp::create(b, i, index(b, half));
    auto [y1, y2] =
        rotate(memref::LoadOp::create(b, keyRow, i),
               memref::LoadOp::create(b, keyRow, other),
               memref::LoadOp::create(b, trigCos, ValueRange{j, i}),
               memref::LoadOp::create(b, trigSin, ValueRange{j, i}));
    memref::StoreOp::create(b, y1, keyRow, i);
    memref::StoreOp::create(b, y2, keyRow, other);
  });
  for (auto [c, chunk] : llvm::enumerate(chunks))
    chunk = vector::LoadOp::create(b, type, keyRow, index(b, c * keyWidth));
}

void DecodeEmitter::visitKeys(Value lo, Value hi, Value base) {
  Value kTileSize = index(b, kTile);
  VectorType sv = vector(kLanes);
  Value negInf = splat(sv, f32(b, -std::numeric_limits<float>::infinity()));
  if (trigCos)
    ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, lo, hi),
           [&] { seedAngles(lo); });
  forLoop(b, lo, hi, kTileSize, [&](Value kt) {
    Value count =
        arith::MinSIOp::create(b, kTileSize, arith::SubIOp::create(b, hi, kt));
    Value row = arith::SubIOp::create(b, kt, base);
    if (trigCos)
      stepAngles(count);
    // Scores past `count` stay -inf: probability 0.
    forEachRow([&](Value scratchRow) {
      for (int64_t j = 0; j < kTile; j += kLanes)
        vector::StoreOp::create(b, negInf, scoresT,
                                ValueRange{scratchRow, index(b, j)});
    });
    scores(kt, row, count);
    softmax();
    accumulate(row, count);
  });
}

func::FuncOp DecodeEmitter::emit(StringRef name) {
  int64_t dyn = ShapedType::kDynamic;
  Type f32Type = b.getF32Type(), idx = b.getIndexType();
  bool hasSinks = sig.score.getSinks();
  SmallVector<Type> inputs = getAttentionInputTypes(b, sig, cacheElement);
  if (sig.derivesKeys)
    inputs.push_back(MemRefType::get({sig.headDim}, f32Type));
  inputs.append(
      {MemRefType::get({dyn, dyn, dyn, sig.heads, sig.vHeadDim}, f32Type),
       MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type),
       MemRefType::get({dyn, dyn, dyn, sig.heads}, f32Type), idx, idx, idx,
       idx});
  func = createKernelFunc(b, name, inputs);
  OpBuilder::InsertionGuard guard(b);
  Block *entry = &func.getBody().front();
  b.setInsertionPointToStart(entry);
  unsigned arg = 0;
  q = entry->getArgument(arg++);
  k = entry->getArgument(arg++);
  v = entry->getArgument(arg++);
  Value sinks = hasSinks ? entry->getArgument(arg++) : Value();
  keyScale = sig.derivesKeys ? entry->getArgument(arg++) : Value();
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
  int64_t rows = positions * sig.heads;
  queries = scratch({rows, sig.headDim});
  scoresT = scratch({rows, kTile});
  outputT = scratch({rows, sig.vHeadDim});
  rowMax = scratch({rows});
  rowSum = scratch({rows});
  rowAlpha = scratch({rows});
  if (keyScale) {
    for (int64_t c = 0; c < sig.headDim; c += keyWidth)
      scaleChunks.push_back(
          vector::LoadOp::create(b, vector(keyWidth), keyScale, index(b, c)));
    if (trigWidth > 0) {
      auto angles = MemRefType::get({trigWidth}, b.getF64Type());
      stateCos = memref::AllocaOp::create(b, angles, ValueRange(),
                                          b.getI64IntegerAttr(64));
      stateSin = memref::AllocaOp::create(b, angles, ValueRange(),
                                          b.getI64IntegerAttr(64));
      inverseFrequencies =
          getF64Table(b, func, (name + "_inv_freq").str(), frequencies);
      trigCos = scratch({kTile, trigWidth});
      trigSin = scratch({kTile, trigWidth});
      if (rope.half % keyWidth != 0)
        keyRow = scratch({sig.headDim});
    }
  }

  Value c0 = index(b, 0), c1 = index(b, 1);
  Value numQueries = memref::DimOp::create(b, q, 1);
  Value capacity = memref::DimOp::create(b, k, 1);
  Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  VectorType kv = vector(keyWidth), vv = vector(valueWidth);

  Value heads = index(b, sig.heads), tile = index(b, positions);
  Value queryTiles = arith::CeilDivUIOp::create(b, numQueries, tile);

  forLoop(b, workBegin, workEnd, c1, [&](Value w) {
    // w = (batch * ceil(T / P) + query tile) * num_splits + split.
    Value split = arith::RemUIOp::create(b, w, numSplits);
    Value rest = arith::DivUIOp::create(b, w, numSplits);
    Value firstQuery = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, rest, queryTiles), tile);
    batch = arith::DivUIOp::create(b, rest, queryTiles);
    numPositions = arith::MinUIOp::create(
        b, tile, arith::SubIOp::create(b, numQueries, firstQuery));
    numRows = arith::MulIOp::create(b, numPositions, heads);
    firstPosition = arith::AddIOp::create(b, position, firstQuery);
    Value first = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, split, c0);
    // Scratch row -> (query, head).
    auto queryHead = [&](Value row) -> std::pair<Value, Value> {
      return {arith::AddIOp::create(b, firstQuery,
                                    arith::DivUIOp::create(b, row, heads)),
              arith::RemUIOp::create(b, row, heads)};
    };

    // The query rows, and the running state (a sink counts once: in the
    // first split).
    forEachRow([&](Value row) {
      auto [query, head] = queryHead(row);
      for (int64_t c = 0; c < sig.headDim; c += keyWidth)
        vector::StoreOp::create(
            b,
            undoF8Scale(vector::LoadOp::create(
                b, kv, q, ValueRange{batch, query, head, index(b, c)})),
            queries, ValueRange{row, index(b, c)});
      for (int64_t c = 0; c < sig.vHeadDim; c += valueWidth)
        vector::StoreOp::create(b, zeros(vv), outputT,
                                ValueRange{row, index(b, c)});
      Value max = negInf, sum = f32(b, 0.0);
      if (sinks) {
        max = arith::SelectOp::create(
            b, first, memref::LoadOp::create(b, sinks, head), negInf);
        sum = arith::SelectOp::create(b, first, f32(b, 1.0), sum);
      }
      memref::StoreOp::create(b, max, rowMax, row);
      memref::StoreOp::create(b, sum, rowSum, row);
    });

    // The union of the positions' key intervals.
    Value end = arith::AddIOp::create(b, firstPosition, numPositions);
    // Plain Values, not structured bindings: the lambdas below capture them.
    Value lo, hi;
    std::tie(lo, hi) =
        getSplitKeyRange(b, getKeyBegin(b, sig.mask, firstPosition), end, split,
                         numSplits, index(b, kTile));
    // Rows run from (lo / capacity) * capacity up to the wrap, then from 0.
    Value base = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, lo, capacity), capacity);
    Value wrap = arith::AddIOp::create(b, base, capacity);
    auto visitRange = [&] {
      visitKeys(lo, arith::MinSIOp::create(b, hi, wrap), base);
      visitKeys(wrap, hi, wrap);
    };
    // One position (the usual step) sees the whole range: no position loop
    // and no mask (without this branch Gemma 3 1B's full layer decoded 20%
    // slower).
    ifThen(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, numPositions, c1),
        [&] {
          onePosition = true;
          visitRange();
          onePosition = false;
        },
        visitRange);

    forEachRow([&](Value row) {
      auto [query, head] = queryHead(row);
      SmallVector<Value, 4> at{split, batch, query, head};
      memref::StoreOp::create(b, memref::LoadOp::create(b, rowMax, row),
                              partialMax, at);
      memref::StoreOp::create(b, memref::LoadOp::create(b, rowSum, row),
                              partialSum, at);
      for (int64_t c = 0; c < sig.vHeadDim; c += valueWidth)
        vector::StoreOp::create(
            b,
            undoF8Scale(vector::LoadOp::create(b, vv, outputT,
                                               ValueRange{row, index(b, c)})),
            partialOut, ValueRange{split, batch, query, head, index(b, c)});
    });
  });
  return func;
}

int64_t hybrid::cpu::getDecodePositions(const AttentionSignature &sig,
                                        int64_t keyTile) {
  constexpr int64_t kMaxPositions = 8, kScratchBytes = 256 << 10;
  int64_t tile = (keyTile + kLanes - 1) / kLanes * kLanes;
  int64_t rowBytes = (sig.headDim + sig.vHeadDim + tile) * sizeof(float);
  return std::clamp<int64_t>(kScratchBytes / (rowBytes * sig.heads), 1,
                             kMaxPositions);
}

func::FuncOp hybrid::cpu::emitDecodeKernel(ImplicitLocOpBuilder &b,
                                           StringRef name,
                                           const AttentionSignature &sig,
                                           int64_t keyTile, Type cacheElement) {
  return DecodeEmitter(b, sig, keyTile, cacheElement).emit(name);
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
      Value scaledMax = scaleByLog2E(b, max);
      Value sum =
          reduceLoop(b, c0, numSplits, zero, [&](Value s, Value acc) -> Value {
            Value m = memref::LoadOp::create(b, partialMax, at(s));
            Value weight = arith::SelectOp::create(
                b,
                arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, m, negInf),
                zero, emitMaxRatio(b, m, scaledMax));
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
