//===- KernelEmitter.h - Building blocks of the CPU kernels -----*- C++ -*-===//
//
// Shared by the prepare, flash-attention and decode emitters for CPUs: tile
// sizes, kernel entry points and the memref types of their operands.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_CONVERSION_ATTENTIONTOCPU_KERNELEMITTER_H
#define HYBRID_LIB_CONVERSION_ATTENTIONTOCPU_KERNELEMITTER_H

#include "../Utils/KernelBuilders.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace hybrid::cpu {

/// Lanes of the vector registers the kernels are written for (AVX-512 f32;
/// LLVM splits them in two on AVX2 machines).
constexpr int64_t kLanes = 16;

/// Rows (query positions times the GQA group) per work item at most unless a
/// q-tile is given: each key and value a work item loads serves 256 rows
/// (at 16K positions 1.7x faster than 32 rows, whose keys stop fitting the
/// caches); the runtime takes fewer positions when a prompt is short.
constexpr int64_t kDefaultRows = 256;

struct TileSizes {
  int64_t queries = 32; // positions per work item
  int64_t keys = 64;    // keys per tile
};

/// Emits `@name_prepare_q` (forQueries) or `@name_prepare_k`.
mlir::func::FuncOp emitPrepareKernel(mlir::ImplicitLocOpBuilder &b,
                                     llvm::StringRef name,
                                     const AttentionSignature &sig,
                                     bool forQueries);

/// Emits the flash-attention kernel `@name` (prefill: all queries of a
/// prompt over its keys), reading keys and values of `kvElement` (f32, or
/// bf16 or f8E4M3FN: a session's cache).
mlir::func::FuncOp emitFlashKernel(mlir::ImplicitLocOpBuilder &b,
                                   llvm::StringRef name,
                                   const AttentionSignature &sig,
                                   const TileSizes &tiles,
                                   mlir::Type kvElement);

/// Query positions per decode work item at most: the tokens of a step share
/// one read of the cache; up to 8, and as many as keep the item's scratch (a
/// row of D + Dv + k-tile floats per position and query head) in 256 KiB.
int64_t getDecodePositions(const AttentionSignature &sig, int64_t keyTile);

/// Emits the decode kernel `@name`: up to getDecodePositions() query
/// positions of T per work item, over a KV cache of `cacheElement` (f32,
/// bf16 or f8E4M3FN), with split key ranges (see DecodeKernel.cpp).
mlir::func::FuncOp emitDecodeKernel(mlir::ImplicitLocOpBuilder &b,
                                    llvm::StringRef name,
                                    const AttentionSignature &sig,
                                    int64_t keyTile, mlir::Type cacheElement);

/// Emits the log-sum-exp merge of a decode kernel's split partial results.
mlir::func::FuncOp emitCombineKernel(mlir::ImplicitLocOpBuilder &b,
                                     llvm::StringRef name,
                                     const AttentionSignature &sig);

//===----------------------------------------------------------------------===//
// Small builders
//===----------------------------------------------------------------------===//

/// q, k and v (f32 rows; k and v of `kvElement`) and (with sinks) the sink
/// logits: the inputs every attention kernel starts with.
llvm::SmallVector<mlir::Type>
getAttentionInputTypes(mlir::ImplicitLocOpBuilder &b,
                       const AttentionSignature &sig, mlir::Type kvElement);

/// `width` elements of `memref` at `indices` as f32 (widened from bf16 or
/// f8E4M3FN).
mlir::Value loadAsF32(mlir::ImplicitLocOpBuilder &b, int64_t width,
                      mlir::Value memref, mlir::ValueRange indices);

/// A vector of f8E4M3FN as f32 (exact; NaN codes stay NaN).
mlir::Value widenF8E4M3FN(mlir::ImplicitLocOpBuilder &b, mlir::Value x);
/// A vector of f8E4M3FN as f32 times 2^-8, but NaN codes, which read as
/// +-1.875: the cheap part of widenF8E4M3FN (the decode kernel scales its
/// queries and outputs by 2^8 instead, and checks rows for NaNs).
mlir::Value widenF8E4M3FNBits(mlir::ImplicitLocOpBuilder &b, mlir::Value x);
/// `widened` (of f8E4M3FN x) with NaN where x holds a NaN code.
mlir::Value restoreF8NaNs(mlir::ImplicitLocOpBuilder &b, mlir::Value x,
                          mlir::Value widened);
/// Whether an element of `x` (f8E4M3FN) is a NaN code: an i1.
mlir::Value hasF8NaN(mlir::ImplicitLocOpBuilder &b, mlir::Value x);

/// The softmax's exponentials, e^(s - max) as 2^(s log2(e) - max log2(e)):
/// one FMA and a math.exp2, which hybrid-approximate-math makes cheaper than
/// math.exp. Every factor between two maxima is built from the same rounded
/// products `max log2(e)`, so the tiles and splits they rescale agree
/// exactly. All take f32 scalars or vectors.
///
/// x log2(e), rounded once.
mlir::Value scaleByLog2E(mlir::ImplicitLocOpBuilder &b, mlir::Value x);
/// e^(s - max) = 2^(fma(s, log2(e), -scaledMax)), scaledMax =
/// scaleByLog2E(max) (negated by the caller, once for many scores).
mlir::Value emitSoftmaxExp(mlir::ImplicitLocOpBuilder &b, mlir::Value s,
                           mlir::Value negScaledMax);
/// e^(m - max) = 2^(scaleByLog2E(m) - scaledMax), for a max `m` that scaled
/// earlier probabilities (a rescale factor, a split's weight).
mlir::Value emitMaxRatio(mlir::ImplicitLocOpBuilder &b, mlir::Value m,
                         mlir::Value scaledMax);

/// A function with the C interface the runtime calls.
mlir::func::FuncOp createKernelFunc(mlir::ImplicitLocOpBuilder &b,
                                    llvm::StringRef name,
                                    mlir::TypeRange inputs);

} // namespace hybrid::cpu

#endif // HYBRID_LIB_CONVERSION_ATTENTIONTOCPU_KERNELEMITTER_H
