//===- Summary.h - The JSON summary of a planned schedule -------*- C++ -*-===//

#ifndef HYBRID_EXPORT_SUMMARY_H
#define HYBRID_EXPORT_SUMMARY_H

#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"

#include <nlohmann/json.hpp>

namespace hybrid {

/// The summary of DESIGN.md ("Command-line contracts", `--emit summary`) for
/// a schedule that `hybrid-plan-caches` has annotated. Keys keep the
/// documented order.
nlohmann::ordered_json buildSummary(ScheduleOp schedule);

} // namespace hybrid

#endif // HYBRID_EXPORT_SUMMARY_H
