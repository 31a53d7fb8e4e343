//===- HybridAttrs.cpp - Hybrid attribute verifiers and helpers ---------===//

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"
#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdlib>

#include <algorithm>

using namespace mlir;
using namespace hybrid;

#include "hybrid/Dialect/Hybrid/IR/HybridEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.cpp.inc"

void HybridDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.cpp.inc"
      >();
}

FailureOr<bool> hybrid::parseBoolParameter(AsmParser &parser) {
  if (succeeded(parser.parseOptionalKeyword("true")))
    return true;
  if (succeeded(parser.parseOptionalKeyword("false")))
    return false;
  return parser.emitError(parser.getCurrentLocation(),
                          "expected 'true' or 'false'");
}

void hybrid::printReal(AsmPrinter &printer, double value) {
  std::string text;
  if (value == std::trunc(value) && std::abs(value) < 1e15) {
    text = llvm::formatv("{0:F1}", value).str();
  } else {
    for (int precision = 1; precision <= 17; ++precision) {
      text = llvm::formatv("{0}", llvm::format("%.*g", precision, value)).str();
      if (std::strtod(text.c_str(), nullptr) == value)
        break;
    }
    // MLIR float literals need a '.' before any exponent.
    if (std::isfinite(value) && text.find('.') == std::string::npos)
      text.insert(std::min(text.find('e'), text.size()), ".0");
  }
  printer << text;
}

int64_t hybrid::getStorageBytes(StorageType type) {
  switch (type) {
  case StorageType::f32:
    return 4;
  case StorageType::f16:
  case StorageType::bf16:
    return 2;
  case StorageType::f8:
    return 1;
  }
  llvm_unreachable("unknown storage type");
}

//===----------------------------------------------------------------------===//
// MaskAttr
//===----------------------------------------------------------------------===//

LogicalResult MaskAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               MaskKind kind, int64_t window, int64_t chunk,
                               bool causal) {
  if (kind == MaskKind::sliding_window && window <= 0)
    return emitError() << "sliding_window mask needs a positive window, got "
                       << window;
  if (kind != MaskKind::sliding_window && window != 0)
    return emitError() << "window is only meaningful for a sliding_window mask";
  if (kind == MaskKind::chunked && chunk <= 0)
    return emitError() << "chunked mask needs a positive chunk, got " << chunk;
  if (kind != MaskKind::chunked && chunk != 0)
    return emitError() << "chunk is only meaningful for a chunked mask";
  return success();
}

bool MaskAttr::isVisible(int64_t queryPos, int64_t keyPos) const {
  if (getCausal() && keyPos > queryPos)
    return false;
  switch (getKind()) {
  case MaskKind::full:
    return true;
  case MaskKind::sliding_window:
    return std::abs(queryPos - keyPos) < getWindow();
  case MaskKind::chunked:
    return keyPos / getChunk() == queryPos / getChunk();
  }
  llvm_unreachable("unknown mask kind");
}

std::pair<int64_t, int64_t> MaskAttr::getKeyRange(int64_t queryPos,
                                                  int64_t numKeys) const {
  int64_t begin = 0, end = numKeys;
  if (getCausal())
    end = std::min(end, queryPos + 1);
  switch (getKind()) {
  case MaskKind::full:
    break;
  case MaskKind::sliding_window:
    begin = std::max<int64_t>(0, queryPos - getWindow() + 1);
    end = std::min(end, queryPos + getWindow());
    break;
  case MaskKind::chunked: {
    int64_t chunkBegin = queryPos / getChunk() * getChunk();
    begin = chunkBegin;
    end = std::min(end, chunkBegin + getChunk());
    break;
  }
  }
  return {begin, std::max(begin, end)};
}

//===----------------------------------------------------------------------===//
// Positional encodings
//===----------------------------------------------------------------------===//

LogicalResult
RopeScalingAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                        RopeScalingKind kind, Real factor,
                        int64_t originalMaxPosition, Real lowFreqFactor,
                        Real highFreqFactor, Real betaFast, Real betaSlow,
                        Real attentionFactor, bool truncate) {
  if (!(factor > 0))
    return emitError() << "rope scaling factor must be positive, got "
                       << double(factor);
  if (originalMaxPosition < 0)
    return emitError() << "original_max_position must not be negative";
  if (kind == RopeScalingKind::llama3) {
    if (originalMaxPosition == 0)
      return emitError() << "llama3 rope scaling needs original_max_position";
    if (!(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor))
      return emitError() << "llama3 rope scaling needs 0 < low_freq_factor < "
                            "high_freq_factor";
  }
  if (kind == RopeScalingKind::yarn && originalMaxPosition == 0)
    return emitError() << "yarn rope scaling needs original_max_position";
  if (kind != RopeScalingKind::llama3 &&
      (lowFreqFactor != 0 || highFreqFactor != 0))
    return emitError() << "low_freq_factor and high_freq_factor belong to "
                          "llama3 rope scaling";
  if (kind != RopeScalingKind::yarn &&
      (betaFast != 0 || betaSlow != 0 || attentionFactor != 0))
    return emitError()
           << "beta_fast, beta_slow and attention_factor belong to yarn";
  if (kind != RopeScalingKind::yarn && !truncate)
    return emitError() << "truncate belongs to yarn";
  return success();
}

LogicalResult
PositionalAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                       PositionalKind kind, Real theta, int64_t rotaryDim,
                       Real fraction, RopeScalingAttr scaling, bool interleaved,
                       int64_t rotaryOffset) {
  if (kind == PositionalKind::none) {
    if (theta != 0 || rotaryDim != 0 || fraction != 0 || scaling ||
        interleaved || rotaryOffset != 0)
      return emitError() << "positional kind none takes no parameters";
    return success();
  }
  if (!(theta > 0))
    return emitError() << "rotary positional encoding needs a positive theta";
  if (kind == PositionalKind::partial) {
    if (rotaryDim <= 0 || rotaryDim % 2 != 0)
      return emitError() << "partial rotary encoding needs a positive even "
                            "rotary_dim, got "
                         << rotaryDim;
    if (rotaryOffset < 0 || rotaryOffset % 2 != 0)
      return emitError() << "partial rotary encoding needs a non-negative "
                            "even rotary_offset, got "
                         << rotaryOffset;
  } else if (rotaryDim != 0 || rotaryOffset != 0) {
    return emitError() << (rotaryDim != 0 ? "rotary_dim" : "rotary_offset")
                       << " is only meaningful for partial rotary";
  }
  if (kind == PositionalKind::proportional) {
    if (!(fraction > 0 && fraction <= 1))
      return emitError() << "proportional rotary encoding needs a fraction in "
                            "(0, 1], got "
                         << double(fraction);
  } else if (fraction != 0) {
    return emitError() << "fraction is only meaningful for proportional rotary";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Score modifiers
//===----------------------------------------------------------------------===//

LogicalResult
TemperatureTuningAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                              Real floorScale, Real attnScale, int64_t offset) {
  if (!(floorScale > 0))
    return emitError() << "temperature floor_scale must be positive";
  if (!(attnScale >= 0))
    return emitError() << "temperature attn_scale must not be negative";
  if (offset != 0 && offset != 1)
    return emitError() << "temperature offset must be 0 or 1, got " << offset;
  return success();
}

LogicalResult ScoreAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                Real scale, Real softcap, bool sinks,
                                TemperatureTuningAttr temperature) {
  if (!(scale > 0) || !std::isfinite(double(scale)))
    return emitError() << "score scale must be positive and finite, got "
                       << double(scale);
  if (softcap < 0 || !std::isfinite(double(softcap)))
    return emitError() << "softcap must be positive when set, got "
                       << double(softcap);
  return success();
}

//===----------------------------------------------------------------------===//
// Kernel variants
//===----------------------------------------------------------------------===//

StringRef hybrid::getTensorCoresName(TensorCores tensorCores) {
  return tensorCores == TensorCores::Wgmma ? "wgmma" : "mma.sync";
}

std::optional<TensorCores> hybrid::parseTensorCoresName(StringRef name) {
  for (TensorCores value : {TensorCores::MmaSync, TensorCores::Wgmma})
    if (name == getTensorCoresName(value))
      return value;
  return std::nullopt;
}

int64_t hybrid::getFlashValueSlice(int64_t vHeadDim, int64_t maxSlice,
                                   TensorCores tensorCores) {
  int64_t granule = tensorCores == TensorCores::Wgmma ? 64 : 16;
  for (int64_t slice = std::min(vHeadDim, maxSlice) / granule * granule;
       slice > 0; slice -= granule)
    if (vHeadDim % slice == 0)
      return slice;
  return 0;
}

int64_t GPUKernelAttr::getValueSliceOf(int64_t vHeadDim) const {
  return getFlashValueSlice(vHeadDim, getValueSlice(), getTensorCores());
}

LogicalResult GPUKernelAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, TensorCores tensorCores,
    bool tma, int64_t warps, int64_t warpRows, int64_t stages,
    bool softmaxOverlap, bool warpSpecialized, bool pingPong,
    Real rescaleThreshold, int64_t minCtasPerSM, int64_t valueSlice) {
  bool wgmma = tensorCores == TensorCores::Wgmma;
  if (warps != 4 && warps != 8)
    return emitError() << "warps must be 4 or 8 (warps per flash CTA), got "
                       << warps;
  if (warpRows != 16 && warpRows != 32)
    return emitError() << "warp_rows must be 16 or 32 (one or two mma tiles "
                          "per warp), got "
                       << warpRows;
  if (wgmma && warpRows != 16)
    return emitError() << "tensor_cores = wgmma takes warp_rows 16 (each four "
                          "warps are one 64-row warpgroup), got "
                       << warpRows;
  if (tma && !wgmma)
    return emitError() << "tma: TMA writes the swizzled tiles only the wgmma "
                          "kernels read; needs tensor_cores = wgmma";
  if (stages < 1 || stages > 4)
    return emitError() << "stages must be 1 to 4, got " << stages;
  if (stages > 1 && !tma)
    return emitError() << "stages = " << stages
                       << ": tiles ahead of the current one are loaded by "
                          "TMA; needs tma";
  if (softmaxOverlap && stages < 2)
    return emitError() << "softmax_overlap: the tiles of two key tiles are in "
                          "use at once; needs tma and stages >= 2";
  if (warpSpecialized && stages < 2)
    return emitError() << "warp_specialized: the producer warp loads tiles "
                          "ahead into stages the compute warps free; needs "
                          "tma and stages >= 2";
  if (pingPong && !(warpSpecialized && softmaxOverlap && warps == 8))
    return emitError() << "ping_pong: two warpgroups take turns issuing "
                          "their overlapped products, with no CTA barrier "
                          "between them; needs warps = 8, softmax_overlap "
                          "and warp_specialized";
  if (!(rescaleThreshold >= 0 && rescaleThreshold <= 32)) {
    std::string shown;
    llvm::raw_string_ostream(shown)
        << llvm::format("%g", double(rescaleThreshold));
    return emitError() << "rescale_threshold must be 0 to 32 (powers of two), "
                          "got "
                       << shown;
  }
  if (minCtasPerSM < 0)
    return emitError() << "min_ctas_per_sm must be 0 (none) or more, got "
                       << minCtasPerSM;
  // Up to 256 value dims' accumulators (64 registers per thread); wgmma's
  // B tiles are 64-element swizzled rows.
  int64_t granule = wgmma ? 64 : 16;
  if (valueSlice < granule || valueSlice > 256 || valueSlice % granule != 0)
    return emitError() << "value_slice must be a multiple of " << granule
                       << " from " << granule << " to 256"
                       << (wgmma ? " with tensor_cores = wgmma" : "")
                       << ", got " << valueSlice;
  return success();
}

//===----------------------------------------------------------------------===//
// Caches and states
//===----------------------------------------------------------------------===//

LogicalResult CacheAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                CachePolicy policy, int64_t window,
                                int64_t chunk, int64_t sourceLayer, bool kEqV,
                                bool latent) {
  if (policy == CachePolicy::ring && window <= 0)
    return emitError() << "ring cache needs a positive window, got " << window;
  if (policy != CachePolicy::ring && window != 0)
    return emitError() << "window is only meaningful for a ring cache";
  if (policy == CachePolicy::chunk && chunk <= 0)
    return emitError() << "chunk cache needs a positive chunk, got " << chunk;
  if (policy != CachePolicy::chunk && chunk != 0)
    return emitError() << "chunk is only meaningful for a chunk cache";
  if (policy == CachePolicy::shared && sourceLayer < 0)
    return emitError() << "shared cache needs a source_layer";
  if (policy != CachePolicy::shared && sourceLayer != -1)
    return emitError() << "source_layer is only meaningful for a shared cache";
  if (policy == CachePolicy::none && (kEqV || latent))
    return emitError() << (kEqV ? "k_eq_v" : "latent")
                       << " needs a cache to store";
  if (kEqV && latent)
    return emitError() << "k_eq_v (values only) and latent (keys only) "
                          "exclude each other";
  return success();
}

CacheAttr hybrid::getImpliedCache(MLIRContext *ctx, MaskAttr mask, bool kEqV,
                                  bool latent) {
  const int64_t unset = 0, noSource = -1;
  if (!mask)
    return CacheAttr::get(ctx, CachePolicy::none, unset, unset, noSource, false,
                          false);
  if (mask.getCausal() && mask.getKind() == MaskKind::sliding_window)
    return CacheAttr::get(ctx, CachePolicy::ring, mask.getWindow(), unset,
                          noSource, kEqV, latent);
  if (mask.getCausal() && mask.getKind() == MaskKind::chunked)
    return CacheAttr::get(ctx, CachePolicy::chunk, unset, mask.getChunk(),
                          noSource, kEqV, latent);
  return CacheAttr::get(ctx, CachePolicy::full, unset, unset, noSource, kEqV,
                        latent);
}

LogicalResult StateAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                int64_t recurrent, int64_t conv) {
  if (recurrent < 0 || conv < 0)
    return emitError() << "state sizes must not be negative";
  return success();
}

LogicalResult
CachePlanAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                      int64_t bytesPerToken, int64_t tokens, int64_t stateBytes,
                      int64_t bytes) {
  if (bytesPerToken < 0 || tokens < 0 || stateBytes < 0)
    return emitError() << "cache plan sizes must not be negative";
  if (bytes != bytesPerToken * tokens + stateBytes)
    return emitError() << "cache plan bytes must equal bytes_per_token * "
                          "tokens + state_bytes";
  return success();
}

LogicalResult
CacheSummaryAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                         int64_t maxSeq, StorageType storage, int64_t total,
                         int64_t allFullBaseline) {
  if (maxSeq <= 0)
    return emitError() << "cache summary needs a positive max_seq";
  if (total < 0 || allFullBaseline < 0)
    return emitError() << "cache summary sizes must not be negative";
  return success();
}
