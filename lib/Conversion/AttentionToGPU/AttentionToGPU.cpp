//===- AttentionToGPU.cpp - hybrid.attention kernels to NVIDIA GPUs ------===//

#include "GPUKernelEmitter.h"
#include "hybrid/Conversion/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace hybrid {
#define GEN_PASS_DEF_CONVERTHYBRIDATTENTIONTOGPU
#include "hybrid/Conversion/Passes.h.inc"
} // namespace hybrid

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

/// Why the GPU kernels cannot compute `sig` with `keyTile` and `variant`
/// (valid by itself: GPUKernelAttr::verify) on `chip` (empty: any), if they
/// cannot.
static std::optional<std::string>
getUnsupportedReason(const AttentionSignature &sig, int64_t keyTile,
                     GPUKernelAttr variant, StringRef chip) {
  if (sig.valuesInKeys)
    return "latent caches (values read from the keys) are not supported by "
           "the GPU kernels yet; compile for the CPU";
  bool wgmma = variant.getTensorCores() == TensorCores::Wgmma;
  if (wgmma && !chip.empty() && chip != "sm_90a")
    return ("tensor_cores = wgmma is an sm_90a instruction; the kernels are "
            "for " +
            chip + "; use mma.sync")
        .str();
  // wgmma's B tiles are 64-element swizzled rows.
  if (wgmma && (sig.headDim % 64 != 0 || sig.vHeadDim % 64 != 0))
    return "tensor-cores=wgmma needs head dims that are multiples of 64 "
           "(128-byte swizzled tiles), got " +
           std::to_string(sig.headDim) + " and " +
           std::to_string(sig.vHeadDim) + "; use mma.sync";
  if (sig.headDim % 16 != 0 || sig.vHeadDim % 16 != 0 || sig.headDim > 512 ||
      sig.vHeadDim > 512)
    return "head dims must be multiples of 16 up to 512 for the GPU "
           "kernels (mma.sync m16n8k16), got " +
           std::to_string(sig.headDim) + " and " + std::to_string(sig.vHeadDim);
  // A flash CTA's rows hold at least one position of every head of a GQA
  // group.
  int64_t rows = getFlashRows(variant.getWarps(), variant.getWarpRows() / 16);
  if (sig.groupSize() > rows)
    return "the GPU kernels take at most " + std::to_string(rows) +
           " query heads per kv head (the rows of a flash CTA), got " +
           std::to_string(sig.groupSize());
  // The decode kernel keeps the query rows it serves of a kv head (8 at
  // most) and their probabilities for a 128-key tile in static shared
  // memory, beside its row indices, reduction scratch, the key subsets'
  // value sums and (K=V) the key scale and a tile's angles: under 30 KB at
  // head dims 512, so always within 48 KB.
  int64_t decodeRows = getDecodeRowsPerCta(sig.groupSize());
  [[maybe_unused]] int64_t decodeBytes =
      decodeRows * (sig.headDim + kThreads) * 4 + kThreads * 8 +
      (kThreads / kThreadsPerWarp) * decodeRows * 4 +
      kThreads / (sig.vHeadDim / 8) * sig.vHeadDim * 4 +
      (sig.derivesKeys ? sig.headDim * 8 : 0);
  assert(decodeBytes <= 48 * 1024 && "decode kernel's static shared memory");
  if (keyTile <= 0 || keyTile % 16 != 0)
    return "k-tile must be a positive multiple of 16 for the GPU kernels, "
           "got " +
           std::to_string(keyTile);
  if (wgmma && keyTile > 256)
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

    // The options' variant, for ops without a #hybrid.gpu_kernel of their
    // own; checked as that attribute is.
    std::optional<TensorCores> instructions = parseTensorCoresName(tensorCores);
    if (!instructions) {
      module.emitError() << "tensor-cores must be mma.sync or wgmma, got '"
                         << tensorCores << "'";
      return signalPassFailure();
    }
    GPUKernelAttr defaultVariant = GPUKernelAttr::getChecked(
        [&] { return module.emitError(); }, module.getContext(), *instructions,
        bool(tma), int64_t(warps), int64_t(warpRows), int64_t(stages),
        bool(softmaxOverlap), bool(warpSpecialized), bool(pingPong),
        Real(rescaleThreshold), int64_t(minCtasPerSM), int64_t(valueSlice));
    if (!defaultVariant)
      return signalPassFailure();
    ImplicitLocOpBuilder b(module.getLoc(), module.getContext());
    module->setAttr(mlir::gpu::GPUDialect::getContainerModuleAttrName(),
                    b.getUnitAttr());
    b.setInsertionPointToEnd(module.getBody());
    auto gpuModule = mlir::gpu::GPUModuleOp::create(b, "kernels");
    b.setInsertionPointToStart(gpuModule.getBody());
    // bf16 tensors at the runtime's API convert through these (a schedule
    // without attention layers has no operands to convert).
    if (!kernels->empty()) {
      // The manifest's tables of these kernels' names by role.
      auto setRoles =
          [&](StringRef attr,
              ArrayRef<std::pair<StringRef, StringRef>> kernelsByRole) {
            SmallVector<NamedAttribute> roles;
            for (auto [role, kernel] : kernelsByRole)
              roles.push_back(b.getNamedAttr(role, b.getStringAttr(kernel)));
            gpuModule->setAttr(attr, b.getDictionaryAttr(roles));
          };
      emitElementConversionKernel(b, kBF16ToF32Kernel, b.getBF16Type(),
                                  b.getF32Type());
      emitElementConversionKernel(b, kF32ToBF16Kernel, b.getF32Type(),
                                  b.getBF16Type());
      setRoles("hybrid.conversions", {{"bf16_to_f32", kBF16ToF32Kernel},
                                      {"f32_to_bf16", kF32ToBF16Kernel}});
      // Sessions' caches and lengths on the device, for every layer.
      emitStoreRowsKernel(b, kStoreRowsKernel);
      emitAdvanceLengthKernel(b, kAdvanceLengthKernel);
      setRoles("hybrid.cache_kernels",
               {{"store_rows", kStoreRowsKernel},
                {"advance_length", kAdvanceLengthKernel}});
    }

    // The module gets its gpu.module even without attention layers (an
    // all-recurrent schedule): the artifacts then hold PTX without entries.
    for (auto [kernel, op] : *kernels) {
      AttentionSignature sig = AttentionSignature::get(op);
      GPUKernelAttr variant = op.getGpuKernelAttr();
      if (!variant)
        variant = defaultVariant;
      int64_t tile = op.getKTile().value_or(kTile);
      if (std::optional<std::string> reason =
              getUnsupportedReason(sig, tile, variant, chip)) {
        op.emitOpError() << *reason;
        return signalPassFailure();
      }
      std::string name = cast<SymbolOpInterface>(kernel).getName().str();
      b.setLoc(kernel->getLoc());
      FlashKernelOptions flashOptions;
      flashOptions.mTiles = variant.getWarpRows() / 16;
      flashOptions.warps = variant.getWarps();
      flashOptions.tensorCores = variant.getTensorCores();
      flashOptions.tma = variant.getTma();
      flashOptions.stages = variant.getStages();
      flashOptions.rescaleThreshold = variant.getRescaleThreshold();
      flashOptions.overlapSoftmax = variant.getSoftmaxOverlap();
      flashOptions.warpSpecialized = variant.getWarpSpecialized();
      flashOptions.pingPong = variant.getPingPong();
      flashOptions.valueSlice = variant.getValueSliceOf(sig.vHeadDim);
      bool wgmma = flashOptions.tensorCores == TensorCores::Wgmma;
      // An op's own k_tile (the tuner's) is halved only until the chip holds
      // it; the options' until it fits their budget per stage times the
      // op's stages.
      int64_t chip = chipSharedMemory > 0 ? chipSharedMemory : sharedMemory;
      bool ownTile = op.getKTile().has_value();
      int64_t budget =
          ownTile ? chip
                  : std::min<int64_t>(sharedMemory * flashOptions.stages, chip);
      tile = getFlashKeyTile(tile, sig.headDim, flashOptions.valueSlice, budget,
                             /*swizzled=*/wgmma, flashOptions.tma,
                             flashOptions.stages, flashOptions.warpSpecialized);
      int64_t sharedBytes =
          FlashSharedLayout::get(tile, sig.headDim, flashOptions.valueSlice,
                                 wgmma, flashOptions.tma, flashOptions.stages,
                                 flashOptions.warpSpecialized)
              .bytes;
      if (sharedBytes > budget) {
        op.emitOpError() << "the flash kernel's K and V tiles need "
                         << sharedBytes << " bytes of shared memory at " << tile
                         << " keys, over the " << budget << " available ("
                         << (ownTile ? "chip-shared-memory" : "shared-memory")
                         << ")";
        return signalPassFailure();
      }
      flashOptions.keyTile = tile;
      // The flash kernel, its twin writing bf16 rows (`_out_bf16`), which
      // bf16 outputs take, and for causal layers (which have the decode
      // combine kernel) its split-K twin (`_split`), which launches of few
      // query tiles take.
      struct Twin {
        const char *suffix;
        bool bf16Output, splitKeys;
      };
      SmallVector<Twin> twins = {{"", false, false},
                                 {"_out_bf16", true, false}};
      if (sig.mask.getCausal())
        twins.push_back({"_split", false, true});
      for (const Twin &twin : twins) {
        flashOptions.bf16Output = twin.bf16Output;
        flashOptions.splitKeys = twin.splitKeys;
        auto flash = emitFlashKernel(b, name + twin.suffix, sig, flashOptions);
        if (flashOptions.tma)
          flash->setAttr("hybrid.tma", b.getUnitAttr());
        flash->setAttr(
            "hybrid.q_tile",
            b.getI64IntegerAttr(getQueryTile(
                sig.groupSize(),
                getFlashRows(flashOptions.warps, flashOptions.mTiles))));
        flash->setAttr("hybrid.k_tile", b.getI64IntegerAttr(tile));
        flash->setAttr(
            "hybrid.value_slices",
            b.getI64IntegerAttr(sig.vHeadDim / flashOptions.valueSlice));
        if (variant.getMinCtasPerSm() > 0)
          flash->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                         b.getI32IntegerAttr(variant.getMinCtasPerSm()));
        // What it was built as, for the manifest (and the tuner's records).
        flash->setAttr("hybrid.gpu_kernel", variant);
      }
      for (bool fromBF16 : {false, true}) {
        emitPrepareKernel(b, name, sig, /*forQueries=*/true, fromBF16);
        emitPrepareKernel(b, name, sig, /*forQueries=*/false, fromBF16);
      }
      emitConvertKernel(b, name, sig);
      // Decoding extends a causal context; a bidirectional layer has none.
      if (sig.mask.getCausal()) {
        for (bool fromBF16 : {false, true})
          emitPrepareStepKernel(b, name, sig, fromBF16);
        auto decode =
            emitDecodeKernel(b, name + "_decode", sig, /*bf16Output=*/false);
        emitDecodeKernel(b, name + "_decode_bf16", sig, /*bf16Output=*/true);
        decode->setAttr("hybrid.q_tile", b.getI64IntegerAttr(1));
        // K=V: the caches keep values only (the manifest's derives_keys);
        // flash steps over them read keys derived into scratch first.
        if (sig.derivesKeys) {
          decode->setAttr(kKEqVAttrName, b.getUnitAttr());
          emitDeriveKeysKernel(b, name, sig);
        }
        emitCombineKernel(b, name + "_decode_combine", sig,
                          /*bf16Output=*/false);
        emitCombineKernel(b, name + "_decode_combine_bf16", sig,
                          /*bf16Output=*/true);
      }
      kernel->erase();
    }
  }
};
} // namespace
