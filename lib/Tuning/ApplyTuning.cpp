//===- ApplyTuning.cpp - Tile sizes from a tuning database onto kernels ---===//

#include "hybrid/Tuning/ApplyTuning.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

using namespace mlir;
using namespace hybrid;

std::string hybrid::getKernelSignature(AttentionOp op) {
  auto q = cast<RankedTensorType>(op.getQuery().getType());
  auto k = cast<RankedTensorType>(op.getKey().getType());
  auto v = cast<RankedTensorType>(op.getValue().getType());
  MaskAttr mask = op.getMask();
  std::string s = "h" + std::to_string(q.getDimSize(2)) + ".kv" +
                  std::to_string(k.getDimSize(2)) + ".d" +
                  std::to_string(q.getDimSize(3)) + ".dv" +
                  std::to_string(v.getDimSize(3)) + "." +
                  stringifyMaskKind(mask.getKind()).str();
  if (mask.getWindow())
    s += ".w" + std::to_string(mask.getWindow());
  if (mask.getChunk())
    s += ".c" + std::to_string(mask.getChunk());
  s += mask.getCausal() ? ".causal" : ".bidirectional";
  if (op.getScore().getSoftcap() != 0)
    s += ".softcap";
  return s;
}

FailureOr<std::vector<TuningDecision>>
hybrid::applyTuning(ModuleOp module, const TuningDatabase &database,
                    StringRef target, int64_t seqLen) {
  std::vector<TuningDecision> decisions;
  WalkResult walk = WalkResult::advance();
  for (auto func : module.getOps<func::FuncOp>()) {
    walk = func.walk([&](AttentionOp op) {
      TuningDecision d;
      d.kernel = func.getSymName().str();
      d.signature = getKernelSignature(op);
      d.entry = database.lookup(target, d.signature, seqLen);
      if (d.entry) {
        Builder b(op.getContext());
        // A GPU kernel's query tile follows from its variant.
        if (d.entry->gpu) {
          GPUKernelAttr variant = d.entry->gpu->getAttr(op.getContext(), [&] {
            return op.emitError() << "tuning entry " << d.entry->kernel << " ("
                                  << d.entry->target << ", bucket "
                                  << d.entry->seqBucket << "): gpu: ";
          });
          if (!variant)
            return WalkResult::interrupt();
          op.setGpuKernelAttr(variant);
        } else {
          op.setQTileAttr(b.getI64IntegerAttr(d.entry->qTile));
        }
        op.setKTileAttr(b.getI64IntegerAttr(d.entry->kTile));
      }
      decisions.push_back(std::move(d));
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return failure();
  }
  return decisions;
}
