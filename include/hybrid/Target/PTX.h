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

/// What `ptxas -v` said of a module: each function's resources, in its
/// order, and its "Potential Performance Loss" notes (the text after that
/// prefix: wgmma serialized for want of registers, setmaxnreg ignored, ...),
/// which the cubin runs with and nothing else reports.
struct PtxasReport {
  std::vector<std::pair<std::string, FunctionResources>> functions;
  std::vector<std::string> performanceLosses;
};

/// Assembles `ptxPath` for `chip` into `cubinPath` with `ptxas`; on failure
/// returns false and sets `error` (ptxas' own message). `report` gets what
/// ptxas said of the module.
bool assembleCubin(llvm::StringRef ptxas, llvm::StringRef ptxPath,
                   llvm::StringRef chip, llvm::StringRef cubinPath,
                   std::string &error, PtxasReport &report);

/// Parses `ptxas -v` output into `report`: a function counts once its
/// "Used N registers" line is seen.
void parsePtxasReport(llvm::StringRef log, PtxasReport &report);

} // namespace hybrid

#endif // HYBRID_TARGET_PTX_H
