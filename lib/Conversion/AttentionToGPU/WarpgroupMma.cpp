//===- WarpgroupMma.cpp - Hopper warpgroup MMA for the flash kernel -------===//
//
// MLIR's nvvm.wgmma.mma_async takes A from shared memory only; the flash
// kernel's A operands (queries, probabilities) live in registers, so the
// register-A form is emitted as inline PTX.
//
//===----------------------------------------------------------------------===//

#include "WarpgroupMma.h"

#include "GPUKernelEmitter.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

std::array<Value, 3> hybrid::gpu::getSwizzledChunk(ImplicitLocOpBuilder &b,
                                                   Value row, Value chunk) {
  Value eight = index(b, 8);
  Value block = arith::DivUIOp::create(b, chunk, eight);
  Value position =
      arith::XOrIOp::create(b, arith::RemUIOp::create(b, chunk, eight),
                            arith::RemUIOp::create(b, row, eight));
  return {block, row, arith::MulIOp::create(b, position, eight)};
}

Value hybrid::gpu::getMatrixDescriptor(ImplicitLocOpBuilder &b, Value tile,
                                       int64_t leadingBytes,
                                       int64_t strideBytes) {
  // Bits 0-13: start address >> 4; 16-29: leading byte offset >> 4; 32-45:
  // stride byte offset >> 4; 62-63: swizzle mode (1: 128 bytes).
  Type i64 = b.getI64Type();
  Value start = arith::ShRUIOp::create(
      b,
      arith::AndIOp::create(b, getSharedAddress(b, tile),
                            arith::ConstantIntOp::create(b, i64, 0x3ffff)),
      arith::ConstantIntOp::create(b, i64, 4));
  uint64_t fields = uint64_t(leadingBytes >> 4) << 16 |
                    uint64_t(strideBytes >> 4) << 32 | uint64_t(1) << 62;
  return arith::OrIOp::create(
      b, start, arith::ConstantIntOp::create(b, i64, int64_t(fields)));
}

Value hybrid::gpu::offsetDescriptor(ImplicitLocOpBuilder &b, Value descriptor,
                                    int64_t bytes) {
  if (bytes == 0)
    return descriptor;
  return arith::AddIOp::create(
      b, descriptor,
      arith::ConstantIntOp::create(b, b.getI64Type(), bytes >> 4));
}

/// An inline-assembly result of `registers` f32 values.
static Type getResultType(ImplicitLocOpBuilder &b, int64_t registers) {
  return LLVM::LLVMStructType::getLiteral(
      b.getContext(), SmallVector<Type>(registers, b.getF32Type()));
}

/// Constraints of `registers` f32 outputs, the first `tied` of them also
/// inputs in the same registers: "=f,...,0,1,...,".
static std::string getAccumulatorConstraints(int64_t registers, int64_t tied) {
  std::string constraints;
  for (int64_t i = 0; i < registers; ++i)
    constraints += "=f,";
  for (int64_t i = 0; i < tied; ++i)
    constraints += std::to_string(i) + ",";
  return constraints;
}

static SmallVector<Value> unpack(ImplicitLocOpBuilder &b, Value packed,
                                 int64_t registers) {
  SmallVector<Value> result;
  for (int64_t i = 0; i < registers; ++i)
    result.push_back(
        LLVM::ExtractValueOp::create(b, packed, ArrayRef<int64_t>{i}));
  return result;
}

/// The wgmma block for `registers` accumulators per thread, accumulating
/// onto `acc` or, when it is empty, onto nothing; waiting for it or not.
static SmallVector<Value>
emitWarpgroupMma(ImplicitLocOpBuilder &b, int64_t registers,
                 ArrayRef<Value> acc, ArrayRef<std::array<Value, 4>> a,
                 ArrayRef<Value> descriptors, bool nMajor, bool wait) {
  int64_t n = 2 * registers;
  bool fromZero = acc.empty();
  // Operands: the accumulators' outputs $0.., the same registers as tied
  // inputs (unless from zero), then per step four A registers and the B
  // descriptor, then the scale-d predicates (true: accumulate; from zero,
  // the first step's is false).
  std::string text = "wgmma.fence.sync.aligned;\n";
  std::string constraints =
      getAccumulatorConstraints(registers, int64_t(acc.size()));
  SmallVector<Value> operands(acc.begin(), acc.end());
  int64_t next = registers + int64_t(acc.size());
  std::string d;
  for (int64_t i = 0; i < registers; ++i)
    d += (i ? ", $" : "$") + std::to_string(i);
  int64_t accumulate = next + 5 * int64_t(a.size()), overwrite = accumulate + 1;
  for (size_t s = 0; s < a.size(); ++s) {
    std::string regs;
    for (int64_t r = 0; r < 4; ++r) {
      regs += (r ? ", $" : "$") + std::to_string(next++);
      operands.push_back(a[s][r]);
      constraints += "r,";
    }
    operands.push_back(descriptors[s]);
    constraints += "l,";
    int64_t scaleD = fromZero && s == 0 ? overwrite : accumulate;
    text += "wgmma.mma_async.sync.aligned.m64n" + std::to_string(n) +
            "k16.f32.bf16.bf16 {" + d + "}, {" + regs + "}, $" +
            std::to_string(next++) + ", $" + std::to_string(scaleD) +
            ", 1, 1, " + (nMajor ? "1" : "0") + ";\n";
  }
  operands.push_back(
      arith::ConstantOp::create(b, b.getBoolAttr(true)).getResult());
  constraints += "b";
  if (fromZero) {
    operands.push_back(
        arith::ConstantOp::create(b, b.getBoolAttr(false)).getResult());
    constraints += ",b";
  }
  text += "wgmma.commit_group.sync.aligned;";
  if (wait)
    text += "\nwgmma.wait_group.sync.aligned 0;";
  return unpack(
      b, inlinePtx(b, getResultType(b, registers), operands, text, constraints),
      registers);
}

SmallVector<Value> hybrid::gpu::warpgroupMma(ImplicitLocOpBuilder &b,
                                             ArrayRef<Value> acc,
                                             ArrayRef<std::array<Value, 4>> a,
                                             ArrayRef<Value> descriptors,
                                             bool nMajor, bool wait) {
  return emitWarpgroupMma(b, int64_t(acc.size()), acc, a, descriptors, nMajor,
                          wait);
}

SmallVector<Value>
hybrid::gpu::warpgroupMmaFromZero(ImplicitLocOpBuilder &b, int64_t registers,
                                  ArrayRef<std::array<Value, 4>> a,
                                  ArrayRef<Value> descriptors, bool nMajor,
                                  bool wait) {
  return emitWarpgroupMma(b, registers, {}, a, descriptors, nMajor, wait);
}

SmallVector<Value> hybrid::gpu::waitWarpgroupMma(ImplicitLocOpBuilder &b,
                                                 int64_t pending,
                                                 ArrayRef<Value> inFlight,
                                                 ArrayRef<Value> inUse,
                                                 StringRef note) {
  // The landed values are the in-flight ones tied through the wait: every
  // reader of them comes after it. The operands still in use are inputs,
  // so their registers live (unchanged) until here.
  int64_t registers = int64_t(inFlight.size());
  std::string constraints = getAccumulatorConstraints(registers, registers);
  for (size_t i = 0; i < inUse.size(); ++i)
    constraints += "r,";
  constraints.pop_back();
  SmallVector<Value> operands(inFlight.begin(), inFlight.end());
  operands.append(inUse.begin(), inUse.end());
  return unpack(b,
                inlinePtx(b, getResultType(b, registers), operands,
                          "wgmma.wait_group.sync.aligned " +
                              std::to_string(pending) + ";" +
                              (note.empty() ? "" : " // " + note.str()),
                          constraints),
                registers);
}

void hybrid::gpu::fenceSharedForAsyncProxy(ImplicitLocOpBuilder &b) {
  NVVM::FenceProxyOp::create(
      b, NVVM::ProxyKind::async_shared,
      NVVM::SharedSpaceAttr::get(b.getContext(),
                                 NVVM::SharedSpace::shared_cta));
}
