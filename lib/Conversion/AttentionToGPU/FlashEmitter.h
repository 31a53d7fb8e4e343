//===- FlashEmitter.h - The tensor-core flash-attention emitter -*- C++ -*-===//
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
// (wgmma: each four warps multiply as one 64-row warpgroup, same layouts.
// Warp-specialized, one more warp holds no rows: it issues the TMA loads.)
// The key tiles visited are the mask's range for the tile's first and last
// query; only tiles not fully visible to every row evaluate the mask.
//
// A split-K kernel (`_split`) covers one split of each query tile's key
// tiles per CTA and writes the unnormalized O, the running max and the sum
// for the decode combine kernel to merge.
//
// FlashKernel.cpp sets the kernel up (operands, rows, key range) and writes
// O / l (or the partials); FlashTile.cpp has one tile's products and online
// softmax; FlashPipeline.cpp stages K and V in shared memory and loops over the
// tiles.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_FLASHEMITTER_H
#define HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_FLASHEMITTER_H

#include "GPUKernelEmitter.h"

#include <array>
#include <cmath>

namespace hybrid::gpu {

/// Shared-memory rows are padded by this many elements (16 bytes).
constexpr int64_t kPad = 8;

/// One thread's part of a 16x8 f32 accumulator: rows g (c0, c1) and g + 8
/// (c2, c3), columns 2t and 2t + 1.
using Accumulator = std::array<mlir::Value, 4>;

/// Builds one flash kernel (emitFlashKernel's work): the setup members
/// are filled by emit(), then read by the per-tile and loop members.
/// Warp-specialized kernels' producer warps. With 8 compute warps, a
/// warpgroup, so that it can hand its registers to the compute warps
/// (setmaxnreg is per warpgroup): ptxas holds a CTA of 288 threads, like
/// one of 384, to 168 registers, and two overlapped warpgroups need more.
/// Only its first warp loads.
inline int64_t getProducerWarps(const FlashKernelOptions &options) {
  if (!options.warpSpecialized)
    return 0;
  return options.warps == 8 ? 4 : 1;
}

/// Registers per thread after setmaxnreg, with a producer warpgroup: 8
/// compute warps at 232 and 4 producer warps at 40 fill the 64K register
/// file (with 2048 to spare).
constexpr int32_t kProducerRegisters = 40, kConsumerRegisters = 232;

class FlashEmitter {
public:
  FlashEmitter(mlir::ImplicitLocOpBuilder &b, const AttentionSignature &sig,
               const FlashKernelOptions &options)
      : b(b), sig(sig), kTile(options.keyTile), vDim(options.valueSlice),
        mTiles(options.mTiles), warps(options.warps),
        producerWarps(getProducerWarps(options)),
        threads((warps + producerWarps) * kThreadsPerWarp),
        ctaRows(getFlashRows(options.warps, options.mTiles)),
        wgmma(options.tensorCores == TensorCores::Wgmma), tma(options.tma),
        stages(options.stages), overlap(options.overlapSoftmax),
        specialized(options.warpSpecialized), pingPong(options.pingPong),
        bf16Output(options.bf16Output), splitKeys(options.splitKeys),
        rescaleSlack(options.rescaleThreshold * std::log(2.0)) {}

  mlir::gpu::GPUFuncOp emit(llvm::StringRef name);

private:
  /// A stage's K and V tiles and, with TMA, the mbarriers their loads
  /// complete and (warp-specialized) those the compute warps free them on.
  struct Buffers {
    mlir::Value keys, values, keyBarrier, valueBarrier, keyEmpty, valueEmpty;
  };
  /// S = Q K^T per mma tile, per 8-key block.
  using Scores = llvm::SmallVector<llvm::SmallVector<Accumulator>>;
  /// A operands per mma tile, per 16-key (or 16-dim) step.
  using Fragments =
      llvm::SmallVector<llvm::SmallVector<std::array<mlir::Value, 4>>>;

  /// Stage `s`'s buffers (an index, constant or not).
  Buffers bufferAt(mlir::Value s);
  /// Tile j's stage j % S and the parity (j / S) % 2 of its barriers'
  /// phase (i32).
  std::pair<Buffers, mlir::Value> stageOfTile(mlir::Value j);
  /// TMA: the K (and V) loads of key tile kt into `buffers`.
  void loadTiles(mlir::Value kt, const Buffers &buffers, bool keys,
                 bool values);

  /// Warp-specialized: the producer warp's loop, loading every key tile's
  /// K and V into its stage once the compute warps have freed it.
  void emitProducerLoop();
  /// Warp-specialized: every compute thread arrives on `empty`, freeing
  /// the stage's tile for the producer (other kernels: nothing).
  void releaseStage(mlir::Value empty);

  /// The loop over the key tiles: its final (m, l, O) state.
  llvm::SmallVector<mlir::Value> emitTileLoop(llvm::ArrayRef<mlir::Value> init);
  /// The same with softmax overlapping the tensor cores (wgmma, TMA,
  /// stages >= 2).
  llvm::SmallVector<mlir::Value>
  emitOverlappedLoop(llvm::ArrayRef<mlir::Value> init);

  /// Q fragments of mma tile m, head dims kd .. kd + 15: kept in registers
  /// or (past head dim 256) loaded.
  std::array<mlir::Value, 4> getQueryFrag(int64_t m, int64_t kd);
  std::array<mlir::Value, 4> loadQueryFrag(int64_t m, int64_t kd);
  /// S = Q K^T by mma.sync.
  Scores multiplyKeys(mlir::Value keys);
  /// wgmma's S = Q K^T on `keys`, waited for or (without `wait`) in flight:
  /// its accumulators, and in `queries` the Q registers it reads.
  llvm::SmallVector<mlir::Value>
  multiplyKeysByWarpgroup(mlir::Value keys, bool wait,
                          llvm::SmallVector<mlir::Value> *queries = nullptr);
  Scores toScores(llvm::ArrayRef<mlir::Value> d);
  /// Soft-cap, then -inf for hidden keys on tiles not wholly visible.
  void capAndMask(Scores &scores, mlir::Value kt, mlir::Value nextKt);
  /// The rows' tile maxima; whether a row of the warp passes its running
  /// max by more than the slack (then the warp moves its maxima).
  mlir::Value getTileMaxima(const Scores &scores, mlir::ValueRange state,
                            llvm::SmallVector<mlir::Value> &tileMax);
  /// `state` (m, l and, unless `alpha` is given, O) with the maxima moved
  /// when `grows`: l and O times alpha = e^(m - m'). With `alpha`, O is
  /// left to rescaleOutputs, which gets the factors (1 where nothing moved).
  llvm::SmallVector<mlir::Value>
  moveMaxima(mlir::ValueRange state, llvm::ArrayRef<mlir::Value> tileMax,
             mlir::Value grows,
             llvm::SmallVector<mlir::Value> *alpha = nullptr);
  /// The thread's row `r` of O (`outputs`) times `factor`.
  void scaleRowOutputs(llvm::MutableArrayRef<mlir::Value> outputs, int64_t r,
                       mlir::Value factor);
  /// O times alpha, row by row.
  void rescaleOutputs(llvm::MutableArrayRef<mlir::Value> outputs,
                      llvm::ArrayRef<mlir::Value> alpha);
  /// One tile's online softmax (key tile `kt`): soft-cap and mask, the
  /// maxima moved where `grows` (as moveMaxima, with or without `alpha`),
  /// P in place of S. Returns the updated state.
  llvm::SmallVector<mlir::Value>
  updateSoftmax(Scores &scores, mlir::Value kt, mlir::ValueRange state,
                mlir::Value &grows,
                llvm::SmallVector<mlir::Value> *alpha = nullptr);
  /// P = e^(S - m) in place; adds each row's sum to l.
  void exponentiate(Scores &scores, llvm::ArrayRef<mlir::Value> maxima,
                    llvm::MutableArrayRef<mlir::Value> sums);
  Fragments packProbabilities(const Scores &scores);
  /// wgmma's O += P V: B descriptors of the value tile per 16 keys.
  llvm::SmallVector<mlir::Value> getValueSteps(mlir::Value values);
  /// O += P V by mma.sync.
  void multiplyValues(llvm::MutableArrayRef<mlir::Value> outputs,
                      const Fragments &probs, mlir::Value values);

  /// The row of k and v holding key position `key` (firstRow + key, less
  /// ringRows past the ring's end): a tile's first row.
  mlir::Value getKeyRow(mlir::Value key);

  /// Issues the cp.async copies of the `dim`-wide rows of keys kt .. kt +
  /// kTile - 1 (getKeyRow's) of `src` (kv head `kvHead`) into `dst` and
  /// commits them as one group.
  /// Returns the group's token.
  /// Source columns start at `colOffset` (null: 0), for value-dim slices.
  mlir::Value stageTile(mlir::Value src, mlir::Value dst, int64_t dim,
                        mlir::Value kt, mlir::Value colOffset = mlir::Value());
  void waitGroups(int32_t pending);
  /// TMA: thread 0 issues the loads of key (or value) tile kt into `tile`,
  /// 64 columns per load, completing bytes on `barrier`.
  void issueTileLoads(bool keys, mlir::Value kt, mlir::Value colOffset,
                      mlir::Value tile, mlir::Value barrier);

  /// Two bf16 values packed in the i32 an mma operand register holds.
  mlir::Value pack(mlir::Value lo, mlir::Value hi);
  /// The i32 holding `memref[indices]` and the next element.
  mlir::Value loadPair(mlir::Value memref, mlir::ValueRange indices);
  /// ldmatrix of `tiles` 8x8 bf16 tiles of shared `memref`, this lane
  /// addressing [row, col]: one i32 operand register per tile.
  llvm::SmallVector<mlir::Value> loadMatrix(mlir::Value memref, mlir::Value row,
                                            mlir::Value col, int64_t tiles,
                                            bool transpose);
  Accumulator mma(llvm::ArrayRef<mlir::Value> a,
                  llvm::ArrayRef<mlir::Value> bFrag, const Accumulator &c);

  /// Max (or sum) over the 4 threads of a row.
  mlir::Value quadReduce(mlir::Value x, bool max);

  mlir::ImplicitLocOpBuilder &b;
  const AttentionSignature &sig;
  int64_t kTile;
  int64_t vDim;          // value dims of the CTA's slice
  int64_t mTiles;        // 16-row mma tiles per warp
  int64_t warps;         // compute warps (with the rows)
  int64_t producerWarps; // warp-specialized: 1, or a warpgroup (see below)
  int64_t threads;       // of the CTA: the compute and producer warps
  int64_t ctaRows;       // (position, head) pairs of the CTA
  bool wgmma;            // warpgroup MMA on swizzled tiles, else mma.sync
  bool tma;              // K and V tiles by TMA, else cp.async
  int64_t stages;        // buffers per tile kind (S > 1: TMA loads S - 1 ahead)
  bool overlap;          // softmax overlaps the wgmma groups
  bool specialized;      // a producer warp issues the TMA loads
  bool pingPong;         // the warpgroups take turns issuing their products
  bool bf16Output;       // O written as bf16
  bool splitKeys;        // partials per split of the key range (`_split`)
  double rescaleSlack;   // how far scores may pass the running max unmoved

  // Set up by emit: the shape, shared memory, this thread's rows and the
  // CTA's key range.
  int64_t dim, threadRows, kBlocks, vBlocks;
  bool queriesInRegisters;
  mlir::Type keysType, valuesType;
  FlashSharedLayout layout;
  mlir::Value shared, valueOffsetOrNull, kTileSize;
  llvm::SmallVector<Buffers> stageBuffers; // every stage at constant offsets
  llvm::SmallVector<mlir::Value> rowBegin, rowEnd, rowPosition, rowHead;
  Fragments queryFrags;
  mlir::Value lo, hi, lastBegin, firstEnd;

  mlir::Value q, k, v, sinks, out;
  mlir::Value partialMax, partialSum; // split-K: out holds the partial O
  mlir::Value batch, kvHead, numKeys, lastKey, firstRow, ringRows;
  mlir::Value lane, g, t;
  mlir::Value firstGroup; // the first key tile's cp.async group
  // TMA: tensor maps of K and V.
  mlir::Value keyMap, valueMap, isIssuer;
};

} // namespace hybrid::gpu

#endif // HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_FLASHEMITTER_H
