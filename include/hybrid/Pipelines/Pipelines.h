//===- Pipelines.h - Pass pipelines shared by the tools ---------*- C++ -*-===//
//
// hybrid-compile, the tuner and Python build their pass managers with these
// functions; hybrid-opt registers them, so `hybrid-opt --hybrid-...-pipeline`
// reproduces exactly what the tools run.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_PIPELINES_PIPELINES_H
#define HYBRID_PIPELINES_PIPELINES_H

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace hybrid {

struct SchedulePipelineOptions
    : public mlir::PassPipelineOptions<SchedulePipelineOptions> {
  Option<bool> expand{*this, "expand",
                      llvm::cl::desc("Unroll hybrid.repeat patterns first"),
                      llvm::cl::init(true)};
  Option<int64_t> maxSeq{
      *this, "max-seq",
      llvm::cl::desc("Context length to plan caches for (0: max_position)"),
      llvm::cl::init(0)};
  Option<StorageType> storage{
      *this, "storage", llvm::cl::desc("Element type of caches and states"),
      llvm::cl::init(StorageType::bf16),
      llvm::cl::values(clEnumValN(StorageType::f32, "f32", "4 bytes"),
                       clEnumValN(StorageType::f16, "f16", "2 bytes"),
                       clEnumValN(StorageType::bf16, "bf16", "2 bytes"),
                       clEnumValN(StorageType::f8, "f8", "1 byte"))};
};

struct CPUPipelineOptions
    : public mlir::PassPipelineOptions<CPUPipelineOptions> {
  Option<int64_t> maxSeq{
      *this, "max-seq",
      llvm::cl::desc("Context length to plan caches for (0: max_position)"),
      llvm::cl::init(0)};
  Option<int64_t> qTile{
      *this, "q-tile",
      llvm::cl::desc("Query rows (positions x GQA group) per work item at "
                     "most (0: 256)"),
      llvm::cl::init(0)};
  Option<int64_t> kTile{*this, "k-tile", llvm::cl::desc("Keys per tile"),
                        llvm::cl::init(64)};
  Option<StorageType> kvDtype{
      *this, "kv-dtype",
      llvm::cl::desc("Element type of the caches the runtime keeps (and the "
                     "decode kernels read)"),
      llvm::cl::init(StorageType::f32),
      llvm::cl::values(
          clEnumValN(StorageType::f32, "f32", "4 bytes"),
          clEnumValN(StorageType::bf16, "bf16", "2 bytes"),
          clEnumValN(StorageType::f16, "f16", "2 bytes"),
          clEnumValN(StorageType::f8, "f8", "1 byte (E4M3FN, unscaled)"))};
};

struct CUDAPipelineOptions
    : public mlir::PassPipelineOptions<CUDAPipelineOptions> {
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("GPU architecture: sm_80 or sm_90a"),
                           llvm::cl::init("sm_80")};
  Option<int64_t> maxSeq{
      *this, "max-seq",
      llvm::cl::desc("Context length to plan caches for (0: max_position)"),
      llvm::cl::init(0)};
  Option<int64_t> kTile{*this, "k-tile", llvm::cl::desc("Keys per tile"),
                        llvm::cl::init(64)};
  Option<int64_t> warpRows{
      *this, "warp-rows",
      llvm::cl::desc("Query rows per warp in the flash kernel (16 or 32)"),
      llvm::cl::init(16)};
  Option<int64_t> sharedMemory{
      *this, "shared-memory",
      llvm::cl::desc("Bytes of shared memory per stage a flash CTA may use: "
                     "key tiles are halved until a stage fits (0: until "
                     "all stages fit the chip's maximum)"),
      llvm::cl::init(48 * 1024)};
  Option<int64_t> warps{
      *this, "warps",
      llvm::cl::desc("Warps per flash CTA (4 or 8: wgmma's one or two "
                     "warpgroups)"),
      llvm::cl::init(4)};
  Option<std::string> tensorCores{
      *this, "tensor-cores",
      llvm::cl::desc("Flash kernels' tensor-core instructions: mma.sync or "
                     "wgmma (sm_90a)"),
      llvm::cl::init("mma.sync")};
  Option<bool> tma{*this, "tma",
                   llvm::cl::desc("With tensor-cores=wgmma: K and V tiles by "
                                  "TMA"),
                   llvm::cl::init(false)};
  Option<int64_t> stages{
      *this, "stages",
      llvm::cl::desc("With tma: buffers per tile kind (1 to 4)"),
      llvm::cl::init(1)};
  Option<bool> softmaxOverlap{
      *this, "softmax-overlap",
      llvm::cl::desc("With tma and stages >= 2: softmax overlaps the "
                     "warpgroup's tensor cores"),
      llvm::cl::init(false)};
  Option<bool> warpSpecialized{
      *this, "warp-specialized",
      llvm::cl::desc("With tma and stages >= 2: a producer warp issues the "
                     "TMA loads"),
      llvm::cl::init(false)};
  Option<bool> pingPong{
      *this, "ping-pong",
      llvm::cl::desc("With warps=8, softmax-overlap and warp-specialized: "
                     "the warpgroups take turns issuing their products"),
      llvm::cl::init(false)};
  Option<int64_t> minCtasPerSM{
      *this, "min-ctas-per-sm",
      llvm::cl::desc("Flash kernels: CTAs per multiprocessor to fit "
                     "(.minnctapersm; 0: no bound)"),
      llvm::cl::init(0)};
  Option<int64_t> valueSlice{
      *this, "value-slice",
      llvm::cl::desc("Flash kernels: value dims one CTA accumulates at most "
                     "(16 to 256)"),
      llvm::cl::init(256)};
  Option<double> rescaleThreshold{
      *this, "rescale-threshold",
      llvm::cl::desc("Flash kernels: powers of two scores may pass the "
                     "running max before it moves (0 to 32)"),
      llvm::cl::init(8.0)};
  Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc("CUDA toolkit (libdevice for exp, tanh, cos)"),
      llvm::cl::init("/usr/local/cuda")};
};

/// Expands patterns (optionally), verifies the schedule as a whole and plans
/// its caches: every schedule in the module.
void buildSchedulePipeline(mlir::OpPassManager &pm,
                           const SchedulePipelineOptions &options);

/// Schedule pipeline (caches planned in f32, the CPU runtime's type), then
/// `hybrid-extract-attention`: one func per distinct attention layer.
void buildCPUExtractPipeline(mlir::OpPassManager &pm,
                             const CPUPipelineOptions &options);

/// `convert-hybrid-attention-to-cpu` with the options' tile sizes.
void buildCPUConvertPipeline(mlir::OpPassManager &pm,
                             const CPUPipelineOptions &options);

/// Schedule pipeline, then one CPU kernel set per distinct layer signature
/// (buildCPUExtractPipeline, then buildCPUConvertPipeline).
void buildCPUKernelPipeline(mlir::OpPassManager &pm,
                            const CPUPipelineOptions &options);

/// Lowers CPU kernels (scf, vector, memref, math) to the LLVM dialect.
void buildCPUToLLVMPipeline(mlir::OpPassManager &pm);

/// Both of the above: what `hybrid-compile --target cpu` runs.
void buildCPUPipeline(mlir::OpPassManager &pm,
                      const CPUPipelineOptions &options);

/// Schedule pipeline (caches planned for the options' max-seq), then
/// `hybrid-extract-attention`: the CPU extraction, which GPU kernels share.
void buildCUDAExtractPipeline(mlir::OpPassManager &pm,
                              const CUDAPipelineOptions &options);

/// `convert-hybrid-attention-to-gpu` with the options' key tile.
void buildCUDAConvertPipeline(mlir::OpPassManager &pm,
                              const CUDAPipelineOptions &options);

/// Attaches the NVVM target (chip, PTX ISA) and lowers the gpu.module's
/// kernels (gpu, nvgpu, scf, vector, memref, math) to the NVVM/LLVM dialects.
void buildCUDAToNVVMPipeline(mlir::OpPassManager &pm,
                             const CUDAPipelineOptions &options);

/// What buildCUDAToNVVMPipeline needs registered in its context (hybrid-opt
/// registers everything anyway).
void registerCUDAPipelineDependencies(mlir::DialectRegistry &registry);

/// Schedule pipeline, extraction, GPU kernels, NVVM, then PTX
/// (`gpu-module-to-binary{format=isa}`): what `hybrid-compile --target
/// cuda:<chip>` runs before assembling the PTX.
void buildCUDAPipeline(mlir::OpPassManager &pm,
                       const CUDAPipelineOptions &options);

/// The PTX ISA version `chip` needs (sm_90a: 8.0, else 7.0).
std::string getPTXFeatures(llvm::StringRef chip);

/// Bytes of shared memory a CTA may use on `chip` (opting in past 48 KiB).
int64_t getSharedMemoryPerCTA(llvm::StringRef chip);

/// Registers `hybrid-schedule-pipeline`, `hybrid-cpu-pipeline` and
/// `hybrid-cuda-pipeline`.
void registerHybridPipelines();

} // namespace hybrid

#endif // HYBRID_PIPELINES_PIPELINES_H
