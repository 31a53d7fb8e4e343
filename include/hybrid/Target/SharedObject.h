//===- SharedObject.h - LLVM-dialect module to a host .so -------*- C++ -*-===//

#ifndef HYBRID_TARGET_SHAREDOBJECT_H
#define HYBRID_TARGET_SHAREDOBJECT_H

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace hybrid {

/// Translates `module` (LLVM dialect only) to LLVM IR, optimises it at O3 for
/// the host CPU (its name and features, e.g. AVX-512), emits an object file
/// and links the shared object `path` with the system C compiler driver
/// (clang-22, else cc). On failure returns false and sets `error`.
bool emitHostSharedObject(mlir::ModuleOp module, llvm::StringRef path,
                          std::string &error);

/// The host CPU name and features the kernels are compiled for.
std::string getHostTargetDescription();

} // namespace hybrid

#endif // HYBRID_TARGET_SHAREDOBJECT_H
