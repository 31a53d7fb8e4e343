//===- GPUKernelEmitter.cpp - Building blocks of the GPU kernels ---------===//

#include "GPUKernelEmitter.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

mlir::gpu::GPUFuncOp hybrid::gpu::createKernel(ImplicitLocOpBuilder &b,
                                               StringRef name, TypeRange inputs,
                                               TypeRange workgroup) {
  auto func = mlir::gpu::GPUFuncOp::create(
      b, name, b.getFunctionType(inputs, {}), workgroup);
  func->setAttr(mlir::gpu::GPUDialect::getKernelFuncAttrName(),
                b.getUnitAttr());
  func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr({kThreads, 1, 1}));
  b.setInsertionPointToStart(&func.getBody().front());
  mlir::gpu::ReturnOp::create(b);
  b.setInsertionPointToStart(&func.getBody().front());
  return func;
}
