//===- TensorMapParams.cpp - Tensor maps as grid-constant parameters -----===//
//
// A kernel marked `hybrid.tensor_map_args = N` (see TensorMemoryAccess.h)
// takes its last N arguments as CUtensorMap values: byval, 64-byte aligned,
// grid-constant, so that TMA loads read them from the parameter space.
//
//===----------------------------------------------------------------------===//

#include "TensorMemoryAccess.h"

#include "hybrid/Conversion/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDTENSORMAPPARAMS
#include "hybrid/Conversion/Passes.h.inc"
} // namespace hybrid

using namespace mlir;

namespace {
struct TensorMapParamsPass
    : public hybrid::impl::HybridTensorMapParamsBase<TensorMapParamsPass> {
  using Base::Base;

  void runOnOperation() override {
    for (auto func : getOperation().getOps<LLVM::LLVMFuncOp>())
      if (failed(convert(func)))
        return signalPassFailure();
  }

  LogicalResult convert(LLVM::LLVMFuncOp func) {
    auto marked =
        func->getAttrOfType<IntegerAttr>(hybrid::gpu::kTensorMapArgsAttrName);
    if (!marked)
      return success();
    func->removeAttr(hybrid::gpu::kTensorMapArgsAttrName);
    int64_t count = marked.getInt(), args = func.getNumArguments();
    if (!func->hasAttr(NVVM::NVVMDialect::getKernelFuncAttrName()))
      return func.emitError() << hybrid::gpu::kTensorMapArgsAttrName
                              << " on a function that is no kernel";
    if (count < 0 || count > args)
      return func.emitError() << hybrid::gpu::kTensorMapArgsAttrName << " = "
                              << count << " with " << args << " arguments";
    Builder b(func.getContext());
    for (int64_t i = args - count; i < args; ++i) {
      if (!isa<LLVM::LLVMPointerType>(func.getArgument(i).getType()) ||
          cast<LLVM::LLVMPointerType>(func.getArgument(i).getType())
                  .getAddressSpace() != 0)
        return func.emitError() << "argument " << i << " is a tensor map ("
                                << hybrid::gpu::kTensorMapArgsAttrName
                                << "), so it must be a generic !llvm.ptr, not "
                                << func.getArgument(i).getType();
      func.setArgAttr(i, LLVM::LLVMDialect::getByValAttrName(),
                      TypeAttr::get(LLVM::LLVMArrayType::get(
                          b.getI8Type(), hybrid::gpu::kTensorMapBytes)));
      func.setArgAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                      b.getI64IntegerAttr(hybrid::gpu::kTensorMapAlignment));
      func.setArgAttr(i, NVVM::NVVMDialect::getGridConstantAttrName(),
                      b.getUnitAttr());
    }
    return success();
  }
};
} // namespace
