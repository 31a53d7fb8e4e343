//===- Pipelines.cpp - Pass pipelines shared by the tools ----------------===//

#include "hybrid/Pipelines/Pipelines.h"
#include "hybrid/Conversion/Passes.h"
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

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

void hybrid::buildCPUExtractPipeline(OpPassManager &pm,
                                     const CPUPipelineOptions &options) {
  SchedulePipelineOptions schedule;
  schedule.maxSeq = options.maxSeq;
  // The CPU runtime keeps its caches in f32, the kernels' type.
  schedule.storage = StorageType::f32;
  buildSchedulePipeline(pm, schedule);
  pm.addPass(createHybridExtractAttention());
}

void hybrid::buildCPUConvertPipeline(OpPassManager &pm,
                                     const CPUPipelineOptions &options) {
  ConvertHybridAttentionToCPUOptions tiles;
  tiles.qTile = options.qTile;
  tiles.kTile = options.kTile;
  pm.addPass(createConvertHybridAttentionToCPU(tiles));
}

void hybrid::buildCPUKernelPipeline(OpPassManager &pm,
                                    const CPUPipelineOptions &options) {
  buildCPUExtractPipeline(pm, options);
  buildCPUConvertPipeline(pm, options);
}

void hybrid::buildCPUToLLVMPipeline(OpPassManager &pm) {
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createLoopInvariantCodeMotionPass());
  pm.addPass(createHybridApproximateMath());
  pm.addPass(createConvertVectorToSCFPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void hybrid::buildCPUPipeline(OpPassManager &pm,
                              const CPUPipelineOptions &options) {
  buildCPUKernelPipeline(pm, options);
  buildCPUToLLVMPipeline(pm);
}

void hybrid::registerHybridPipelines() {
  PassPipelineRegistration<CPUPipelineOptions>(
      "hybrid-cpu-pipeline",
      "Schedule to LLVM-dialect CPU kernels: plan, extract, lower to flash "
      "loops, lower to LLVM",
      buildCPUPipeline);
  PassPipelineRegistration<SchedulePipelineOptions>(
      "hybrid-schedule-pipeline",
      "Expand, verify and plan the caches of every hybrid.schedule",
      buildSchedulePipeline);
}
