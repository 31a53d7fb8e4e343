//===- AttentionToCPU.cpp - hybrid.attention kernels to CPU loops --------===//

#include "KernelEmitter.h"
#include "hybrid/Conversion/Passes.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/SymbolTable.h"

#include <limits>

namespace hybrid {
#define GEN_PASS_DEF_CONVERTHYBRIDATTENTIONTOCPU
#include "hybrid/Conversion/Passes.h.inc"
} // namespace hybrid

using namespace mlir;
using namespace hybrid;
using namespace hybrid::cpu;

SmallVector<Type> hybrid::cpu::getAttentionInputTypes(
    ImplicitLocOpBuilder &b, const AttentionSignature &sig, Type kvElement) {
  SmallVector<Type> types = {
      getRowsType(b.getF32Type(), sig.heads, sig.headDim),
      getRowsType(kvElement, sig.kvHeads, sig.headDim),
      getValuesType(kvElement, sig)};
  if (sig.score.getSinks())
    types.push_back(MemRefType::get({sig.heads}, b.getF32Type()));
  return types;
}

Value hybrid::cpu::loadAsF32(ImplicitLocOpBuilder &b, int64_t width,
                             Value memref, ValueRange indices) {
  Type element = cast<MemRefType>(memref.getType()).getElementType();
  Value x = vector::LoadOp::create(b, VectorType::get({width}, element), memref,
                                   indices);
  if (element.isF32())
    return x;
  if (isa<Float8E4M3FNType>(element))
    return widenF8E4M3FN(b, x);
  // bf16 and f16 to f32 are exact: LLVM widens bf16 with a shift, f16 with
  // vcvtph2ps.
  return arith::ExtFOp::create(b, VectorType::get({width}, b.getF32Type()), x);
}

/// A vector of `width` elements of `type` all `value`.
static Value splatConstant(ImplicitLocOpBuilder &b, int64_t width, Type type,
                           Attribute value) {
  return arith::ConstantOp::create(
      b, DenseElementsAttr::get(VectorType::get({width}, type), value));
}

Value hybrid::cpu::widenF8E4M3FNBits(ImplicitLocOpBuilder &b, Value x) {
  int64_t width = cast<VectorType>(x.getType()).getNumElements();
  auto vectorOf = [&](Type element) {
    return VectorType::get({width}, element);
  };
  // LLVM has no 8-bit floats; E4M3FN's bits placed at f16's are its value
  // times 2^-8 (sign, then 4 exponent bits biased by 7 where f16's 5 are
  // biased by 15, then the mantissa's top 3 of 10), subnormals included,
  // and the hardware widens f16 (vcvtph2ps). Sign-extending the byte puts
  // its sign at bit 15 after a shift by 7; the and clears the copy at 14.
  Value bytes = arith::BitcastOp::create(b, vectorOf(b.getI8Type()), x);
  Type i16 = b.getI16Type();
  Value bits = arith::AndIOp::create(
      b,
      arith::ShLIOp::create(
          b, arith::ExtSIOp::create(b, vectorOf(i16), bytes),
          splatConstant(b, width, i16, b.getI16IntegerAttr(7))),
      splatConstant(b, width, i16, b.getI16IntegerAttr(int16_t(0xbf80))));
  Value half = arith::BitcastOp::create(b, vectorOf(b.getF16Type()), bits);
  return arith::ExtFOp::create(b, vectorOf(b.getF32Type()), half);
}

/// Where `x` (f8E4M3FN) holds S.1111.111, its NaN.
static Value getF8NaNLanes(ImplicitLocOpBuilder &b, Value x) {
  int64_t width = cast<VectorType>(x.getType()).getNumElements();
  Type i8 = b.getI8Type();
  Value sevenBits = splatConstant(b, width, i8, b.getI8IntegerAttr(0x7f));
  Value bytes = arith::BitcastOp::create(b, VectorType::get({width}, i8), x);
  return arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                               arith::AndIOp::create(b, bytes, sevenBits),
                               sevenBits);
}

Value hybrid::cpu::restoreF8NaNs(ImplicitLocOpBuilder &b, Value x,
                                 Value widened) {
  int64_t width = cast<VectorType>(x.getType()).getNumElements();
  Value nan =
      splatConstant(b, width, b.getF32Type(),
                    b.getF32FloatAttr(std::numeric_limits<float>::quiet_NaN()));
  return arith::SelectOp::create(b, getF8NaNLanes(b, x), nan, widened);
}

Value hybrid::cpu::hasF8NaN(ImplicitLocOpBuilder &b, Value x) {
  return vector::ReductionOp::create(b, vector::CombiningKind::OR,
                                     getF8NaNLanes(b, x));
}

Value hybrid::cpu::widenF8E4M3FN(ImplicitLocOpBuilder &b, Value x) {
  int64_t width = cast<VectorType>(x.getType()).getNumElements();
  // E4M3FN has no infinities: S.1111.111 is NaN (it would read as 480).
  return restoreF8NaNs(
      b, x,
      arith::MulFOp::create(
          b, widenF8E4M3FNBits(b, x),
          splatConstant(b, width, b.getF32Type(), b.getF32FloatAttr(256.0f))));
}

/// log2(e) as a constant of `type` (f32 or a vector of it).
static Value getLog2E(ImplicitLocOpBuilder &b, Type type) {
  FloatAttr log2e = b.getF32FloatAttr(1.4426950408889634);
  if (auto vector = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, DenseElementsAttr::get(vector, log2e));
  return arith::ConstantOp::create(b, log2e);
}

Value hybrid::cpu::scaleByLog2E(ImplicitLocOpBuilder &b, Value x) {
  return arith::MulFOp::create(b, x, getLog2E(b, x.getType()));
}

Value hybrid::cpu::emitSoftmaxExp(ImplicitLocOpBuilder &b, Value s,
                                  Value negScaledMax) {
  return math::Exp2Op::create(
      b, math::FmaOp::create(b, s, getLog2E(b, s.getType()), negScaledMax));
}

Value hybrid::cpu::emitMaxRatio(ImplicitLocOpBuilder &b, Value m,
                                Value scaledMax) {
  return math::Exp2Op::create(
      b, arith::SubFOp::create(b, scaleByLog2E(b, m), scaledMax));
}

func::FuncOp hybrid::cpu::createKernelFunc(ImplicitLocOpBuilder &b,
                                           StringRef name, TypeRange inputs) {
  auto func = func::FuncOp::create(b, name, b.getFunctionType(inputs, {}));
  func->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  Block *entry = func.addEntryBlock();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(entry);
  func::ReturnOp::create(b);
  return func;
}

/// A work item's scratch (transposed queries, scores and outputs; a key
/// tile's keys and values; row statistics) lives on the stack of a runtime
/// thread, 8 MiB by default on Linux: at most half of it.
constexpr int64_t kMaxScratchBytes = 4 << 20;

/// Stack bytes of a flash work item of `tiles` (FlashKernel.cpp's scratch).
static int64_t getFlashScratchBytes(const AttentionSignature &sig,
                                    const TileSizes &tiles) {
  int64_t rows = tiles.queries * sig.groupSize();
  return int64_t(sizeof(float)) *
         ((sig.headDim + tiles.keys + sig.vHeadDim) * (rows + kLanes) +
          tiles.keys * (sig.headDim + sig.vHeadDim + 2 * kLanes) + 5 * rows);
}

/// Stack bytes of a decode work item (DecodeKernel.cpp's scratch).
static int64_t getDecodeScratchBytes(const AttentionSignature &sig,
                                     int64_t keyTile) {
  int64_t rows = getDecodePositions(sig, keyTile) * sig.heads;
  // K=V: a tile's cos and sin (at most a head dim each), a key row, and
  // the angles in f64.
  int64_t derived = sig.derivesKeys ? (2 * keyTile + 5) * sig.headDim : 0;
  return int64_t(sizeof(float)) *
         (rows * (sig.headDim + keyTile + sig.vHeadDim + 3) + derived);
}

/// Why the CPU kernels cannot compute `sig`, if they cannot.
static std::optional<std::string>
getUnsupportedReason(const AttentionSignature &sig, const TileSizes &tiles) {
  if (sig.headDim % kLanes != 0 || sig.vHeadDim % 8 != 0)
    return "head dims must be multiples of " + std::to_string(kLanes) +
           " (keys) and 8 (values) for the CPU kernels, got " +
           std::to_string(sig.headDim) + " and " + std::to_string(sig.vHeadDim);
  if ((sig.groupSize() * tiles.queries) % 32 != 0)
    return "q-tile * (heads / kv heads) must be a multiple of 32, got " +
           std::to_string(sig.groupSize() * tiles.queries);
  if (tiles.keys <= 0 || tiles.keys % 8 != 0 || tiles.keys > kMaxTileSize)
    return "k-tile must be a positive multiple of 8, at most " +
           std::to_string(kMaxTileSize) + ", got " + std::to_string(tiles.keys);
  int64_t bytes = std::max(
      getFlashScratchBytes(sig, tiles),
      sig.mask.getCausal() ? getDecodeScratchBytes(sig, tiles.keys) : 0);
  if (bytes > kMaxScratchBytes)
    return "q-tile " + std::to_string(tiles.queries * sig.groupSize()) +
           " and k-tile " + std::to_string(tiles.keys) + " need " +
           std::to_string(bytes >> 10) +
           " KiB of stack per work item, more than the " +
           std::to_string(kMaxScratchBytes >> 10) +
           " KiB the CPU kernels take: choose smaller tiles";
  return std::nullopt;
}

namespace {
struct ConvertAttentionToCPUPass
    : public hybrid::impl::ConvertHybridAttentionToCPUBase<
          ConvertAttentionToCPUPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    Builder builder(&getContext());
    Type cacheElement = cacheType == "f32"    ? builder.getF32Type()
                        : cacheType == "bf16" ? builder.getBF16Type()
                        : cacheType == "f16"  ? builder.getF16Type()
                        : cacheType == "f8"
                            ? builder.getType<Float8E4M3FNType>()
                            : Type();
    if (!cacheElement) {
      module.emitError() << "cache-type must be f32, bf16, f16 or f8, got '"
                         << cacheType << "'";
      return signalPassFailure();
    }
    FailureOr<SmallVector<std::pair<Operation *, AttentionOp>>> kernels =
        getAttentionKernels(module, "CPU kernels compute in f32; other element "
                                    "types are not supported yet");
    if (failed(kernels))
      return signalPassFailure();

    for (auto [kernel, op] : *kernels) {
      auto func = cast<func::FuncOp>(kernel);
      AttentionSignature sig = AttentionSignature::get(op);
      TileSizes tiles;
      // The op's own tile sizes (set by the tuner) win over the options. A
      // q-tile counts rows: query positions times the GQA group.
      int64_t group = sig.groupSize();
      int64_t queries = op.getQTile().value_or(qTile);
      if (queries < 0 || queries > kMaxTileSize) {
        op.emitOpError() << "q-tile must be 0 to " << kMaxTileSize << ", got "
                         << queries;
        return signalPassFailure();
      }
      if (queries == 0)
        queries = kDefaultRows;
      // Keep at least 32 rows (group * positions) per work item.
      tiles.queries = std::max<int64_t>((queries + group - 1) / group,
                                        (32 + group - 1) / group);
      while ((tiles.queries * group) % 32 != 0)
        ++tiles.queries;
      tiles.keys = op.getKTile().value_or(kTile);
      if (std::optional<std::string> reason =
              getUnsupportedReason(sig, tiles)) {
        op.emitOpError() << *reason;
        return signalPassFailure();
      }

      std::string name = func.getSymName().str();
      ImplicitLocOpBuilder b(func.getLoc(), func);
      func::FuncOp flash =
          emitFlashKernel(b, name + "_attention", sig, tiles, b.getF32Type());
      flash->setAttr("hybrid.q_tile", b.getI64IntegerAttr(tiles.queries));
      flash->setAttr("hybrid.k_tile", b.getI64IntegerAttr(tiles.keys));
      if (sig.valuesInKeys) // its values operand views the keys
        flash->setAttr(kLatentAttrName, b.getUnitAttr());
      emitPrepareKernel(b, name, sig, /*forQueries=*/true);
      if (sig.rotates())
        emitPrepareKernel(b, name, sig, /*forQueries=*/false);
      // Decoding extends a causal context; a bidirectional layer has none.
      if (sig.mask.getCausal()) {
        func::FuncOp decode = emitDecodeKernel(b, name + "_decode", sig,
                                               tiles.keys, cacheElement);
        decode->setAttr("hybrid.q_tile", b.getI64IntegerAttr(getDecodePositions(
                                             sig, tiles.keys)));
        decode->setAttr("hybrid.k_tile", b.getI64IntegerAttr(tiles.keys));
        if (sig.derivesKeys) // it takes the key scale after the sinks
          decode->setAttr(kKEqVAttrName, b.getUnitAttr());
        if (sig.valuesInKeys) // its values operand views the keys
          decode->setAttr(kLatentAttrName, b.getUnitAttr());
        emitCombineKernel(b, name + "_decode_combine", sig);
        // Steps of many tokens run the flash kernel over the cache in place:
        // a narrower cache needs its own. (K=V caches hold values only, from
        // which the runtime derives f32 keys for such steps.)
        if (!cacheElement.isF32() && !sig.derivesKeys)
          emitFlashKernel(b, name + "_steps", sig, tiles, cacheElement);
      }
      func.erase();
      flash.setSymName(name);
    }
  }
};
} // namespace
