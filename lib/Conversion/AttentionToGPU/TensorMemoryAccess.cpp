//===- TensorMemoryAccess.cpp - TMA tile loads and mbarriers -------------===//
//
// NVVM's own ops for mbarrier.init, arrive, arrive.expect_tx and the tensor
// copy; the wait is inline PTX around one mbarrier.try_wait.parity, with
// the retry loop in the IR (nvvm.mbarrier.try_wait.parity emits its loop as
// PTX with local labels).
//
//===----------------------------------------------------------------------===//

#include "TensorMemoryAccess.h"

#include "GPUKernelEmitter.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

Value hybrid::gpu::getSharedPointer(ImplicitLocOpBuilder &b, Value memref,
                                    int64_t offset) {
  Value address = getSharedAddress(b, memref);
  if (offset)
    address = arith::AddIOp::create(
        b, address, arith::ConstantIntOp::create(b, b.getI64Type(), offset));
  return LLVM::IntToPtrOp::create(
      b, LLVM::LLVMPointerType::get(b.getContext(), /*addressSpace=*/3),
      address);
}

void hybrid::gpu::initBarrier(ImplicitLocOpBuilder &b, Value barrier,
                              int64_t count) {
  NVVM::MBarrierInitOp::create(
      b, barrier, arith::ConstantIntOp::create(b, b.getI32Type(), count),
      /*predicate=*/Value());
  NVVM::FenceMbarrierInitOp::create(b);
}

void hybrid::gpu::arriveExpectingBytes(ImplicitLocOpBuilder &b, Value barrier,
                                       int64_t bytes) {
  NVVM::MBarrierArriveExpectTxOp::create(
      b, /*res=*/Type(), barrier,
      arith::ConstantIntOp::create(b, b.getI32Type(), bytes),
      NVVM::MemScopeKind::CTA, /*relaxed=*/false, /*predicate=*/Value());
}

void hybrid::gpu::arriveOnBarrier(ImplicitLocOpBuilder &b, Value barrier) {
  NVVM::MBarrierArriveOp::create(b, /*res=*/Type(), barrier,
                                 /*count=*/Value());
}

void hybrid::gpu::loadTile(ImplicitLocOpBuilder &b, Value destination,
                           Value map, ValueRange coordinates, Value barrier) {
  SmallVector<Value> at;
  for (Value c : coordinates)
    at.push_back(arith::IndexCastOp::create(b, b.getI32Type(), c));
  // The instruction names shared::cluster memory, where this CTA's own
  // shared memory lies at the same offsets.
  Value clusterDestination = LLVM::AddrSpaceCastOp::create(
      b, LLVM::LLVMPointerType::get(b.getContext(), /*addressSpace=*/7),
      destination);
  NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
      b, clusterDestination, map, at, barrier, /*im2colOffsets=*/ValueRange(),
      /*multicastMask=*/Value(), /*l2CacheHint=*/Value(),
      NVVM::TMALoadMode::TILE, /*isCTAOnly=*/false, /*group=*/nullptr,
      /*predicate=*/Value());
}

void hybrid::gpu::markTensorMapArgs(mlir::gpu::GPUFuncOp kernel,
                                    int64_t count) {
  kernel->setAttr(kTensorMapArgsAttrName,
                  Builder(kernel.getContext()).getI64IntegerAttr(count));
}

void hybrid::gpu::prefetchTensorMap(ImplicitLocOpBuilder &b, Value map) {
  NVVM::PrefetchOp::create(b, /*cacheLevel=*/nullptr, /*evictPriority=*/nullptr,
                           map, /*predicate=*/Value(), /*tensormap=*/true,
                           /*uniform=*/false, /*in_param_space=*/true);
}

void hybrid::gpu::waitBarrier(ImplicitLocOpBuilder &b, Value barrier,
                              Value parity) {
  auto loop = scf::WhileOp::create(b, TypeRange(), ValueRange());
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(b.createBlock(&loop.getBefore()));
    Value done = inlinePtx(
        b, b.getI1Type(), ValueRange{barrier, parity},
        "mbarrier.try_wait.parity.shared::cta.b64 $0, [$1], $2;", "=b,l,r");
    scf::ConditionOp::create(b, logicalNot(b, done), ValueRange());
    b.setInsertionPointToStart(b.createBlock(&loop.getAfter()));
    scf::YieldOp::create(b);
  }
}
