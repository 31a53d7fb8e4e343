//===- CacheKernels.cpp - Storing a step's rows at a layer's length -------===//
//
// A step's prepared keys and values go into the cache rows of their
// positions, and the sequences' lengths in the layer then move past them.
// Both kernels read the lengths from device memory (StepLengths: each batch
// entry's sequence has its own) instead of taking them as launch parameters,
// so a decode step's launches are the same at every position and a CUDA
// graph that recorded them stays right at each replay.
//
// The store kernel is one CTA per (new token, batch entry): the token at
// position p goes to row p % ring, and to row ring + p % ring too while that is
// one of the mirror rows past the ring (their copies of its first rows, which a
// flash key tile across the ring's end reads as consecutive rows). Tokens
// older than the ring reaches (a prompt longer than a sliding window) are
// skipped: a later token owns their row.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelEmitter.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

void hybrid::gpu::CacheRows::store(ImplicitLocOpBuilder &b, Value x,
                                   Value cache, Value batch,
                                   ValueRange rest) const {
  auto at = [&](Value r) {
    SmallVector<Value> indices = {batch, r};
    indices.append(rest.begin(), rest.end());
    return indices;
  };
  memref::StoreOp::create(b, x, cache, at(row));
  ifThen(b, mirrored,
         [&] { memref::StoreOp::create(b, x, cache, at(mirrorRow)); });
}

void hybrid::gpu::ifKeptInCache(ImplicitLocOpBuilder &b, Value token,
                                Value count, Value first, Value ring,
                                Value cache, Value padding,
                                function_ref<void(const CacheRows &)> body) {
  // Kept: the last `ring` tokens (token + ring >= count), of a sequence.
  Value kept = arith::AndIOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::uge,
                            arith::AddIOp::create(b, token, ring), count),
      logicalNot(b, padding));
  ifThen(b, kept, [&] {
    CacheRows rows;
    rows.row =
        arith::RemUIOp::create(b, arith::AddIOp::create(b, first, token), ring);
    Value mirror =
        arith::SubIOp::create(b, memref::DimOp::create(b, cache, 1), ring);
    rows.mirrored =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, rows.row, mirror);
    rows.mirrorRow = arith::AddIOp::create(b, rows.row, ring);
    body(rows);
  });
}

mlir::gpu::GPUFuncOp hybrid::gpu::emitStoreRowsKernel(ImplicitLocOpBuilder &b,
                                                      StringRef name) {
  OpBuilder::InsertionGuard guard(b);
  int64_t dyn = ShapedType::kDynamic;
  // Rows flattened to [B, tokens, heads x dim]: one kernel for every layer.
  auto rows = MemRefType::get({dyn, dyn, dyn}, b.getBF16Type());
  SmallVector<Type> inputs = {rows, rows, rows, rows};
  StepLengths::addTypes(b.getContext(), inputs);
  inputs.push_back(b.getIndexType());
  auto func = createKernel(b, name, inputs);
  Value newKeys = func.getArgument(0), keys = func.getArgument(1);
  Value newValues = func.getArgument(2), values = func.getArgument(3);
  StepLengths lengths = StepLengths::get(func, 4);
  Value ring = func.getArgument(6);
  using mlir::gpu::Dimension;
  Value token = mlir::gpu::BlockIdOp::create(b, Dimension::x);
  Value batch = mlir::gpu::BlockIdOp::create(b, Dimension::y);
  StepLengths::Entry entry = lengths.entryOf(b, batch);
  Value sequence = entry.sequence, first = lengths.positionOf(b, entry);
  Value tid = mlir::gpu::ThreadIdOp::create(b, Dimension::x);
  Value count = memref::DimOp::create(b, newKeys, 1);
  ifKeptInCache(
      b, token, count, first, ring, keys, entry.padding,
      [&](const CacheRows &at) {
        for (auto rows : {std::pair{newKeys, keys}, {newValues, values}}) {
          Value from = rows.first, to = rows.second;
          Value width = memref::DimOp::create(b, from, 2);
          forLoop(b, tid, width, index(b, kThreads), [&](Value i) {
            Value x =
                memref::LoadOp::create(b, from, ValueRange{batch, token, i});
            at.store(b, x, to, sequence, i);
          });
        }
      });
  return func;
}

mlir::gpu::GPUFuncOp
hybrid::gpu::emitAdvanceLengthKernel(ImplicitLocOpBuilder &b, StringRef name) {
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Type> inputs;
  StepLengths::addTypes(b.getContext(), inputs);
  inputs.push_back(b.getI64Type());
  auto func = createKernel(b, name, inputs, {}, /*threads=*/1);
  StepLengths::get(func, 0).advance(b, func.getArgument(2));
  return func;
}
