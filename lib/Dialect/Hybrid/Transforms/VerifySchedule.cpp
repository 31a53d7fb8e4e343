//===- VerifySchedule.cpp - Whole-schedule semantic checks --------------===//

#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDVERIFYSCHEDULE
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h.inc"
} // namespace hybrid

using namespace mlir;
using namespace hybrid;

/// Checks that `layer`'s cache keeps every key its mask can show.
static LogicalResult verifyCacheAgainstMask(int64_t index, LayerOp layer) {
  std::optional<CacheAttr> cache = layer.getCache();
  if (!cache || !layer.getMask())
    return success();
  MaskAttr mask = *layer.getMask();
  auto fail = [&]() -> InFlightDiagnostic {
    return layer.emitOpError() << "(layer " << index << ") ";
  };
  switch (cache->getPolicy()) {
  case CachePolicy::ring:
    if (!mask.getCausal() || mask.getKind() != MaskKind::sliding_window)
      return fail() << "ring cache needs a causal sliding_window mask: it "
                       "would drop keys the mask shows";
    if (cache->getWindow() < mask.getWindow())
      return fail() << "ring cache of " << cache->getWindow()
                    << " tokens is smaller than the mask window of "
                    << mask.getWindow();
    return success();
  case CachePolicy::chunk:
    if (!mask.getCausal() || mask.getKind() != MaskKind::chunked)
      return fail() << "chunk cache needs a causal chunked mask: it would "
                       "drop keys the mask shows";
    if (cache->getChunk() != mask.getChunk())
      return fail() << "chunk cache of " << cache->getChunk()
                    << " tokens differs from the mask chunk of "
                    << mask.getChunk();
    return success();
  default:
    return success();
  }
}

namespace {
struct VerifySchedulePass
    : public hybrid::impl::HybridVerifyScheduleBase<VerifySchedulePass> {
  void runOnOperation() override {
    ScheduleOp schedule = getOperation();
    if (schedule.getNumLayers() == 0) {
      schedule.emitOpError("has no layers");
      return signalPassFailure();
    }
    std::optional<int64_t> context = schedule.getMaxPosition();
    SmallVector<LayerOp> layers;
    LogicalResult result =
        schedule.walkLayers([&](int64_t index, LayerOp layer) -> LogicalResult {
          layers.push_back(layer);
          if (std::optional<MaskAttr> mask = layer.getMask(); mask && context) {
            int64_t span = std::max(mask->getWindow(), mask->getChunk());
            if (span > *context)
              return layer.emitOpError()
                     << "(layer " << index << ") mask span of " << span
                     << " tokens is larger than the context (max_position = "
                     << *context << ")";
          }
          if (failed(verifyCacheAgainstMask(index, layer)))
            return failure();
          std::optional<CacheAttr> cache = layer.getCache();
          if (cache && cache->getPolicy() == CachePolicy::shared) {
            std::optional<CacheAttr> sourceCache =
                layers[cache->getSourceLayer()].getCache();
            if (sourceCache && (sourceCache->getPolicy() == CachePolicy::shared ||
                                sourceCache->getPolicy() == CachePolicy::none))
              return layer.emitOpError()
                     << "(layer " << index << ") shares the cache of layer "
                     << cache->getSourceLayer()
                     << ", which stores no cache of its own";
          }
          return success();
        });
    if (failed(result))
      signalPassFailure();
  }
};
} // namespace
