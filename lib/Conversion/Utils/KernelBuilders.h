//===- KernelBuilders.h - What every kernel emitter shares ------*- C++ -*-===//
//
// The CPU and GPU emitters compute the same attention: one signature per
// layer kind, the mask's visible key range per query, and small builders for
// constants and structured control flow.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_CONVERSION_UTILS_KERNELBUILDERS_H
#define HYBRID_LIB_CONVERSION_UTILS_KERNELBUILDERS_H

#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace hybrid {

/// What one kernel computes; uniqued per layer signature upstream.
struct AttentionSignature {
  int64_t heads = 0, kvHeads = 0, headDim = 0, vHeadDim = 0;
  MaskAttr mask;
  PositionalAttr positional;
  ScoreAttr score;
  /// The kernel's caches keep values only (K=V, `hybrid.k_eq_v` on the
  /// kernel function): its step kernels derive the keys from them.
  bool derivesKeys = false;
  /// The values are a view of the keys' first vHeadDim dims (latent caches,
  /// `hybrid.latent` on the kernel function): the kernels take them as a
  /// strided operand over the key rows.
  bool valuesInKeys = false;

  static AttentionSignature get(AttentionOp op);
  int64_t groupSize() const { return heads / kvHeads; }
  bool rotates() const { return positional.getKind() != PositionalKind::none; }
};

/// `memref<?x?x{heads}x{dim}x{element}>`: [batch, seq, heads, dim] rows.
mlir::MemRefType getRowsType(mlir::Type element, int64_t heads, int64_t dim);

/// The values operand of `sig`'s kernels over `element` rows: its own rows
/// (getRowsType), or for a latent layer the first vHeadDim dims of the key
/// rows, `memref<?x?x{kvHeads}x{vHeadDim}, strided<[?, kvHeads * headDim,
/// headDim, 1]>>`.
mlir::MemRefType getValuesType(mlir::Type element,
                               const AttentionSignature &sig);

/// The functions holding exactly one hybrid.attention
/// (hybrid-extract-attention's output), on f32 rows, the element type every
/// kernel takes; an error names a function with more, or `notF32` an
/// attention on other types.
mlir::FailureOr<llvm::SmallVector<std::pair<mlir::Operation *, AttentionOp>>>
getAttentionKernels(mlir::ModuleOp module, llvm::StringRef notF32);

inline mlir::Value index(mlir::ImplicitLocOpBuilder &b, int64_t value) {
  return mlir::arith::ConstantIndexOp::create(b, value);
}

inline mlir::Value f32(mlir::ImplicitLocOpBuilder &b, double value) {
  return mlir::arith::ConstantOp::create(b, b.getF32FloatAttr(value));
}

/// `!x` for an i1 `x`.
inline mlir::Value logicalNot(mlir::ImplicitLocOpBuilder &b, mlir::Value x) {
  return mlir::arith::XOrIOp::create(
      b, x, mlir::arith::ConstantOp::create(b, b.getBoolAttr(true)));
}

/// `scf.for iv = lb to ub step step` without results; `body` builds inside.
void forLoop(mlir::ImplicitLocOpBuilder &b, mlir::Value lb, mlir::Value ub,
             mlir::Value step, llvm::function_ref<void(mlir::Value)> body);

/// `scf.for iv = lb to ub iter_args(acc = init)` (step 1) yielding
/// `body(iv, acc)`, which builds with `b`; the loop's result.
mlir::Value
reduceLoop(mlir::ImplicitLocOpBuilder &b, mlir::Value lb, mlir::Value ub,
           mlir::Value init,
           llvm::function_ref<mlir::Value(mlir::Value, mlir::Value)> body);

/// The same with several values carried: `body(iv, accs)` returns the next
/// ones; the loop's results.
llvm::SmallVector<mlir::Value>
reduceLoop(mlir::ImplicitLocOpBuilder &b, mlir::Value lb, mlir::Value ub,
           mlir::ValueRange inits,
           llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value,
                                                             mlir::ValueRange)>
               body);

/// `scf.if cond` without results.
void ifThen(mlir::ImplicitLocOpBuilder &b, mlir::Value cond,
            llvm::function_ref<void()> thenBody,
            llvm::function_ref<void()> elseBody = nullptr);

/// `scf.if cond -> types`: each body builds its branch and returns what it
/// yields; the if's results.
mlir::ValueRange
ifThenElse(mlir::ImplicitLocOpBuilder &b, mlir::Value cond,
           mlir::TypeRange types,
           llvm::function_ref<llvm::SmallVector<mlir::Value>()> thenBody,
           llvm::function_ref<llvm::SmallVector<mlir::Value>()> elseBody);

/// The first key position visible to the query at `position` under `mask`.
mlir::Value getKeyBegin(mlir::ImplicitLocOpBuilder &b, MaskAttr mask,
                        mlir::Value position);

/// One past the last key position visible to the query at `position`, at
/// most `numKeys`.
mlir::Value getKeyEnd(mlir::ImplicitLocOpBuilder &b, MaskAttr mask,
                      mlir::Value position, mlir::Value numKeys);

/// Split `split` of `numSplits` of the key positions [begin, end) (the keys
/// a decode work item's queries see), in whole tiles of `tile`: [lo, hi),
/// empty for splits past the range.
std::pair<mlir::Value, mlir::Value>
getSplitKeyRange(mlir::ImplicitLocOpBuilder &b, mlir::Value begin,
                 mlir::Value end, mlir::Value split, mlir::Value numSplits,
                 mlir::Value tile);

/// The largest of partialMax[at(s)] over splits s < numSplits (-inf when
/// every split saw nothing): where a decode combine starts.
mlir::Value getMaxOverSplits(
    mlir::ImplicitLocOpBuilder &b, mlir::Value partialMax,
    mlir::Value numSplits,
    llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value)> at);

/// A private constant global holding `values` (f64), placed before `func`
/// (a func.func or gpu.func), and its value inside the function.
mlir::Value getF64Table(mlir::ImplicitLocOpBuilder &b, mlir::Operation *func,
                        llvm::StringRef name, llvm::ArrayRef<double> values);

/// Llama 4's attention temperature at f64 `position`:
/// `log(floor((p + 1) / floor_scale) + 1) * attn_scale + 1`.
mlir::Value getTemperature(mlir::ImplicitLocOpBuilder &b, mlir::Value position,
                           TemperatureTuningAttr tuning);

} // namespace hybrid

#endif // HYBRID_LIB_CONVERSION_UTILS_KERNELBUILDERS_H
