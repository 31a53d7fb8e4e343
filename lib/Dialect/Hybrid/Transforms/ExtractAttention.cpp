//===- ExtractAttention.cpp - One attention kernel per layer signature --===//

#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDEXTRACTATTENTION
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h.inc"
} // namespace hybrid

using namespace mlir;
using namespace hybrid;

static Type getElementType(MLIRContext *ctx, StorageType type) {
  switch (type) {
  case StorageType::f32:
    return Float32Type::get(ctx);
  case StorageType::f16:
    return Float16Type::get(ctx);
  case StorageType::bf16:
    return BFloat16Type::get(ctx);
  case StorageType::f8:
    break;
  }
  llvm_unreachable("kernels are f32, f16 or bf16");
}

/// True if `layer`'s cache keeps its values only, its keys being derived
/// from them (K=V layers and the layers reading their caches).
static bool derivesKeys(LayerOp layer) {
  CacheAttr cache = layer.getCacheAttr();
  return cache && cache.getKEqV();
}

/// True if `layer`'s values are its keys' first dims (latent caches).
static bool readsValuesFromKeys(LayerOp layer) {
  CacheAttr cache = layer.getCacheAttr();
  return cache && cache.getLatent();
}

/// Everything that makes two layers' attention differ; uniqued, so two
/// layers share a kernel exactly when their signatures are the same attribute.
/// K=V layers read their caches otherwise (keys derived at each step), latent
/// layers their values (from the keys).
static ArrayAttr getSignature(LayerOp layer) {
  Builder b(layer.getContext());
  return b.getArrayAttr({b.getI64IntegerAttr(*layer.getNumHeads()),
                         b.getI64IntegerAttr(*layer.getNumKvHeads()),
                         b.getI64IntegerAttr(*layer.getHeadDim()),
                         b.getI64IntegerAttr(layer.getValueHeadDim()),
                         *layer.getMask(), *layer.getPositional(),
                         *layer.getScore(), b.getBoolAttr(derivesKeys(layer)),
                         b.getBoolAttr(readsValuesFromKeys(layer))});
}

/// Creates `func.func @name(q, k, v, [sinks,] init) -> out` holding one
/// `hybrid.attention` with dynamic batch and sequence lengths.
static func::FuncOp createKernel(OpBuilder &builder, Location loc,
                                 StringRef name, LayerOp layer,
                                 Type elementType) {
  int64_t dyn = ShapedType::kDynamic;
  int64_t heads = *layer.getNumHeads(), kvHeads = *layer.getNumKvHeads();
  int64_t headDim = *layer.getHeadDim(), vHeadDim = layer.getValueHeadDim();
  auto tensor = [&](ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, elementType);
  };
  Type q = tensor({dyn, dyn, heads, headDim});
  Type k = tensor({dyn, dyn, kvHeads, headDim});
  Type v = tensor({dyn, dyn, kvHeads, vHeadDim});
  Type out = tensor({dyn, dyn, heads, vHeadDim});
  ScoreAttr score = *layer.getScore();
  SmallVector<Type> inputs = {q, k, v};
  if (score.getSinks())
    inputs.push_back(tensor({heads}));
  inputs.push_back(out);

  auto func = func::FuncOp::create(builder, loc, name,
                                   builder.getFunctionType(inputs, {out}));
  Block *entry = func.addEntryBlock();
  OpBuilder body = OpBuilder::atBlockBegin(entry);
  Value sinks = score.getSinks() ? entry->getArgument(3) : Value();
  auto attention = AttentionOp::create(
      body, loc, out, entry->getArgument(0), entry->getArgument(1),
      entry->getArgument(2), sinks, entry->getArguments().back(),
      *layer.getMask(), *layer.getPositional(), score,
      /*q_tile=*/nullptr, /*k_tile=*/nullptr, /*gpu_kernel=*/nullptr);
  func::ReturnOp::create(body, loc, attention.getResult());
  if (derivesKeys(layer))
    func->setAttr(kKEqVAttrName, builder.getUnitAttr());
  if (readsValuesFromKeys(layer))
    func->setAttr(kLatentAttrName, builder.getUnitAttr());
  return func;
}

namespace {
struct ExtractAttentionPass
    : public hybrid::impl::HybridExtractAttentionBase<ExtractAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    Type elementType = getElementType(&getContext(), this->elementType);
    for (ScheduleOp schedule : module.getOps<ScheduleOp>()) {
      DenseMap<ArrayAttr, FlatSymbolRefAttr> kernels;
      (void)schedule.walkLayers([&](int64_t index, LayerOp layer) {
        if (!layer.hasAttention())
          return success();
        FlatSymbolRefAttr &kernel = kernels[getSignature(layer)];
        if (!kernel) {
          OpBuilder builder(&getContext()); // detached until inserted
          std::string name =
              (schedule.getSymName() + "_" +
               stringifyLayerKind(layer.getKind()) + "_l" + Twine(index))
                  .str();
          func::FuncOp func =
              createKernel(builder, layer.getLoc(), name, layer, elementType);
          symbols.insert(func); // appends, renaming on a clash
          kernel = FlatSymbolRefAttr::get(func.getSymNameAttr());
        }
        layer.setKernelAttr(kernel);
        return success();
      });
    }
  }
};
} // namespace
