//===- HybridDialect.cpp - Hybrid dialect registration ------------------===//

#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"

using namespace mlir;
using namespace hybrid;

#include "hybrid/Dialect/Hybrid/IR/HybridDialect.cpp.inc"

void HybridDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "hybrid/Dialect/Hybrid/IR/HybridOps.cpp.inc"
      >();
  registerAttributes();
}
