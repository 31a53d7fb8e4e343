//===- HybridAttrs.h - Hybrid enums and attributes --------------*- C++ -*-===//

#ifndef HYBRID_DIALECT_HYBRID_IR_HYBRIDATTRS_H
#define HYBRID_DIALECT_HYBRID_IR_HYBRIDATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/Hashing.h"
#include "llvm/ADT/bit.h"

#include "hybrid/Dialect/Hybrid/IR/HybridEnums.h.inc"

namespace hybrid {
/// A real-valued attribute parameter. A plain double cannot be one: LLVM has
/// no hash_value(double) to unique attributes with. Compares bitwise.
struct Real {
  double value = 0.0;
  Real() = default;
  Real(double value) : value(value) {}
  operator double() const { return value; }
  bool operator==(const Real &other) const {
    return llvm::bit_cast<uint64_t>(value) ==
           llvm::bit_cast<uint64_t>(other.value);
  }
  bool operator==(double other) const { return *this == Real(other); }
};
inline llvm::hash_code hash_value(Real real) {
  return llvm::hash_value(llvm::bit_cast<uint64_t>(real.value));
}
} // namespace hybrid

namespace mlir {
/// Real parameters accept integer and float literals (`theta = 10000` or
/// `theta = 1.0e+04`).
template <> struct FieldParser<hybrid::Real> {
  static FailureOr<hybrid::Real> parse(AsmParser &parser) {
    double sign = succeeded(parser.parseOptionalMinus()) ? -1.0 : 1.0;
    uint64_t integer;
    OptionalParseResult isInteger = parser.parseOptionalInteger(integer);
    if (isInteger.has_value()) {
      if (failed(*isInteger))
        return failure();
      return hybrid::Real(sign * static_cast<double>(integer));
    }
    double value;
    if (parser.parseFloat(value))
      return failure();
    return hybrid::Real(sign * value);
  }
};
} // namespace mlir

namespace hybrid {
/// Prints the shortest decimal that reads back as `value`, always with a
/// '.' or an exponent (`10000.0`, `0.0625`, `1e-06`).
void printReal(mlir::AsmPrinter &printer, double value);

/// Parses `true` or `false`.
mlir::FailureOr<bool> parseBoolParameter(mlir::AsmParser &parser);

/// Bytes of one element of `type`.
int64_t getStorageBytes(StorageType type);

/// The name of `tensorCores` outside the IR (flags, manifests, tuning
/// databases): the PTX mnemonic, "mma.sync" or "wgmma". (In the IR it is a
/// keyword, `mma_sync`, which cannot hold a '.'.)
llvm::StringRef getTensorCoresName(TensorCores tensorCores);

/// The TensorCores named `name` as getTensorCoresName gives it, or nullopt.
std::optional<TensorCores> parseTensorCoresName(llvm::StringRef name);

/// The value dims one GPU flash CTA accumulates at V head dim `vHeadDim`
/// (grid y runs over heads x vHeadDim / slice): the largest divisor of
/// `vHeadDim` up to `maxSlice` that is a multiple of 16, or of 64 for wgmma
/// (whose B tiles are 64-element swizzled rows); 0 if there is none.
int64_t getFlashValueSlice(int64_t vHeadDim, int64_t maxSlice,
                           TensorCores tensorCores);
} // namespace hybrid

#define GET_ATTRDEF_CLASSES
#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h.inc"

namespace hybrid {
/// The cache a layer's mask implies where its schedule names none: a ring of
/// the window for a causal sliding window and a chunk for causal chunks
/// (only a causal mask lets decode forget keys for good), else full; none
/// for a layer without attention (a null mask). `kEqV`: the layer's values
/// are its keys; `latent`: its values are its keys' first dims.
CacheAttr getImpliedCache(mlir::MLIRContext *ctx, MaskAttr mask,
                          bool kEqV = false, bool latent = false);
} // namespace hybrid

#endif // HYBRID_DIALECT_HYBRID_IR_HYBRIDATTRS_H
