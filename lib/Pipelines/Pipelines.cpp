//===- Pipelines.cpp - Pass pipelines shared by the tools ----------------===//

#include "hybrid/Pipelines/Pipelines.h"
#include "hybrid/Conversion/Passes.h"
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
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

/// Plans the caches the target's runtime backend keeps (in `storage`; K=V
/// layers' values only), then extracts the attention kernels.
static void buildExtractPipeline(OpPassManager &pm, int64_t maxSeq,
                                 hybrid::StorageType storage) {
  hybrid::SchedulePipelineOptions schedule;
  schedule.maxSeq = maxSeq;
  schedule.storage = storage;
  hybrid::buildSchedulePipeline(pm, schedule);
  pm.addPass(hybrid::createHybridExtractAttention());
}

void hybrid::buildCPUExtractPipeline(OpPassManager &pm,
                                     const CPUPipelineOptions &options) {
  // The CPU runtime keeps its caches in f32 (the kernels' type) or bf16,
  // and K=V layers' values only (their decode kernel derives the keys).
  buildExtractPipeline(pm, options.maxSeq, options.kvDtype);
}

void hybrid::buildCPUConvertPipeline(OpPassManager &pm,
                                     const CPUPipelineOptions &options) {
  ConvertHybridAttentionToCPUOptions tiles;
  tiles.qTile = options.qTile;
  tiles.kTile = options.kTile;
  tiles.cacheType = stringifyStorageType(options.kvDtype).str();
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

void hybrid::buildCUDAExtractPipeline(OpPassManager &pm,
                                      const CUDAPipelineOptions &options) {
  // The CUDA backend keeps its caches in bf16, the tensor cores' input (and
  // K=V layers' values only, as CPU caches).
  buildExtractPipeline(pm, options.maxSeq, StorageType::bf16);
}

void hybrid::buildCUDAConvertPipeline(OpPassManager &pm,
                                      const CUDAPipelineOptions &options) {
  ConvertHybridAttentionToGPUOptions tiles;
  tiles.kTile = options.kTile;
  tiles.warpRows = options.warpRows;
  tiles.warps = options.warps;
  // The budget is per stage (what bounds a tile's registers too), within
  // the chip's shared memory (the pass multiplies it by each kernel's
  // stages).
  int64_t chip = getSharedMemoryPerCTA(options.chip);
  tiles.sharedMemory = options.sharedMemory > 0 ? options.sharedMemory : chip;
  tiles.chipSharedMemory = chip;
  tiles.minCtasPerSM = options.minCtasPerSM;
  tiles.valueSlice = options.valueSlice;
  tiles.tensorCores = options.tensorCores;
  tiles.tma = options.tma;
  tiles.stages = options.stages;
  tiles.rescaleThreshold = options.rescaleThreshold;
  tiles.softmaxOverlap = options.softmaxOverlap;
  tiles.warpSpecialized = options.warpSpecialized;
  tiles.pingPong = options.pingPong;
  tiles.chip = options.chip;
  pm.addPass(createConvertHybridAttentionToGPU(tiles));
}

int64_t hybrid::getSharedMemoryPerCTA(StringRef chip) {
  // The opt-in maximum of the chip's flagship (A100: 163 KiB, H100: 227
  // KiB); the runtime checks the device it runs on.
  if (chip == "sm_90a")
    return 227 * 1024;
  if (chip == "sm_80")
    return 163 * 1024;
  return 48 * 1024;
}

std::string hybrid::getPTXFeatures(StringRef chip) {
  // sm_90a instructions need PTX 8.0 (wgmma, TMA, prefetch.tensormap);
  // 8.3 as before the maps became parameters (an older fence needed it);
  // the default +ptx60 is too old for cp.async and bf16 mma.
  return chip == "sm_90a" ? "+ptx83" : "+ptx70";
}

void hybrid::buildCUDAToNVVMPipeline(OpPassManager &pm,
                                     const CUDAPipelineOptions &options) {
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createLoopInvariantCodeMotionPass());
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = getPTXFeatures(options.chip);
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createConvertVectorToSCFPass());
  kernels.addPass(createSCFToControlFlowPass());
  kernels.addPass(createConvertNVGPUToNVVMPass());
  kernels.addPass(memref::createExpandStridedMetadataPass());
  kernels.addPass(createLowerAffinePass());
  kernels.addPass(createConvertGpuOpsToNVVMOps());
  kernels.addPass(createHybridExternDynamicSharedMemory());
  kernels.addPass(createHybridTensorMapParams());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void hybrid::registerCUDAPipelineDependencies(DialectRegistry &registry) {
  // convert-gpu-to-nvvm lowers the other dialects in a kernel through their
  // ConvertToLLVM interfaces: without them, e.g. cf.br stays half-converted.
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  registerConvertFuncToLLVMInterface(registry);
  index::registerConvertIndexToLLVMInterface(registry);
  registerConvertMathToLLVMInterface(registry);
  registerConvertMemRefToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  vector::registerConvertVectorToLLVMInterface(registry);
}

void hybrid::buildCUDAPipeline(OpPassManager &pm,
                               const CUDAPipelineOptions &options) {
  buildCUDAExtractPipeline(pm, options);
  buildCUDAConvertPipeline(pm, options);
  buildCUDAToNVVMPipeline(pm, options);
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  binary.toolkitPath = options.toolkit;
  pm.addPass(createGpuModuleToBinaryPass(binary));
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
  PassPipelineRegistration<CUDAPipelineOptions>(
      "hybrid-cuda-pipeline",
      "Schedule to PTX for NVIDIA GPUs: plan, extract, lower to tensor-core "
      "flash kernels, to NVVM, to PTX (gpu.binary)",
      buildCUDAPipeline);
}
