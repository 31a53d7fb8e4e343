//===- Pipelines.cpp - Pass pipelines shared by the tools ----------------===//

#include "hybrid/Pipelines/Pipelines.h"
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

void hybrid::buildSchedulePipeline(OpPassManager &pm,
                                   const SchedulePipelineOptions &options) {
  OpPassManager &schedule = pm.nest<ScheduleOp>();
  if (options.expand)
    schedule.addPass(createHybridExpandPatterns());
  schedule.addPass(createHybridVerifySchedule());
  HybridPlanCachesOptions plan;
  plan.maxSeq = options.maxSeq;
  plan.storage = options.storage;
  schedule.addPass(createHybridPlanCaches(plan));
}

void hybrid::registerHybridPipelines() {
  PassPipelineRegistration<SchedulePipelineOptions>(
      "hybrid-schedule-pipeline",
      "Expand, verify and plan the caches of every hybrid.schedule",
      buildSchedulePipeline);
}
