//===- AttentionToGPU.cpp - hybrid.attention kernels to NVIDIA GPUs ------===//

#include "GPUKernelEmitter.h"
#include "hybrid/Conversion/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "llvm/Support/Format.h"

namespace hybrid {
#define GEN_PASS_DEF_CONVERTHYBRIDATTENTIONTOGPU
#include "hybrid/Conversion/Passes.h.inc"
} // namespace hybrid

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

/// Why the GPU kernels cannot compute `sig` with `keyTile`, `warpRows` and
/// `warps`, if they cannot.
static std::optional<std::string>
getUnsupportedReason(const AttentionSignature &sig, int64_t keyTile,
                     int64_t warpRows, int64_t warps, TensorCores tensorCores) {
  if (tensorCores == TensorCores::Wgmma) {
    // One warpgroup of 64 rows; B tiles in 64-element swizzled rows.
    if (warpRows != 16)
      return "tensor-cores=wgmma takes warp-rows 16 (each four warps are "
             "one 64-row warpgroup), got " +
             std::to_string(warpRows);
    if (sig.headDim % 64 != 0 || getValueSlice(sig.vHeadDim) % 64 != 0)
      return "tensor-cores=wgmma needs head dims that are multiples of 64 "
             "(128-byte swizzled tiles), got " +
             std::to_string(sig.headDim) + " and " +
             std::to_string(sig.vHeadDim) + "; use mma.sync";
  }
  if (warpRows != 16 && warpRows != 32)
    return "warp-rows must be 16 or 32 (one or two mma tiles), got " +
           std::to_string(warpRows);
  if (sig.headDim % 16 != 0 || sig.vHeadDim % 16 != 0 || sig.headDim > 512 ||
      sig.vHeadDim > 512)
    return "head dims must be multiples of 16 up to 512 for the GPU "
           "kernels (mma.sync m16n8k16), got " +
           std::to_string(sig.headDim) + " and " + std::to_string(sig.vHeadDim);
  if (warps != 4 && warps != 8)
    return "warps must be 4 or 8 (flash CTAs of 4 or 8 warps), got " +
           std::to_string(warps);
  // A flash CTA's rows hold at least one position of every head of a GQA
  // group.
  int64_t rows = getFlashRows(warps, warpRows / 16);
  if (sig.groupSize() > rows)
    return "the GPU kernels take at most " + std::to_string(rows) +
           " query heads per kv head (the rows of a flash CTA), got " +
           std::to_string(sig.groupSize());
  // The decode kernel keeps a kv head's G query rows and their
  // probabilities for a 128-key tile in static shared memory, beside its
  // row indices, reduction scratch and the key subsets' value sums.
  int64_t group = sig.groupSize();
  int64_t decodeBytes = group * (sig.headDim + kThreads) * 4 + kThreads * 8 +
                        (kThreads / kThreadsPerWarp) * group * 4 +
                        kThreads / (sig.vHeadDim / 8) * sig.vHeadDim * 4;
  if (sig.mask.getCausal() && decodeBytes > 48 * 1024)
    return "the GPU decode kernel keeps the " + std::to_string(group) +
           " query heads of a kv head in shared memory: " +
           std::to_string(decodeBytes) + " bytes at head dim " +
           std::to_string(sig.headDim) + ", over the 49152 available";
  if (keyTile <= 0 || keyTile % 16 != 0)
    return "k-tile must be a positive multiple of 16 for the GPU kernels, "
           "got " +
           std::to_string(keyTile);
  if (tensorCores == TensorCores::Wgmma && keyTile > 256)
    return "tensor-cores=wgmma takes k-tile up to 256 (wgmma's largest N), "
           "got " +
           std::to_string(keyTile);
  return std::nullopt;
}

namespace {
struct ConvertAttentionToGPUPass
    : public hybrid::impl::ConvertHybridAttentionToGPUBase<
          ConvertAttentionToGPUPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<SmallVector<std::pair<Operation *, AttentionOp>>> kernels =
        getAttentionKernels(module, "GPU kernels take f32 rows (computing in "
                                    "bf16); other element types are not "
                                    "supported yet");
    if (failed(kernels))
      return signalPassFailure();

    if (tensorCores != "mma.sync" && tensorCores != "wgmma") {
      module.emitError() << "tensor-cores must be mma.sync or wgmma, got '"
                         << tensorCores << "'";
      return signalPassFailure();
    }
    TensorCores instructions =
        tensorCores == "wgmma" ? TensorCores::Wgmma : TensorCores::MmaSync;
    if (tma && instructions != TensorCores::Wgmma) {
      module.emitError() << "tma: TMA writes the swizzled tiles only the "
                            "wgmma kernels read; use it with "
                            "tensor-cores=wgmma";
      return signalPassFailure();
    }
    if (stages < 1 || stages > 4) {
      module.emitError() << "stages must be 1 to 4, got " << int64_t(stages);
      return signalPassFailure();
    }
    if (stages > 1 && !tma) {
      module.emitError() << "stages=" << int64_t(stages)
                         << ": tiles ahead of the current one are loaded by "
                            "TMA; use it with tma";
      return signalPassFailure();
    }
    if (softmaxOverlap && stages < 2) {
      module.emitError() << "softmax-overlap: the tiles of two key tiles "
                            "are in use at once; use it with tma and "
                            "stages >= 2";
      return signalPassFailure();
    }
    if (!(rescaleThreshold >= 0 && rescaleThreshold <= 32)) {
      std::string shown;
      llvm::raw_string_ostream(shown)
          << llvm::format("%g", double(rescaleThreshold));
      module.emitError() << "rescale-threshold must be 0 to 32, got " << shown;
      return signalPassFailure();
    }
    ImplicitLocOpBuilder b(module.getLoc(), module.getContext());
    module->setAttr(mlir::gpu::GPUDialect::getContainerModuleAttrName(),
                    b.getUnitAttr());
    b.setInsertionPointToEnd(module.getBody());
    auto gpuModule = mlir::gpu::GPUModuleOp::create(b, "kernels");
    b.setInsertionPointToStart(gpuModule.getBody());
    // bf16 tensors at the runtime's API convert through these (a schedule
    // without attention layers has no operands to convert).
    if (!kernels->empty()) {
      emitElementConversionKernel(b, kBF16ToF32Kernel, b.getBF16Type(),
                                  b.getF32Type());
      emitElementConversionKernel(b, kF32ToBF16Kernel, b.getF32Type(),
                                  b.getBF16Type());
      gpuModule->setAttr(
          "hybrid.conversions",
          b.getDictionaryAttr(
              {b.getNamedAttr("bf16_to_f32", b.getStringAttr(kBF16ToF32Kernel)),
               b.getNamedAttr("f32_to_bf16",
                              b.getStringAttr(kF32ToBF16Kernel))}));
    }

    // The module gets its gpu.module even without attention layers (an
    // all-recurrent schedule): the artifacts then hold PTX without entries.
    for (auto [kernel, op] : *kernels) {
      AttentionSignature sig = AttentionSignature::get(op);
      int64_t tile = op.getKTile().value_or(kTile);
      if (std::optional<std::string> reason =
              getUnsupportedReason(sig, tile, warpRows, warps, instructions)) {
        op.emitOpError() << *reason;
        return signalPassFailure();
      }
      std::string name = cast<SymbolOpInterface>(kernel).getName().str();
      b.setLoc(kernel->getLoc());
      bool wgmma = instructions == TensorCores::Wgmma;
      tile = getFlashKeyTile(tile, sig.headDim, sig.vHeadDim, sharedMemory,
                             /*swizzled=*/wgmma, tma, stages);
      int64_t sharedBytes =
          FlashSharedLayout::get(tile, sig.headDim, getValueSlice(sig.vHeadDim),
                                 wgmma, tma, stages)
              .bytes;
      if (sharedBytes > sharedMemory) {
        op.emitOpError() << "the flash kernel's K and V tiles need "
                         << sharedBytes << " bytes of shared memory at " << tile
                         << " keys, over shared-memory="
                         << int64_t(sharedMemory);
        return signalPassFailure();
      }
      int64_t mTiles = warpRows / 16;
      FlashKernelOptions flashOptions;
      flashOptions.keyTile = tile;
      flashOptions.mTiles = mTiles;
      flashOptions.warps = warps;
      flashOptions.tensorCores = instructions;
      flashOptions.tma = tma;
      flashOptions.stages = stages;
      flashOptions.rescaleThreshold = rescaleThreshold;
      flashOptions.overlapSoftmax = softmaxOverlap;
      auto flash = emitFlashKernel(b, name, sig, flashOptions);
      if (tma)
        flash->setAttr("hybrid.tma", b.getUnitAttr());
      flash->setAttr("hybrid.q_tile",
                     b.getI64IntegerAttr(getQueryTile(
                         sig.groupSize(), getFlashRows(warps, mTiles))));
      flash->setAttr("hybrid.k_tile", b.getI64IntegerAttr(tile));
      flash->setAttr(
          "hybrid.value_slices",
          b.getI64IntegerAttr(sig.vHeadDim / getValueSlice(sig.vHeadDim)));
      if (minCtasPerSM > 0)
        flash->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                       b.getI32IntegerAttr(minCtasPerSM));
      emitPrepareKernel(b, name, sig, /*forQueries=*/true);
      emitPrepareKernel(b, name, sig, /*forQueries=*/false);
      emitConvertKernel(b, name, sig);
      // Decoding extends a causal context; a bidirectional layer has none.
      if (sig.mask.getCausal()) {
        auto decode = emitDecodeKernel(b, name + "_decode", sig);
        decode->setAttr("hybrid.q_tile", b.getI64IntegerAttr(1));
        emitCombineKernel(b, name + "_decode_combine", sig);
      }
      kernel->erase();
    }
  }
};
} // namespace
