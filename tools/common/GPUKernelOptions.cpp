//===- GPUKernelOptions.cpp - Options shaping the CUDA flash kernels ------===//

#include "GPUKernelOptions.h"

using namespace llvm;

static cl::OptionCategory gpuCategory("GPU kernel options");
cl::OptionCategory &hybrid::tools::getGPUKernelOptionCategory() {
  return gpuCategory;
}

static cl::opt<std::string> tensorCores(
    "tensor-cores", cl::init("mma.sync"),
    cl::desc("cuda targets: the flash kernels' tensor-core instructions, "
             "mma.sync (sm_80 and later) or wgmma (cuda:sm_90a; warp-rows 16, "
             "head dims multiples of 64)"),
    cl::value_desc("mma.sync|wgmma"), cl::cat(gpuCategory));
static cl::opt<bool>
    tma("tma",
        cl::desc("cuda:sm_90a with --tensor-cores wgmma: the flash kernels "
                 "load K and V tiles with the Tensor Memory Accelerator (one "
                 "thread issues, mbarriers signal) instead of cp.async"),
        cl::cat(gpuCategory));
static cl::opt<int64_t>
    warps("warps", cl::init(4),
          cl::desc("cuda targets: warps per flash CTA, 4 or 8 (8: 128 rows "
                   "share each K and V tile; with --tensor-cores wgmma, two "
                   "warpgroups)"),
          cl::cat(gpuCategory));
static cl::opt<int64_t>
    stages("stages", cl::init(1),
           cl::desc("With --tma: buffers per K and V tile, 1 to 4 (S > 1: "
                    "the next S - 1 key tiles' K and V load while this one "
                    "is computed)"),
           cl::cat(gpuCategory));

static cl::opt<bool> softmaxOverlap(
    "softmax-overlap",
    cl::desc("With --tma --stages 2 or more: each warpgroup issues the next "
             "tile's Q K^T and this tile's P V without waiting and computes "
             "the next softmax while P V runs (FlashAttention-3's "
             "intra-warpgroup overlap)"),
    cl::cat(gpuCategory));
static cl::opt<bool> warpSpecialized(
    "warp-specialized",
    cl::desc("With --tma --stages 2 or more: one more warp per flash CTA "
             "issues every TMA load, and the compute warps free each stage "
             "with an mbarrier arrival instead of a CTA barrier per tile "
             "(producer / consumer warp specialization)"),
    cl::cat(gpuCategory));
static cl::opt<bool> pingPong(
    "ping-pong",
    cl::desc("With --warps 8 --softmax-overlap --warp-specialized: the two "
             "warpgroups of a flash CTA take turns issuing their products "
             "(named barriers), so that one's softmax runs while the "
             "other's wgmmas do (FlashAttention-3's ping-pong)"),
    cl::cat(gpuCategory));
static cl::opt<double> rescaleThreshold(
    "rescale-threshold", cl::init(8),
    cl::desc("cuda targets: the flash kernels' lazy rescaling; a warp moves "
             "its rows' running max (rescaling the output and sum) only when "
             "a score passes it by more than 2^T, 0 to 32 (0: whenever a "
             "max grows)"),
    cl::value_desc("T"), cl::cat(gpuCategory));
static cl::opt<int64_t> valueSlice(
    "value-slice", cl::init(256),
    cl::desc("cuda targets: value dims one flash CTA accumulates at most, a "
             "multiple of 16 (64 with wgmma) up to 256; the CTA takes the "
             "largest divisor of the V head dim up to it, and each slice "
             "computes Q K^T again (narrower: fewer accumulator registers, "
             "more tensor-core work)"),
    cl::value_desc("N"), cl::cat(gpuCategory));

std::string hybrid::tools::applyGPUKernelOptions(CompileOptions &options) {
  std::optional<TensorCores> instructions = parseTensorCoresName(tensorCores);
  if (!instructions)
    return "--tensor-cores must be mma.sync or wgmma, got '" + tensorCores +
           "'";
  options.gpu.tensorCores = *instructions;
  options.gpu.tma = tma;
  options.gpu.warps = warps;
  options.gpu.stages = stages;
  options.gpu.rescaleThreshold = rescaleThreshold;
  options.gpu.softmaxOverlap = softmaxOverlap;
  options.gpu.warpSpecialized = warpSpecialized;
  options.gpu.pingPong = pingPong;
  options.gpu.valueSlice = valueSlice;
  return "";
}

std::string hybrid::tools::getGivenGPUKernelOption() {
  for (const cl::Option *option : std::initializer_list<const cl::Option *>{
           &tensorCores, &tma, &warps, &stages, &rescaleThreshold,
           &softmaxOverlap, &warpSpecialized, &pingPong, &valueSlice})
    if (option->getNumOccurrences())
      return ("--" + option->ArgStr).str();
  return "";
}
