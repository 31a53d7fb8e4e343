//===- PlanCaches.cpp - Choose and size each layer's cache --------------===//

#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "mlir/IR/Builders.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDPLANCACHES
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h.inc"
} // namespace hybrid

using namespace mlir;
using namespace hybrid;

namespace {
struct PlanCachesPass
    : public hybrid::impl::HybridPlanCachesBase<PlanCachesPass> {
  using Base::Base;

  void runOnOperation() override {
    ScheduleOp schedule = getOperation();
    MLIRContext *ctx = &getContext();
    int64_t context =
        maxSeq > 0 ? int64_t(maxSeq) : schedule.getMaxPosition().value_or(0);
    if (context <= 0) {
      schedule.emitOpError("has no max_position: give the pass a max-seq");
      return signalPassFailure();
    }
    std::optional<int64_t> modelContext = schedule.getMaxPosition();
    if (modelContext && context > *modelContext) {
      schedule.emitOpError() << "cannot plan caches for " << context
                             << " tokens: the model's context is "
                             << *modelContext << " (max_position)";
      return signalPassFailure();
    }
    int64_t elementBytes = getStorageBytes(storage);
    int64_t total = 0, baseline = 0;
    (void)schedule.walkLayers([&](int64_t, LayerOp layer) {
      CacheAttr cache = layer.getCacheAttr();
      if (!cache) {
        cache = getImpliedCache(ctx, layer.hasAttention() ? *layer.getMask()
                                                          : MaskAttr());
        layer.setCacheAttr(cache);
      }
      int64_t stateBytes = 0;
      if (StateAttr state = layer.getStateAttr())
        stateBytes = (state.getRecurrent() + state.getConv()) * elementBytes;

      // Keys and values of one token; K=V layers one tensor (the values:
      // the kernels derive keys from them), latent layers too (the keys,
      // whose first dims are the values).
      int64_t fullBytesPerToken = 0;
      if (layer.hasAttention())
        fullBytesPerToken = *layer.getNumKvHeads() *
                            (*layer.getHeadDim() + layer.getValueHeadDim()) *
                            elementBytes;
      int64_t bytesPerToken = 0, tokens = 0;
      switch (cache.getPolicy()) {
      case CachePolicy::full:
        tokens = context;
        break;
      case CachePolicy::ring:
        tokens = std::min(cache.getWindow(), context);
        break;
      case CachePolicy::chunk:
        tokens = std::min(cache.getChunk(), context);
        break;
      case CachePolicy::shared:
      case CachePolicy::none:
        break;
      }
      if (tokens > 0)
        bytesPerToken =
            cache.getKEqV() || cache.getLatent()
                ? *layer.getNumKvHeads() * *layer.getHeadDim() * elementBytes
                : fullBytesPerToken;
      int64_t bytes = bytesPerToken * tokens + stateBytes;
      layer.setCachePlanAttr(
          CachePlanAttr::get(ctx, bytesPerToken, tokens, stateBytes, bytes));
      total += bytes;
      baseline += fullBytesPerToken * context + stateBytes;
      return success();
    });
    schedule.setCacheSummaryAttr(
        CacheSummaryAttr::get(ctx, context, storage, total, baseline));
  }
};
} // namespace
