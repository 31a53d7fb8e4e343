//===- TensorMemoryAccess.h - TMA tile loads and mbarriers ------*- C++ -*-===//
//
// sm_90a's Tensor Memory Accelerator for the wgmma flash kernel: one thread
// issues a tile load (cp.async.bulk.tensor) that the hardware writes into
// shared memory 128-byte swizzled (the layout wgmma reads), and its bytes
// complete a phase of an mbarrier that every consumer waits on. The tensor
// maps (CUtensorMap, made by the runtime per call) arrive by value, as
// grid-constant kernel parameters (hybrid-tensor-map-params).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_TENSORMEMORYACCESS_H
#define HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_TENSORMEMORYACCESS_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::gpu {
class GPUFuncOp;
} // namespace mlir::gpu

namespace hybrid::gpu {

/// The kernel attribute naming how many of its last arguments are tensor
/// maps, which hybrid-tensor-map-params turns into by-value parameters.
inline constexpr llvm::StringLiteral kTensorMapArgsAttrName =
    "hybrid.tensor_map_args";
/// A CUtensorMap's size and alignment (cuda.h).
inline constexpr int64_t kTensorMapBytes = 128;
inline constexpr int64_t kTensorMapAlignment = 64;

/// Marks `kernel`'s last `count` arguments (!llvm.ptr) as tensor maps passed
/// by value.
void markTensorMapArgs(mlir::gpu::GPUFuncOp kernel, int64_t count);

/// The shared-memory (address space 3) pointer to `memref`'s element
/// `offset` (bytes) past its start.
mlir::Value getSharedPointer(mlir::ImplicitLocOpBuilder &b, mlir::Value memref,
                             int64_t offset = 0);

/// mbarrier.init with `count` expected arrivals, then the fence that makes
/// initialised barriers visible to the async proxy (TMA's complete_tx).
void initBarrier(mlir::ImplicitLocOpBuilder &b, mlir::Value barrier,
                 int64_t count);

/// The arrival of the thread that issues a load of `bytes` bytes: the
/// barrier's phase completes once they have landed.
void arriveExpectingBytes(mlir::ImplicitLocOpBuilder &b, mlir::Value barrier,
                          int64_t bytes);

/// This thread's arrival on `barrier` (release semantics: its accesses
/// before it are ordered before whoever waits on the phase).
void arriveOnBarrier(mlir::ImplicitLocOpBuilder &b, mlir::Value barrier);

/// A TMA tile load of the box of `map` at `coordinates` (elements,
/// innermost first, index values) into shared `destination`, completing
/// bytes on `barrier`.
void loadTile(mlir::ImplicitLocOpBuilder &b, mlir::Value destination,
              mlir::Value map, mlir::ValueRange coordinates,
              mlir::Value barrier);

/// Brings the tensor map at `map` (a kernel parameter's generic address)
/// into the cache TMA loads read descriptors from, ahead of the first load.
void prefetchTensorMap(mlir::ImplicitLocOpBuilder &b, mlir::Value map);

/// Spins until the phase of `barrier` with parity `parity` (i32: 0 or 1)
/// has completed.
void waitBarrier(mlir::ImplicitLocOpBuilder &b, mlir::Value barrier,
                 mlir::Value parity);

} // namespace hybrid::gpu

#endif // HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_TENSORMEMORYACCESS_H
