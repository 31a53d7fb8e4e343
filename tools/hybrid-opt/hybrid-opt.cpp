//===- hybrid-opt.cpp - Optimizer driver for the hybrid dialect ---------===//
//
// Runs hybrid passes (and upstream ones) on .mlir files, like mlir-opt.
//
//===----------------------------------------------------------------------===//

#include "hybrid/Conversion/Passes.h"
#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "hybrid/Pipelines/Pipelines.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  hybrid::registerHybridPasses();
  hybrid::registerHybridConversionPasses();
  hybrid::registerHybridPipelines();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  // gpu-module-to-binary translates gpu.modules to LLVM IR (NVPTX).
  mlir::registerAllToLLVMIRTranslations(registry);
  registry.insert<hybrid::HybridDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "hybrid optimizer driver\n", registry));
}
