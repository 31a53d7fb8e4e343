//===- ExternDynamicSharedMemory.cpp - Dynamic shared memory as .extern --===//
//
// gpu.dynamic_shared_memory lowers to an internal zero-length global in
// address space 3. NVPTX (LLVM 22) demotes internal shared globals used by
// one kernel into that kernel's static shared variables: a one-byte
// `.shared` array past which every access of the kernel's tiles would fall.
// External linkage keeps it `.extern .shared .b8 name[]`, the launch's
// dynamic shared memory.
//
//===----------------------------------------------------------------------===//

#include "hybrid/Conversion/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDEXTERNDYNAMICSHAREDMEMORY
#include "hybrid/Conversion/Passes.h.inc"
} // namespace hybrid

using namespace mlir;

namespace {
struct ExternDynamicSharedMemoryPass
    : public hybrid::impl::HybridExternDynamicSharedMemoryBase<
          ExternDynamicSharedMemoryPass> {
  using Base::Base;

  void runOnOperation() override {
    if (alignment <= 0 || (alignment & (alignment - 1))) {
      getOperation().emitError()
          << "alignment must be a power of two, got " << int64_t(alignment);
      return signalPassFailure();
    }
    for (auto global : getOperation().getOps<LLVM::GlobalOp>()) {
      // Upstream's lowering makes zero-length arrays without initializer.
      auto array = dyn_cast<LLVM::LLVMArrayType>(global.getGlobalType());
      bool dynamicShared =
          global.getAddrSpace() == NVVM::NVVMMemorySpace::Shared && array &&
          array.getNumElements() == 0 && !global.getValueAttr() &&
          global.getInitializerRegion().empty();
      if (!dynamicShared)
        continue;
      global.setLinkage(LLVM::Linkage::External);
      global.setAlignment(
          std::max<uint64_t>(global.getAlignment().value_or(1), alignment));
    }
  }
};
} // namespace
