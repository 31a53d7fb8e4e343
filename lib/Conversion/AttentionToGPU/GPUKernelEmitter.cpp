//===- GPUKernelEmitter.cpp - Building blocks of the GPU kernels ---------===//

#include "GPUKernelEmitter.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

mlir::gpu::GPUFuncOp hybrid::gpu::createKernel(ImplicitLocOpBuilder &b,
                                               StringRef name, TypeRange inputs,
                                               TypeRange workgroup,
                                               int64_t threads) {
  auto func = mlir::gpu::GPUFuncOp::create(
      b, name, b.getFunctionType(inputs, {}), workgroup);
  func->setAttr(mlir::gpu::GPUDialect::getKernelFuncAttrName(),
                b.getUnitAttr());
  func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr({int32_t(threads), 1, 1}));
  b.setInsertionPointToStart(&func.getBody().front());
  mlir::gpu::ReturnOp::create(b);
  b.setInsertionPointToStart(&func.getBody().front());
  return func;
}

Value hybrid::gpu::addAlignedWorkgroupBuffer(mlir::gpu::GPUFuncOp func,
                                             MemRefType type) {
  Value buffer = func.addWorkgroupAttribution(type, func.getLoc());
  func.setWorkgroupAttributionAttr(
      func.getWorkgroupAttributions().size() - 1,
      LLVM::LLVMDialect::getAlignAttrName(),
      IntegerAttr::get(IntegerType::get(func.getContext(), 64), 16));
  return buffer;
}

void StepLengths::addTypes(MLIRContext *context,
                           SmallVectorImpl<Type> &inputs) {
  auto type =
      MemRefType::get({ShapedType::kDynamic}, IntegerType::get(context, 64));
  inputs.append({type, type});
}

StepLengths StepLengths::get(mlir::gpu::GPUFuncOp func, unsigned first) {
  return {func.getArgument(first), func.getArgument(first + 1)};
}

StepLengths::Entry StepLengths::entryOf(ImplicitLocOpBuilder &b,
                                        Value entry) const {
  Value sequence = memref::LoadOp::create(b, sequences, entry);
  Value zero = arith::ConstantOp::create(b, b.getI64IntegerAttr(0));
  Value padding =
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, sequence, zero);
  sequence = arith::SelectOp::create(b, padding, zero, sequence);
  return {arith::IndexCastUIOp::create(b, b.getIndexType(), sequence), padding};
}

Value StepLengths::positionOf(ImplicitLocOpBuilder &b,
                              const Entry &entry) const {
  Value length = arith::IndexCastUIOp::create(
      b, b.getIndexType(), memref::LoadOp::create(b, lengths, entry.sequence));
  return arith::SelectOp::create(b, entry.padding, index(b, 0), length);
}

void StepLengths::advance(ImplicitLocOpBuilder &b, Value count) const {
  forLoop(b, index(b, 0), memref::DimOp::create(b, sequences, 0), index(b, 1),
          [&](Value i) {
            Entry entry = entryOf(b, i);
            ifThen(b, logicalNot(b, entry.padding), [&] {
              Value now = memref::LoadOp::create(b, lengths, entry.sequence);
              memref::StoreOp::create(b, arith::AddIOp::create(b, now, count),
                                      lengths, entry.sequence);
            });
          });
}

Value hybrid::gpu::getSharedAddress(ImplicitLocOpBuilder &b, Value memref) {
  return arith::IndexCastUIOp::create(
      b, b.getI64Type(),
      memref::ExtractAlignedPointerAsIndexOp::create(b, memref));
}

Value hybrid::gpu::exp2Flushed(ImplicitLocOpBuilder &b, Value x) {
  return LLVM::CallIntrinsicOp::create(
             b, b.getF32Type(), b.getStringAttr("llvm.nvvm.ex2.approx.ftz.f32"),
             ValueRange{x})
      .getResult(0);
}

Value hybrid::gpu::inlinePtx(ImplicitLocOpBuilder &b, Type resultType,
                             ValueRange operands, StringRef text,
                             StringRef constraints) {
  return LLVM::InlineAsmOp::create(
             b, resultType, operands, text, constraints,
             /*has_side_effects=*/true, /*is_align_stack=*/false,
             LLVM::tailcallkind::TailCallKind::None,
             LLVM::AsmDialectAttr::get(b.getContext(),
                                       LLVM::AsmDialect::AD_ATT),
             /*operand_attrs=*/ArrayAttr())
      .getRes();
}

Value hybrid::gpu::reduceLanes(ImplicitLocOpBuilder &b, Value x, bool max,
                               int32_t lanes) {
  Value width =
      arith::ConstantOp::create(b, b.getI32IntegerAttr(kThreadsPerWarp));
  for (int32_t offset = 1; offset < lanes; offset *= 2) {
    Value other =
        mlir::gpu::ShuffleOp::create(
            b, x, arith::ConstantOp::create(b, b.getI32IntegerAttr(offset)),
            width, mlir::gpu::ShuffleMode::XOR)
            .getShuffleResult();
    x = max ? Value(arith::MaximumFOp::create(b, x, other))
            : Value(arith::AddFOp::create(b, x, other));
  }
  return x;
}

void hybrid::gpu::fenceDevice(ImplicitLocOpBuilder &b) {
  LLVM::FenceOp::create(b, LLVM::AtomicOrdering::acq_rel, "device");
}
