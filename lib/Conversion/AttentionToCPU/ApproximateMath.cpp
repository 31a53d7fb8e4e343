//===- ApproximateMath.cpp - Polynomial exp and tanh in vector registers -===//
//
// Upstream's approximations for math.exp and math.tanh, and ours for
// math.exp2, the softmax's exponential: the kernels compute e^(s - m) as
// 2^(s log2(e) - m log2(e)), one FMA, and 2^x needs no range reduction by
// ln(2) (14 vector instructions against upstream exp's 22 and a subtract).
//
//===----------------------------------------------------------------------===//

#include "hybrid/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDAPPROXIMATEMATH
#include "hybrid/Conversion/Passes.h.inc"
} // namespace hybrid

using namespace mlir;

namespace {
/// f32 (scalar or vector) math.exp2:
///   k = round(x), f = x - k in [-1/2, 1/2], 2^x = p(f) * 2^k,
/// p a degree-5 polynomial with p(0) = 1 (fitted to 2^f's relative error:
/// at most 1.7e-7, about 2 ulp), 2^k built in the exponent field. x is
/// clamped to [-126, 128] first, by compare and select, which keeps NaN:
/// 2^x is 0 for x <= -125.5 (subnormals flush) and +inf from x = 128; k rounds
/// by adding 1.5 * 2^23, which leaves k in the sum's low mantissa bits, so
/// no float-to-int conversion (poison on NaN) is needed.
struct Exp2Approximation : OpRewritePattern<math::Exp2Op> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::Exp2Op op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32())
      return rewriter.notifyMatchFailure(op, "not f32");
    Type intType =
        getElementTypeOrSelf(type) == type
            ? Type(rewriter.getI32Type())
            : Type(cast<VectorType>(type).clone(rewriter.getI32Type()));
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto constant = [&](Type t, TypedAttr scalar) -> Value {
      if (auto vector = dyn_cast<VectorType>(t))
        return arith::ConstantOp::create(
            b, DenseElementsAttr::get(vector, scalar));
      return arith::ConstantOp::create(b, scalar);
    };
    auto f32 = [&](float v) { return constant(type, b.getF32FloatAttr(v)); };
    auto i32 = [&](int32_t v) {
      return constant(intType, b.getI32IntegerAttr(v));
    };
    auto clamp = [&](Value x, arith::CmpFPredicate beyond, float bound) {
      Value limit = f32(bound);
      return arith::SelectOp::create(
          b, arith::CmpFOp::create(b, beyond, x, limit), limit, x);
    };

    Value x = clamp(clamp(op.getOperand(), arith::CmpFPredicate::OLT, -126.0f),
                    arith::CmpFPredicate::OGT, 128.0f);
    Value shifter = f32(12582912.0f); // 1.5 * 2^23
    Value shifted = arith::AddFOp::create(b, x, shifter);
    Value k = arith::SubFOp::create(b, shifted, shifter);
    Value f = arith::SubFOp::create(b, x, k);
    const float coefficients[] = {1.0f,
                                  0.6931470036506653f,
                                  0.24022242426872253f,
                                  0.05550728365778923f,
                                  0.009671512059867382f,
                                  0.0013266279129311442f};
    Value p = f32(coefficients[5]);
    for (int i = 4; i >= 0; --i)
      p = math::FmaOp::create(b, p, f, f32(coefficients[i]));
    // 2^(k - 1): the exponent field k + 126 is in [0, 254], k's low bits
    // shifted into place plus the bias (the shifter's own bits shift out).
    Value bits = arith::AddIOp::create(
        b,
        arith::ShLIOp::create(b, arith::BitcastOp::create(b, intType, shifted),
                              i32(23)),
        i32(126 << 23));
    Value scale = arith::BitcastOp::create(b, type, bits);
    rewriter.replaceOp(
        op, arith::MulFOp::create(b, arith::MulFOp::create(b, p, scale),
                                  f32(2.0f)));
    return success();
  }
};

struct ApproximateMathPass
    : public hybrid::impl::HybridApproximateMathBase<ApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == math::ExpOp::getOperationName() ||
             name == math::TanhOp::getOperationName() || name == "exp" ||
             name == "tanh";
    });
    patterns.add<Exp2Approximation>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
