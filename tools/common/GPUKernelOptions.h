//===- GPUKernelOptions.h - Flags shaping the CUDA flash kernels *- C++ -*-===//
//
// --tensor-cores, --tma, --warps, --stages, --softmax-overlap and
// --rescale-threshold, shared by hybrid-compile and hybrid-run (one
// definition, one help text).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_TOOLS_COMMON_GPUKERNELOPTIONS_H
#define HYBRID_TOOLS_COMMON_GPUKERNELOPTIONS_H

#include "hybrid/Driver/Compiler.h"
#include "llvm/Support/CommandLine.h"

namespace hybrid::tools {

/// The options' category, for cl::HideUnrelatedOptions.
llvm::cl::OptionCategory &getGPUKernelOptionCategory();

/// Copies the options' values into `options` (validate() checks them); an
/// error when --tensor-cores names no tensor-core instructions.
std::string applyGPUKernelOptions(CompileOptions &options);

/// The first of the options the command line gives, as "--name"; "" if none.
std::string getGivenGPUKernelOption();

} // namespace hybrid::tools

#endif // HYBRID_TOOLS_COMMON_GPUKERNELOPTIONS_H
