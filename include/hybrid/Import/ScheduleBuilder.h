//===- ScheduleBuilder.h - ModelSpec to hybrid.schedule ---------*- C++ -*-===//

#ifndef HYBRID_IMPORT_SCHEDULEBUILDER_H
#define HYBRID_IMPORT_SCHEDULEBUILDER_H

#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "hybrid/Import/ModelSpec.h"
#include "mlir/IR/Builders.h"

namespace hybrid {

/// Builds a `hybrid.schedule` for `spec` at the builder's insertion point.
/// Runs of identical layers are written as (nested) `hybrid.repeat` ops, so
/// the IR reads like the model's interleaving pattern. The result is
/// verified; on failure the diagnostics have been emitted and the op erased.
mlir::FailureOr<ScheduleOp> buildSchedule(mlir::OpBuilder &builder,
                                          mlir::Location loc,
                                          const spec::ModelSpec &spec);

} // namespace hybrid

#endif // HYBRID_IMPORT_SCHEDULEBUILDER_H
