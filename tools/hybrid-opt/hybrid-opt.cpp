//===- hybrid-opt.cpp - Optimizer driver for the hybrid dialect ---------===//
//
// Runs hybrid passes (and upstream ones) on .mlir files, like mlir-opt.
//
//===----------------------------------------------------------------------===//

#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "hybrid/Pipelines/Pipelines.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  hybrid::registerHybridPasses();
  hybrid::registerHybridPipelines();

  mlir::DialectRegistry registry;
  registry.insert<hybrid::HybridDialect, mlir::func::FuncDialect,
                  mlir::tensor::TensorDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "hybrid optimizer driver\n", registry));
}
