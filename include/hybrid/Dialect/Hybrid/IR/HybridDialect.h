//===- HybridDialect.h - Hybrid dialect declaration --------------*- C++ -*-===//

#ifndef HYBRID_DIALECT_HYBRID_IR_HYBRIDDIALECT_H
#define HYBRID_DIALECT_HYBRID_IR_HYBRIDDIALECT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Dialect.h"

#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h.inc"

#endif // HYBRID_DIALECT_HYBRID_IR_HYBRIDDIALECT_H
