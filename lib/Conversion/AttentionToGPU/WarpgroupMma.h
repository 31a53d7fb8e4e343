//===- WarpgroupMma.h - Hopper warpgroup MMA --------------------*- C++ -*-===//
//
// sm_90a's wgmma.mma_async: the CTA's four warps multiply a 64-row A held
// in registers (the mma.sync A fragment layout, one 16-row slice per warp)
// by a B tile in shared memory that a matrix descriptor names. B tiles are
// kept in the 128-byte-swizzled layout wgmma (and TMA) read without bank
// conflicts: 64-element (128-byte) rows, 8-row atoms of 1024 bytes in which
// 16-byte chunk c of row r sits at chunk c ^ (r % 8).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_WARPGROUPMMA_H
#define HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_WARPGROUPMMA_H

#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <array>

namespace hybrid::gpu {

/// Elements per swizzled row (128 bytes of bf16).
constexpr int64_t kSwizzleRow = 64;

/// The [row][chunk position] of 16-byte chunk `chunk` (8 elements) of
/// `row` in a swizzled tile stored as [column block][rows][64]: the column
/// block is chunk / 8.
std::array<mlir::Value, 3> getSwizzledChunk(mlir::ImplicitLocOpBuilder &b,
                                            mlir::Value row, mlir::Value chunk);

/// The descriptor of swizzled shared `tile` (alignment 1024): leading and
/// stride byte offsets as wgmma's canonical layouts define them.
mlir::Value getMatrixDescriptor(mlir::ImplicitLocOpBuilder &b, mlir::Value tile,
                                int64_t leadingBytes, int64_t strideBytes);

/// `descriptor` moved `bytes` (a multiple of 16) into its tile.
mlir::Value offsetDescriptor(mlir::ImplicitLocOpBuilder &b,
                             mlir::Value descriptor, int64_t bytes);

/// D = acc + sum_s A_s B_s over the steps s (m64nNk16 each, N = 2 x the
/// accumulators per thread): wgmma.fence, the steps, commit and (`wait`)
/// wait, as one inline-assembly block so that no other instruction touches
/// the registers while they are in flight. `nMajor`: B tiles hold K rows of
/// N (transposed B); else N rows of K. Without `wait` the group stays in
/// flight: its results and A registers go through waitWarpgroupMma before
/// anything else touches them.
llvm::SmallVector<mlir::Value>
warpgroupMma(mlir::ImplicitLocOpBuilder &b, llvm::ArrayRef<mlir::Value> acc,
             llvm::ArrayRef<std::array<mlir::Value, 4>> a,
             llvm::ArrayRef<mlir::Value> descriptors, bool nMajor,
             bool wait = true);

/// D = sum_s A_s B_s into `registers` accumulators per thread: the first
/// step ignores D (scale-d false), so no zeros are moved into them.
llvm::SmallVector<mlir::Value>
warpgroupMmaFromZero(mlir::ImplicitLocOpBuilder &b, int64_t registers,
                     llvm::ArrayRef<std::array<mlir::Value, 4>> a,
                     llvm::ArrayRef<mlir::Value> descriptors, bool nMajor,
                     bool wait = true);

/// wgmma.wait_group `pending`: all but the warp's last `pending` committed
/// groups have landed. Returns `inFlight` (results of those groups) as
/// landed values, to be read only through them; `inUse` (A registers the
/// groups read) stay unchanged until the wait. `note` becomes a PTX comment
/// after it: waits with distinct notes are not merged by LLVM.
llvm::SmallVector<mlir::Value>
waitWarpgroupMma(mlir::ImplicitLocOpBuilder &b, int64_t pending,
                 llvm::ArrayRef<mlir::Value> inFlight,
                 llvm::ArrayRef<mlir::Value> inUse, llvm::StringRef note = "");

/// fence.proxy.async.shared::cta: this thread's shared-memory writes
/// become visible to the async proxy (wgmma's operand reads).
void fenceSharedForAsyncProxy(mlir::ImplicitLocOpBuilder &b);

} // namespace hybrid::gpu

#endif // HYBRID_LIB_CONVERSION_ATTENTIONTOGPU_WARPGROUPMMA_H
