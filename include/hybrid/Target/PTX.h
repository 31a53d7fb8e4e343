//===- PTX.h - NVVM-dialect gpu.module to PTX and cubin ---------*- C++ -*-===//

#ifndef HYBRID_TARGET_PTX_H
#define HYBRID_TARGET_PTX_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

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

/// What ptxas allotted one function of a cubin (`ptxas -v`).
struct FunctionResources {
  unsigned registers = 0;
  uint64_t stackBytes = 0, spillStoreBytes = 0, spillLoadBytes = 0;
  uint64_t sharedBytes = 0; // static shared memory
};

/// Assembles `ptxPath` for `chip` into `cubinPath` with `ptxas`; on failure
/// returns false and sets `error` (ptxas' own message). `resources` gets
/// each function's registers, stack, spills and static shared memory, as
/// ptxas reports them, in its order.
bool assembleCubin(
    llvm::StringRef ptxas, llvm::StringRef ptxPath, llvm::StringRef chip,
    llvm::StringRef cubinPath, std::string &error,
    std::vector<std::pair<std::string, FunctionResources>> &resources);

/// Parses `ptxas -v` output into `resources`: a function counts once its
/// "Used N registers" line is seen.
void parsePtxasResources(
    llvm::StringRef log,
    std::vector<std::pair<std::string, FunctionResources>> &resources);

} // namespace hybrid

#endif // HYBRID_TARGET_PTX_H
