//===- GPUKernelEmitter.h - Building blocks of the GPU kernels --*- C++ -*-===//
//
// Shared by the prepare and flash-attention emitters for NVIDIA GPUs: the
// launch geometry and small builders for gpu.func kernels.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_GPUKERNELEMITTER_H
#define HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_GPUKERNELEMITTER_H

#include "../Utils/KernelBuilders.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <algorithm>
#include <limits>

namespace hybrid::gpu {

/// Threads of every kernel's CTA but the flash kernel's: four warps.
constexpr int64_t kThreads = 128;
constexpr int64_t kThreadsPerWarp = 32;

/// Rows (query position, head pairs) per flash CTA: `warps` warps of
/// `mTiles` 16-row mma tiles.
inline int64_t getFlashRows(int64_t warps, int64_t mTiles) {
  return 16 * mTiles * warps;
}

/// Query positions per flash CTA of `rows` rows for a GQA group of `group`
/// heads: the CTA's rows are (position, head) pairs.
inline int64_t getQueryTile(int64_t group, int64_t rows) {
  return std::max<int64_t>(1, rows / group);
}

/// Query heads a decode CTA serves of its kv head's `group`: all of them
/// up to 8 (each thread keeps 8 floats of accumulator per head: at 16 heads
/// ptxas spilled ~0.8 KB a thread, at 32 over 12 KB), else the largest
/// divisor of `group` up to 8; the CTA serves the group's slices one after
/// the other, each re-reading its key range.
inline int64_t getDecodeRowsPerCta(int64_t group) {
  constexpr int64_t kMaxRows = 8;
  int64_t rows = std::min(group, kMaxRows);
  while (group % rows != 0)
    --rows;
  return rows;
}

/// Where the flash kernel keeps its tiles in its dynamic shared memory
/// (byte offsets): `stages` K tiles `keyStage` bytes apart, `stages` V tiles
/// (value slices) `valueStage` apart, then, with TMA, per stage one mbarrier
/// per tile kind that its load completes ("full") and, warp-specialized,
/// one per tile kind that the compute warps free ("empty").
struct FlashSharedLayout {
  int64_t keys = 0, keyStage = 0, values = 0, valueStage = 0, barriers = 0,
          bytes = 0;

  /// mma.sync tiles are rows padded by 8 elements (16 bytes); wgmma tiles
  /// are 128-byte swizzled and start on the swizzle's 1024-byte atom.
  static FlashSharedLayout get(int64_t keyTile, int64_t headDim,
                               int64_t valueSlice, bool swizzled, bool tma,
                               int64_t stages = 1, bool specialized = false) {
    int64_t pad = swizzled ? 0 : 8, align = swizzled ? 1024 : 16;
    auto alignUp = [](int64_t x, int64_t a) { return (x + a - 1) / a * a; };
    FlashSharedLayout l;
    l.keyStage = alignUp(keyTile * (headDim + pad) * 2, align);
    l.valueStage = alignUp(keyTile * (valueSlice + pad) * 2, align);
    l.values = stages * l.keyStage;
    l.bytes = l.values + (stages - 1) * l.valueStage +
              keyTile * (valueSlice + pad) * 2;
    if (tma) {
      l.barriers = alignUp(l.bytes, 8);
      l.bytes = l.barriers + (specialized ? 32 : 16) * stages;
    }
    return l;
  }
};

/// Keys per flash tile: `requested`, halved (down to 16) until the tiles of
/// `stages` stages fit `sharedBytes` of shared memory.
inline int64_t getFlashKeyTile(int64_t requested, int64_t headDim,
                               int64_t valueSlice, int64_t sharedBytes,
                               bool swizzled, bool tma, int64_t stages = 1,
                               bool specialized = false) {
  int64_t tile = requested;
  while (tile > 16 && FlashSharedLayout::get(tile, headDim, valueSlice,
                                             swizzled, tma, stages, specialized)
                              .bytes > sharedBytes)
    tile /= 2;
  return tile;
}

/// 2^x (f32) as ex2.approx.ftz.f32: one MUFU.EX2. math.exp2 becomes the
/// non-ftz ex2.approx.f32, which ptxas wraps in a range check and two
/// predicated multiplies to keep denormal results; softmax has no use for
/// them (below 2^-126 a probability is 0 to bf16 P and to the f32 sums).
mlir::Value exp2Flushed(mlir::ImplicitLocOpBuilder &b, mlir::Value x);

/// e^(x - y) as 2^((x - y) log2 e): one ex2 (math.exp becomes libdevice's
/// expf, about 8 instructions).
inline mlir::Value expOfDifference(mlir::ImplicitLocOpBuilder &b, mlir::Value x,
                                   mlir::Value y) {
  mlir::Value log2e = f32(b, 1.4426950408889634);
  return exp2Flushed(b, mlir::arith::MulFOp::create(
                            b, mlir::arith::SubFOp::create(b, x, y), log2e));
}

/// A running max, or 0 for a row that has seen nothing (-inf), so that
/// e^(s - max) never computes -inf - -inf.
inline mlir::Value finiteOrZero(mlir::ImplicitLocOpBuilder &b,
                                mlir::Value max) {
  mlir::Value negInf = f32(b, -std::numeric_limits<float>::infinity());
  return mlir::arith::SelectOp::create(
      b,
      mlir::arith::CmpFOp::create(b, mlir::arith::CmpFPredicate::OEQ, max,
                                  negInf),
      f32(b, 0.0), max);
}

/// The address of workgroup `memref`'s first element in the shared-memory
/// window, as an i64.
mlir::Value getSharedAddress(mlir::ImplicitLocOpBuilder &b, mlir::Value memref);

/// Inline PTX `text` with side effects: operands bound by `constraints`
/// (LLVM's inline-assembly syntax), results of `resultType` (null: none).
mlir::Value inlinePtx(mlir::ImplicitLocOpBuilder &b, mlir::Type resultType,
                      mlir::ValueRange operands, llvm::StringRef text,
                      llvm::StringRef constraints);

/// A layer's lengths on the device and the cached sequences a launch acts
/// on, two kernel arguments in this order: lengths [cache batch] i64, one
/// per cached sequence, which the runtime keeps per layer and the kernels
/// of a step read their first positions from (launches do not depend on
/// them: a CUDA graph's replays each see the lengths the one before left),
/// and sequences [launch batch] i64, the cache sequence of each batch entry
/// of the launch (a session's selection; 0, 1, ... for its whole batch), or
/// -1: padding, an entry that stores no row and advances no length (a
/// CUDA graph's batch kept full). Sequences at different lengths step in
/// one launch (continuous batching).
struct StepLengths {
  mlir::Value lengths, sequences;
  /// A batch entry's cache sequence, as an index (0 for padding, whose
  /// reads are of sequence 0 and whose results nothing keeps), and whether
  /// it is padding (i1).
  struct Entry {
    mlir::Value sequence, padding;
  };
  /// Appends the two arguments' types to `inputs`.
  static void addTypes(mlir::MLIRContext *context,
                       llvm::SmallVectorImpl<mlir::Type> &inputs);
  /// The two arguments of `func` from argument `first` on.
  static StepLengths get(mlir::gpu::GPUFuncOp func, unsigned first);
  /// Batch entry `entry`'s cache sequence.
  Entry entryOf(mlir::ImplicitLocOpBuilder &b, mlir::Value entry) const;
  /// The first position of a step of `entry` (its sequence's length; 0 for
  /// padding), as an index.
  mlir::Value positionOf(mlir::ImplicitLocOpBuilder &b,
                         const Entry &entry) const;
  /// Adds `count` (i64) to the length of every batch entry's sequence but
  /// padding's; for one thread of the launch, after every reader of the
  /// lengths.
  void advance(mlir::ImplicitLocOpBuilder &b, mlir::Value count) const;
};

/// A layer's key scale: [head_dim] f32 multiplying its keys per dim before
/// RoPE (a K=V layer's key-norm weight, whose one stored tensor is the
/// values; ones for other layers), which the runtime keeps per layer.
inline mlir::MemRefType getKeyScaleType(mlir::MLIRContext *context) {
  return mlir::MemRefType::get({mlir::ShapedType::kDynamic},
                               mlir::Float32Type::get(context));
}

/// A shared-memory (workgroup) buffer of `shape` and `element`s.
inline mlir::MemRefType getWorkgroupType(llvm::ArrayRef<int64_t> shape,
                                         mlir::Type element) {
  return mlir::MemRefType::get(
      shape, element, mlir::MemRefLayoutAttrInterface(),
      mlir::gpu::AddressSpaceAttr::get(element.getContext(),
                                       mlir::gpu::AddressSpace::Workgroup));
}

/// Adds a shared-memory buffer of `type` to `func`, aligned to 16 bytes
/// (for 16-byte vector loads and stores), and returns it.
mlir::Value addAlignedWorkgroupBuffer(mlir::gpu::GPUFuncOp func,
                                      mlir::MemRefType type);

/// An empty `gpu.func` kernel of `threads` threads with `inputs` and shared
/// memory `workgroup`; the builder is left inside it.
mlir::gpu::GPUFuncOp createKernel(mlir::ImplicitLocOpBuilder &b,
                                  llvm::StringRef name, mlir::TypeRange inputs,
                                  mlir::TypeRange workgroup = {},
                                  int64_t threads = kThreads);

/// Emits `@name_prepare_q` (forQueries) or `@name_prepare_k`: f32 rows to
/// rotated (and, for queries, scaled) bf16 rows; arguments: in, out,
/// lengths and sequences (StepLengths: each row's first position), and for
/// keys the key scale
/// (getKeyScaleType). With `fromBF16`,
/// `@name_prepare_q_bf16` or `@name_prepare_k_bf16`, which read bf16 rows
/// (bf16 operands at the runtime's API, without widening them first).
mlir::gpu::GPUFuncOp emitPrepareKernel(mlir::ImplicitLocOpBuilder &b,
                                       llvm::StringRef name,
                                       const AttentionSignature &sig,
                                       bool forQueries, bool fromBF16 = false);

/// Emits `@name_prepare_step` (f32 rows in) or, with `fromBF16`,
/// `@name_prepare_step_bf16`: a session step's queries prepared as
/// `@name_prepare_q` does (those the step has: an append passes none), its
/// keys prepared as `@name_prepare_k` does and its values converted, both
/// stored straight into the cache rows of their positions from their
/// sequence's length on, as `hybrid_store_cache_rows` stores them.
/// Arguments: queries, prepared queries, new keys, new values, key cache,
/// value cache (bf16 [cache batch, rows + mirror, Hkv, D]), lengths and
/// sequences (StepLengths), key scale, ring rows; one CTA per (batch entry,
/// token). K=V layers' store the values only (their key cache
/// argument is the value cache).
mlir::gpu::GPUFuncOp emitPrepareStepKernel(mlir::ImplicitLocOpBuilder &b,
                                           llvm::StringRef name,
                                           const AttentionSignature &sig,
                                           bool fromBF16);

/// Emits `@name_derive_kv` for K=V layers, whose caches keep values only:
/// the keys of a range of positions derived from a value cache (as
/// `@name_prepare_k` prepares keys) and its values gathered, both in
/// position order, for a flash kernel over the range. Arguments: value
/// cache (bf16 [B, rows + mirror, Hkv, D]), keys, values (bf16 [B, n, Hkv,
/// D]), key scale, first position, ring rows; one CTA per (batch, position).
mlir::gpu::GPUFuncOp emitDeriveKeysKernel(mlir::ImplicitLocOpBuilder &b,
                                          llvm::StringRef name,
                                          const AttentionSignature &sig);
/// Emits `@name`, an elementwise conversion of a flat `from` buffer into a
/// `to` buffer of the same length (grid-stride loop over any grid): the
/// runtime's bf16 tensors pass through it on the way in and out.
mlir::gpu::GPUFuncOp emitElementConversionKernel(mlir::ImplicitLocOpBuilder &b,
                                                 llvm::StringRef name,
                                                 mlir::Type from,
                                                 mlir::Type to);

/// The conversion kernels' names: bf16 to f32 and f32 to bf16.
constexpr const char *kBF16ToF32Kernel = "hybrid_convert_bf16_to_f32";
constexpr const char *kF32ToBF16Kernel = "hybrid_convert_f32_to_bf16";

/// Emits `@name`, which stores a step's prepared keys and values
/// ([B, T, heads x dim] bf16) into the cache rows of their positions from
/// their sequence's length on (CacheKernels.cpp): (new keys, keys, new
/// values, values, lengths, sequences, ring rows), one CTA per (token,
/// batch entry).
mlir::gpu::GPUFuncOp emitStoreRowsKernel(mlir::ImplicitLocOpBuilder &b,
                                         llvm::StringRef name);

/// Emits `@name`, which adds its i64 count to the length of each sequence a
/// launch steps (arguments: lengths, sequences, count; one thread).
mlir::gpu::GPUFuncOp emitAdvanceLengthKernel(mlir::ImplicitLocOpBuilder &b,
                                             llvm::StringRef name);

/// The cache rows of a step's token (CacheKernels.cpp): `row` (its
/// position % ring) and, while `mirrored`, `mirrorRow` (ring + row, one of
/// the mirror rows past the ring).
struct CacheRows {
  mlir::Value row, mirrored, mirrorRow;
  /// Stores `x` at `cache`[batch, row, rest...], and at the mirror row.
  void store(mlir::ImplicitLocOpBuilder &b, mlir::Value x, mlir::Value cache,
             mlir::Value batch, mlir::ValueRange rest) const;
};

/// Calls `body` with the cache rows of token `token` of a step of `count`
/// tokens from position `first` in `cache` ([B, ring + mirror, ...]), if
/// the ring keeps it (the last `ring` tokens; a later token owns an older
/// one's row) and its batch entry is not padding (StepLengths::Entry).
void ifKeptInCache(mlir::ImplicitLocOpBuilder &b, mlir::Value token,
                   mlir::Value count, mlir::Value first, mlir::Value ring,
                   mlir::Value cache, mlir::Value padding,
                   llvm::function_ref<void(const CacheRows &)> body);

/// The cache kernels' names.
constexpr const char *kStoreRowsKernel = "hybrid_store_cache_rows";
constexpr const char *kAdvanceLengthKernel = "hybrid_advance_length";

/// Emits `@name_prepare_v`: f32 value rows to bf16.
mlir::gpu::GPUFuncOp emitConvertKernel(mlir::ImplicitLocOpBuilder &b,
                                       llvm::StringRef name,
                                       const AttentionSignature &sig);

/// How the flash kernel is built.
struct FlashKernelOptions {
  int64_t keyTile = 64;
  /// Value dims per CTA (#hybrid.gpu_kernel's getValueSliceOf): grid y runs
  /// over heads x slices.
  int64_t valueSlice = 64;
  /// 16-row mma tiles per warp (every K and V fragment it loads feeds all
  /// of them; wgmma takes 1).
  int64_t mTiles = 1;
  /// Warps per CTA, 4 or 8 (wgmma: one or two warpgroups); all of them
  /// share each K and V tile.
  int64_t warps = 4;
  /// The tensor-core instructions (#hybrid.gpu_kernel's tensor_cores).
  TensorCores tensorCores = TensorCores::MmaSync;
  /// K and V tiles by TMA (wgmma only): the kernel takes their tensor maps
  /// as two trailing pointer arguments.
  bool tma = false;
  /// Buffers per tile kind, 1 to 4 (more than 1: TMA only, the K and V
  /// tiles of key tiles j + 1 .. j + stages - 1 load while tile j is
  /// computed).
  int64_t stages = 1;
  /// Lazy rescaling: the running max moves (and O and l are rescaled) only
  /// when a tile's scores pass it by more than this many powers of two;
  /// probabilities stay at most 2^threshold (FlashAttention-4's trick).
  double rescaleThreshold = 8;
  /// wgmma with TMA and stages >= 2: each warpgroup issues S(j + 1) =
  /// Q K^T and O += P(j) V without waiting and computes tile j + 1's
  /// softmax while P V runs (FlashAttention-3's intra-warpgroup overlap).
  bool overlapSoftmax = false;
  /// TMA with stages >= 2: one more warp (the producer) issues every K and
  /// V load, waiting for the compute warps to free each stage (per-stage
  /// "empty" mbarriers they arrive on) instead of the CTA barrier per tile.
  bool warpSpecialized = false;
  /// With 8 warps, the overlap and warp specialization: the two
  /// warpgroups take turns issuing each tile's products (named barriers 1
  /// and 2), so that one's softmax runs under the other's wgmmas.
  bool pingPong = false;
  /// O written as bf16 rows (the `_out_bf16` twin): a bf16 output costs
  /// 2 bytes of device traffic per element instead of 10 (f32 written,
  /// read and narrowed).
  bool bf16Output = false;
  /// Split-K (the `_split` kernel): grid y is (split, kv head, value slice)
  /// and each CTA covers its split of the query tile's key tiles, writing
  /// unnormalized (O, max, sum) partials for the decode combine kernel, so
  /// that a launch of few query tiles still fills the GPU.
  bool splitKeys = false;
};

/// Emits the tensor-core flash-attention kernel `@name`.
mlir::gpu::GPUFuncOp emitFlashKernel(mlir::ImplicitLocOpBuilder &b,
                                     llvm::StringRef name,
                                     const AttentionSignature &sig,
                                     const FlashKernelOptions &options);

/// Emits `@name`, the decode kernel: the queries of a step over a KV cache,
/// split over the key range. Each split writes partial results; the last
/// split of a (batch, query position, kv head) to finish merges them into
/// the output rows (f32, or bf16 with `bf16Output`), and the last of those
/// adds the step's positions to its sequences' lengths. Arguments: queries,
/// keys, values, [sinks], [key scale], partial out, max, sum, out,
/// counters (i32, one per grid y x z plus one, zero before the launch and
/// after it), lengths and sequences (StepLengths), ring rows.
mlir::gpu::GPUFuncOp emitDecodeKernel(mlir::ImplicitLocOpBuilder &b,
                                      llvm::StringRef name,
                                      const AttentionSignature &sig,
                                      bool bf16Output);

/// Emits `@name`, the merge of the split-K flash kernel's partials into f32
/// rows or, with `bf16Output`, bf16 rows; one CTA per ((batch, query
/// position), kv head). Arguments: partial out, max, sum, out, lengths,
/// sequences, count; it adds count to the sequences' lengths (after the
/// flash kernel, the last to read them; prompts pass 0).
mlir::gpu::GPUFuncOp emitCombineKernel(mlir::ImplicitLocOpBuilder &b,
                                       llvm::StringRef name,
                                       const AttentionSignature &sig,
                                       bool bf16Output);

/// `x` reduced (max, else sum) over each aligned group of `lanes` lanes (a
/// power of 2 up to the warp) by xor shuffles; each of them gets its
/// group's result.
mlir::Value reduceLanes(mlir::ImplicitLocOpBuilder &b, mlir::Value x, bool max,
                        int32_t lanes);

/// reduceLanes over the whole warp.
inline mlir::Value reduceWarp(mlir::ImplicitLocOpBuilder &b, mlir::Value x,
                              bool max) {
  return reduceLanes(b, x, max, kThreadsPerWarp);
}

/// An acquire-release fence at GPU scope (fence.acq_rel.gpu): this
/// thread's global writes before it are seen by any thread that sees a
/// later atomic of it; its reads after it see what the writers of atomics
/// it saw wrote before theirs.
void fenceDevice(mlir::ImplicitLocOpBuilder &b);

/// A split-K launch's partial results (f32): unnormalised out [S, B, T,
/// Hq, Dv], max and sum [S, B, T, Hq].
struct SplitPartials {
  mlir::Value out, max, sum;
};

/// The merge of split partials into output rows by one CTA per (batch,
/// query position, kv head) (SplitMerge.cpp), and the shared memory it
/// uses.
struct SplitMerge {
  /// Adds the merge's shared memory to `func`'s workgroup attributions.
  static SplitMerge allocate(mlir::gpu::GPUFuncOp func,
                             const AttentionSignature &sig);
  /// Merges the `numSplits` splits' partials of `item` (batch, position
  /// and kv head: (b T + t) Hkv + kv head, of `items` = B T Hkv) into its
  /// query heads' rows of `out` ([B, T, Hq, Dv] f32 or bf16). Every thread
  /// of the CTA calls it; it synchronises the CTA.
  void emit(mlir::ImplicitLocOpBuilder &b, const SplitPartials &partials,
            mlir::Value numSplits, mlir::Value item, mlir::Value items,
            mlir::Value out, mlir::Value tid) const;

  const AttentionSignature *sig = nullptr;
  /// [2, G]: per head, the max over splits and 1 / the weighted sum.
  mlir::Value stats;
  /// [subsets, G x Dv]: the split subsets' sums (null with one subset).
  mlir::Value sums;
};

} // namespace hybrid::gpu

#endif // HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_GPUKERNELEMITTER_H
