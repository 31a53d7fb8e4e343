//===- ApproximateMath.cpp - Polynomial exp and tanh in vector registers -===//

#include "hybrid/Conversion/Passes.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDAPPROXIMATEMATH
#include "hybrid/Conversion/Passes.h.inc"
} // namespace hybrid

using namespace mlir;

namespace {
struct ApproximateMathPass
    : public hybrid::impl::HybridApproximateMathBase<ApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == math::ExpOp::getOperationName() ||
             name == math::TanhOp::getOperationName() || name == "exp" ||
             name == "tanh";
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
