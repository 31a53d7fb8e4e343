//===- PTX.h - NVVM-dialect gpu.module to PTX and cubin ---------*- C++ -*-===//

#ifndef HYBRID_TARGET_PTX_H
#define HYBRID_TARGET_PTX_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include <optional>
#include <string>

namespace hybrid {

/// Translates the gpu.module of `module` (kernels lowered to NVVM, target
/// attached) to PTX with LLVM's NVPTX backend; `toolkit` provides libdevice.
/// On failure returns nullopt and sets `error`. `configure`, if given, sets
/// up the pass manager that runs the translation (instrumentation, timing).
std::optional<std::string>
emitPTX(mlir::ModuleOp module, llvm::StringRef toolkit, std::string &error,
        llvm::function_ref<mlir::LogicalResult(mlir::PassManager &)> configure =
            nullptr);

/// The ptxas of `toolkit` (or of PATH), if there is one.
std::optional<std::string> findPtxas(llvm::StringRef toolkit);

/// Assembles `ptxPath` for `chip` into `cubinPath` with `ptxas`; on failure
/// returns false and sets `error` (ptxas' own message).
bool assembleCubin(llvm::StringRef ptxas, llvm::StringRef ptxPath,
                   llvm::StringRef chip, llvm::StringRef cubinPath,
                   std::string &error);

} // namespace hybrid

#endif // HYBRID_TARGET_PTX_H
