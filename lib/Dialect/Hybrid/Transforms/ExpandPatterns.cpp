//===- ExpandPatterns.cpp - Unroll hybrid.repeat ------------------------===//

#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "mlir/IR/Builders.h"

namespace hybrid {
#define GEN_PASS_DEF_HYBRIDEXPANDPATTERNS
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h.inc"
} // namespace hybrid

using namespace mlir;
using namespace hybrid;

namespace {
struct ExpandPatternsPass
    : public hybrid::impl::HybridExpandPatternsBase<ExpandPatternsPass> {
  void runOnOperation() override {
    // Post-order: inner repeats are unrolled before the ones holding them.
    SmallVector<RepeatOp> repeats;
    getOperation().walk([&](RepeatOp repeat) { repeats.push_back(repeat); });
    for (RepeatOp repeat : repeats) {
      OpBuilder builder(repeat);
      for (int64_t i = 0, e = repeat.getCount(); i < e; ++i)
        for (Operation &op : repeat.getBody().front())
          builder.clone(op);
      repeat.erase();
    }
  }
};
} // namespace
