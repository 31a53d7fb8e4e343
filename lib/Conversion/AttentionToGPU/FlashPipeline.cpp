//===- FlashPipeline.cpp - K and V staging and the loop over key tiles ---===//
//
// K and V tiles are staged in shared memory: mma.sync reads rows padded by
// 8 elements (fragment reads hit 32 distinct banks), wgmma 128-byte-swizzled
// tiles. With cp.async, V(j) is in flight during Q K(j)^T, K(j+1) during
// softmax and P V(j); rows past the last key read the last key (their
// scores are masked). With TMA, one thread issues each tile's loads and
// every thread waits on the stage's mbarrier phase; S stages keep the next
// S - 1 tiles loading.
//
// Warp-specialized, a producer warp of its own issues every load
// (emitProducerLoop) and the compute warps free each stage by arriving on
// its empty mbarriers instead of meeting at a CTA barrier.
//
// wgmma kernels may overlap softmax with the tensor cores (FlashAttention-3's
// intra-warpgroup pipelining, emitOverlappedLoop): per tile j, the warpgroup
// issues S(j) = Q K(j)^T and O += P(j-1) V(j-1) without waiting, waits for
// S(j) only, computes tile j's softmax while P V runs, then waits for O and
// rescales it. TMA keeps K(j + S - 1) and V(j + S - 2) in flight (S >= 2).
// With ping-pong the two warpgroups of a CTA take turns issuing those
// products (named barriers 1 and 2).
//
//===----------------------------------------------------------------------===//

#include "FlashEmitter.h"
#include "TensorMemoryAccess.h"
#include "WarpgroupMma.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace hybrid;
using namespace hybrid::gpu;

Value FlashEmitter::stageTile(Value src, Value dst, int64_t dim, Value kt,
                              Value colOffset) {
  // 16-byte chunks of 8 bf16. The last round's spare threads copy nothing
  // (repeating a chunk would put two copies to one address in flight) but
  // commit the group like every thread, so that cp.async group counts agree
  // across the CTA; the group's tokens are the unconditional copies' (a
  // commit takes all of a thread's copies before it, whatever the IR says).
  int64_t chunksPerRow = dim / 8, chunks = kTile * chunksPerRow;
  Value tid = mlir::gpu::ThreadIdOp::create(b, mlir::gpu::Dimension::x);
  // Chunk i of the tile: row i / chunksPerRow, 8 elements at chunk i %
  // chunksPerRow.
  auto copyChunk = [&](Value i, Value tileRow) -> Value {
    Value row = arith::DivUIOp::create(b, i, index(b, chunksPerRow));
    Value chunk = arith::RemUIOp::create(b, i, index(b, chunksPerRow));
    Value col = arith::MulIOp::create(b, chunk, index(b, 8));
    // Rows past the last key repeat it (`tileRow` null: the tile crosses
    // it).
    Value key = tileRow ? arith::AddIOp::create(b, tileRow, row)
                        : getKeyRow(arith::MinUIOp::create(
                              b, arith::AddIOp::create(b, kt, row), lastKey));
    Value srcCol = colOffset ? arith::AddIOp::create(b, col, colOffset) : col;
    SmallVector<Value> at = {row, col};
    if (wgmma) {
      std::array<Value, 3> swizzled = getSwizzledChunk(b, row, chunk);
      at.assign(swizzled.begin(), swizzled.end());
    }
    return nvgpu::DeviceAsyncCopyOp::create(
        b, dst, at, src, ValueRange{batch, key, kvHead, srcCol},
        b.getIndexAttr(8),
        /*srcElements=*/Value(), /*bypassL1=*/b.getUnitAttr());
  };
  auto issue = [&](Value tileRow) -> Value {
    SmallVector<Value> tokens;
    for (int64_t c = 0; c < chunks; c += threads) {
      Value i = arith::AddIOp::create(b, tid, index(b, c));
      if (c + threads > chunks) {
        Value inTile = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, i,
                                             index(b, chunks));
        ifThen(b, inTile, [&] { copyChunk(i, tileRow); });
      } else {
        tokens.push_back(copyChunk(i, tileRow));
      }
    }
    return nvgpu::DeviceAsyncCreateGroupOp::create(b, tokens);
  };
  // Only the tile that crosses the last key maps and clamps its rows one by
  // one: elsewhere the copies' addresses are one base plus constant offsets
  // (a tile across the ring's end reads the mirror rows).
  Value whole = arith::CmpIOp::create(
      b, arith::CmpIPredicate::ule,
      arith::AddIOp::create(b, kt, index(b, kTile)), numKeys);
  return ifThenElse(
      b, whole, TypeRange{nvgpu::DeviceAsyncTokenType::get(b.getContext())},
      [&] { return SmallVector<Value>{issue(getKeyRow(kt))}; },
      [&] { return SmallVector<Value>{issue(Value())}; })[0];
}

void FlashEmitter::issueTileLoads(bool keys, Value kt, Value colOffset,
                                  Value tile, Value barrier) {
  int64_t width = keys ? sig.headDim : vDim;
  ifThen(b, isIssuer, [&] {
    arriveExpectingBytes(b, barrier, kTile * width * 2);
    // Box {64 columns, 1 head, kTile keys, 1 batch} of [B][S][H][D] rows
    // from the tile's first row (a tile across a ring's end reads the
    // mirror rows): keys past the end read as zeros or as stale rows (their
    // scores are masked; the runtime zeroes caches, so nothing reads NaNs).
    Value row = getKeyRow(kt);
    for (int64_t block = 0; block < width / kSwizzleRow; ++block) {
      Value col = arith::AddIOp::create(b, colOffset ? colOffset : index(b, 0),
                                        index(b, block * kSwizzleRow));
      loadTile(b, getSharedPointer(b, tile, block * kTile * 2 * kSwizzleRow),
               keys ? keyMap : valueMap, ValueRange{col, kvHead, row, batch},
               barrier);
    }
  });
}

Value FlashEmitter::getKeyRow(Value key) {
  Value row = arith::AddIOp::create(b, firstRow, key);
  Value wrapped =
      arith::CmpIOp::create(b, arith::CmpIPredicate::uge, row, ringRows);
  return arith::SelectOp::create(b, wrapped,
                                 arith::SubIOp::create(b, row, ringRows), row);
}

void FlashEmitter::waitGroups(int32_t pending) {
  // cp.async.wait_group counts this thread's committed groups; the token
  // operand only ties the wait to the copies in the IR.
  nvgpu::DeviceAsyncWaitOp::create(b, firstGroup, b.getI32IntegerAttr(pending));
}

FlashEmitter::Buffers FlashEmitter::bufferAt(Value s) {
  auto carve = [&](Type type, int64_t base, int64_t stride) -> Value {
    // Constant stages get constant offsets (no arithmetic to fold).
    std::optional<int64_t> constant = getConstantIntValue(s);
    Value offset = constant
                       ? index(b, base + *constant * stride)
                       : Value(arith::AddIOp::create(
                             b, index(b, base),
                             arith::MulIOp::create(b, s, index(b, stride))));
    return memref::ViewOp::create(b, type, shared, offset, ValueRange{});
  };
  Buffers buffers;
  buffers.keys = carve(keysType, layout.keys, layout.keyStage);
  buffers.values = carve(valuesType, layout.values, layout.valueStage);
  if (tma) {
    int64_t count = specialized ? 4 : 2;
    Value barriers = carve(getWorkgroupType({count}, b.getI64Type()),
                           layout.barriers, 8 * count);
    buffers.keyBarrier = getSharedPointer(b, barriers);
    buffers.valueBarrier = getSharedPointer(b, barriers, 8);
    if (specialized) {
      buffers.keyEmpty = getSharedPointer(b, barriers, 16);
      buffers.valueEmpty = getSharedPointer(b, barriers, 24);
    }
  }
  return buffers;
}

std::pair<FlashEmitter::Buffers, Value> FlashEmitter::stageOfTile(Value j) {
  // Each barrier completes one phase per use of its stage.
  Value parity = arith::IndexCastOp::create(
      b, b.getI32Type(),
      arith::RemUIOp::create(b, arith::DivUIOp::create(b, j, index(b, stages)),
                             index(b, 2)));
  return {bufferAt(arith::RemUIOp::create(b, j, index(b, stages))), parity};
}

void FlashEmitter::loadTiles(Value kt, const Buffers &buffers, bool keys,
                             bool values) {
  if (keys)
    issueTileLoads(/*keys=*/true, kt, Value(), buffers.keys,
                   buffers.keyBarrier);
  if (values)
    issueTileLoads(/*keys=*/false, kt, valueOffsetOrNull, buffers.values,
                   buffers.valueBarrier);
}

void FlashEmitter::emitProducerLoop() {
  // Tiles load in the order the compute warps use them: K(j), V(j), or,
  // overlapped, K(j), V(j - 1). Tile j goes to stage j % S; its j / S-th
  // use of the stage waits for the compute warps to have freed the one
  // before: the (j / S - 1)-th phase of the stage's empty barrier of that
  // tile kind, parity (j / S - 1) % 2. Every lane of the warp waits; lane 0
  // (isIssuer) issues.
  auto load = [&](Value j, bool keys) {
    Buffers buffers;
    Value parity;
    std::tie(buffers, parity) = stageOfTile(j);
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::uge, j,
                                 index(b, stages)),
           [&] {
             waitBarrier(b, keys ? buffers.keyEmpty : buffers.valueEmpty,
                         arith::XOrIOp::create(b, parity,
                                               arith::ConstantOp::create(
                                                   b, b.getI32IntegerAttr(1))));
           });
    Value kt =
        arith::AddIOp::create(b, lo, arith::MulIOp::create(b, j, kTileSize));
    loadTiles(kt, buffers, keys, !keys);
  };
  auto loop = scf::ForOp::create(b, lo, hi, kTileSize);
  {
    OpBuilder::InsertionGuard inLoop(b);
    b.setInsertionPointToStart(loop.getBody());
    Value j = arith::DivUIOp::create(
        b, arith::SubIOp::create(b, loop.getInductionVar(), lo), kTileSize);
    load(j, /*keys=*/true);
    if (!overlap) {
      load(j, /*keys=*/false);
    } else {
      ifThen(
          b,
          arith::CmpIOp::create(b, arith::CmpIPredicate::uge, j, index(b, 1)),
          [&] {
            load(arith::SubIOp::create(b, j, index(b, 1)),
                 /*keys=*/false);
          });
    }
  }
  // Overlapped: the last tile's V.
  if (overlap)
    ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, lo, hi), [&] {
      Value tiles = arith::DivUIOp::create(
          b,
          arith::AddIOp::create(b, arith::SubIOp::create(b, hi, lo),
                                index(b, kTile - 1)),
          kTileSize);
      load(arith::SubIOp::create(b, tiles, index(b, 1)),
           /*keys=*/false);
    });
}

void FlashEmitter::releaseStage(Value empty) {
  if (specialized)
    arriveOnBarrier(b, empty);
}

SmallVector<Value> FlashEmitter::emitTileLoop(ArrayRef<Value> init) {
  if (!tma) {
    firstGroup = stageTile(k, stageBuffers[0].keys, dim, lo);
  } else if (!specialized) {
    // One stage: K(j + 1) loads during softmax and P V(j), V(j) during
    // Q K(j)^T. S stages: tiles j + 1 .. j + S - 1 load during tile j, the
    // first S - 1 of them here.
    if (stages == 1)
      ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, lo, hi),
             [&] { loadTiles(lo, stageBuffers[0], true, /*values=*/false); });
    for (int64_t s = 0; s + 1 < stages; ++s) {
      Value kt = arith::AddIOp::create(b, lo, index(b, s * kTile));
      ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kt, hi),
             [&] { loadTiles(kt, stageBuffers[s], true, /*values=*/true); });
    }
  }
  auto loop = scf::ForOp::create(b, lo, hi, kTileSize, init);
  {
    OpBuilder::InsertionGuard inLoop(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kt = loop.getInductionVar();
    ValueRange state = loop.getRegionIterArgs();
    Value nextKt = arith::AddIOp::create(b, kt, kTileSize);
    Value hasNext =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, nextKt, hi);

    // This tile's K and V buffers (and, with TMA, their mbarriers).
    Buffers current = stageBuffers[0];
    Value parity;
    if (tma) {
      Value j = arith::DivUIOp::create(b, arith::SubIOp::create(b, kt, lo),
                                       kTileSize);
      if (stages == 1) {
        parity = arith::IndexCastOp::create(
            b, b.getI32Type(), arith::RemUIOp::create(b, j, index(b, 2)));
        // V is free: every warp passed the last tile's closing barrier.
        loadTiles(kt, current, /*keys=*/false, /*values=*/true);
      } else {
        std::tie(current, parity) = stageOfTile(j);
        // Tile j + S - 1 loads into stage (j - 1) % S, which every warp
        // left at the last tile's closing barrier (warp-specialized, the
        // producer loads it).
        if (!specialized) {
          Value ahead =
              arith::AddIOp::create(b, kt, index(b, (stages - 1) * kTile));
          ifThen(b,
                 arith::CmpIOp::create(b, arith::CmpIPredicate::slt, ahead, hi),
                 [&] {
                   Value stage = arith::RemUIOp::create(
                       b, arith::AddIOp::create(b, j, index(b, stages - 1)),
                       index(b, stages));
                   loadTiles(ahead, bufferAt(stage), true, /*values=*/true);
                 });
        }
      }
      waitBarrier(b, current.keyBarrier, parity);
    } else {
      waitGroups(0);
      if (wgmma)
        fenceSharedForAsyncProxy(b);
      mlir::gpu::BarrierOp::create(b);
      stageTile(v, current.values, vDim, kt, valueOffsetOrNull);
    }

    Scores scores;
    if (wgmma) {
      scores = toScores(multiplyKeysByWarpgroup(current.keys, /*wait=*/true));
      releaseStage(current.keyEmpty);
    } else {
      scores = multiplyKeys(current.keys);
    }

    // One stage: every warp is done with the K tile, prefetch the next one.
    if (stages == 1) {
      mlir::gpu::BarrierOp::create(b);
      ifThen(b, hasNext, [&] {
        if (tma)
          issueTileLoads(/*keys=*/true, nextKt, Value(), current.keys,
                         current.keyBarrier);
        else
          stageTile(k, current.keys, dim, nextKt);
      });
    }

    Value grows;
    SmallVector<Value> next = updateSoftmax(scores, kt, state, grows);
    MutableArrayRef<Value> all(next);
    Fragments probs = packProbabilities(scores);

    // V(j) has landed (K(j+1) may still be in flight).
    if (tma) {
      waitBarrier(b, current.valueBarrier, parity);
    } else {
      ifThen(
          b, hasNext, [&] { waitGroups(1); }, [&] { waitGroups(0); });
      if (wgmma)
        fenceSharedForAsyncProxy(b);
      mlir::gpu::BarrierOp::create(b);
    }

    // O += P V.
    MutableArrayRef<Value> outputs = all.drop_front(2 * threadRows);
    if (wgmma)
      llvm::copy(warpgroupMma(b, outputs, probs[0],
                              getValueSteps(current.values),
                              /*nMajor=*/true),
                 outputs.begin());
    else
      multiplyValues(outputs, probs, current.values);
    // Every warp is done with the V tile before the next tile overwrites it.
    if (specialized)
      releaseStage(current.valueEmpty);
    else
      mlir::gpu::BarrierOp::create(b);
    scf::YieldOp::create(b, next);
  }
  // A loop that ran no tile left its first K tile in flight (TMA issues
  // none then).
  if (!tma)
    waitGroups(0);
  return SmallVector<Value>(loop.getResults());
}

SmallVector<Value> FlashEmitter::emitOverlappedLoop(ArrayRef<Value> init) {
  int64_t stats = 2 * threadRows, outs = vBlocks * 4;
  auto tileIndex = [&](Value kt) -> Value {
    return arith::DivUIOp::create(b, arith::SubIOp::create(b, kt, lo),
                                  kTileSize);
  };
  // Tile j's K (or V) load, when there is a tile j.
  auto loadTile = [&](Value j, bool keys) {
    Value kt =
        arith::AddIOp::create(b, lo, arith::MulIOp::create(b, j, kTileSize));
    ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, kt, hi),
           [&] { loadTiles(kt, stageOfTile(j).first, keys, !keys); });
  };
  auto flatten = [](ArrayRef<std::array<Value, 4>> frags) {
    SmallVector<Value> flat;
    for (const std::array<Value, 4> &frag : frags)
      flat.append(frag.begin(), frag.end());
    return flat;
  };
  auto unflatten = [](ValueRange flat) {
    SmallVector<std::array<Value, 4>> frags;
    for (size_t i = 0; i < flat.size(); i += 4)
      frags.push_back({flat[i], flat[i + 1], flat[i + 2], flat[i + 3]});
    return frags;
  };
  // Ping-pong: warpgroup g issues its products between waiting on named
  // barrier 1 + g (its turn) and arriving on the other's (its turn ends):
  // each barrier counts the 128 threads that wait and the 128 that arrive.
  // Warpgroup 1 lets warpgroup 0 go first; its last turn hands over to
  // nothing (warpgroup 0 has no turn left).
  Value warpgroup, turnBarrier, otherBarrier, turnThreads;
  if (pingPong) {
    Value tid = mlir::gpu::ThreadIdOp::create(b, mlir::gpu::Dimension::x);
    warpgroup = arith::DivUIOp::create(b, tid, index(b, 128));
    Value g = arith::IndexCastOp::create(b, b.getI32Type(), warpgroup);
    turnBarrier = arith::AddIOp::create(
        b, g, arith::ConstantIntOp::create(b, b.getI32Type(), 1));
    otherBarrier = arith::SubIOp::create(
        b, arith::ConstantIntOp::create(b, b.getI32Type(), 2), g);
    turnThreads = arith::ConstantIntOp::create(b, b.getI32Type(), 256);
  }
  auto startTurn = [&] {
    if (pingPong)
      NVVM::BarrierOp::create(b, TypeRange(), turnBarrier, turnThreads,
                              NVVM::BarrierReductionAttr(), Value());
  };
  // (nvvm.barrier.arrive is built as PTX by a pass this pipeline does not
  // run: the same PTX, written here.)
  auto endTurn = [&] {
    if (pingPong)
      inlinePtx(b, Type(), ValueRange{otherBarrier, turnThreads},
                "bar.arrive $0, $1;", "r,r");
  };
  auto inWarpgroup = [&](int64_t g, llvm::function_ref<void()> body) {
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warpgroup,
                                 index(b, g)),
           body);
  };
  Value any = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, lo, hi);
  ValueRange result = ifThenElse(
      b, any, SmallVector<Type>(init.size(), b.getF32Type()),
      [&] {
        // Tile 0, with every stage free: K(0 .. S - 1), V(0 .. S - 2) load
        // (warp-specialized: the producer loads every tile).
        if (!specialized) {
          for (int64_t s = 0; s < stages; ++s)
            loadTile(index(b, s), /*keys=*/true);
          for (int64_t s = 0; s + 1 < stages; ++s)
            loadTile(index(b, s), /*keys=*/false);
        }
        waitBarrier(b, stageBuffers[0].keyBarrier,
                    arith::ConstantOp::create(b, b.getI32IntegerAttr(0)));
        Scores scores;
        if (pingPong) {
          inWarpgroup(1, endTurn);
          startTurn();
          SmallVector<Value> queries;
          SmallVector<Value> pending = multiplyKeysByWarpgroup(
              stageBuffers[0].keys, /*wait=*/false, &queries);
          endTurn();
          scores = toScores(waitWarpgroupMma(b, 0, pending, queries));
        } else {
          scores = toScores(
              multiplyKeysByWarpgroup(stageBuffers[0].keys, /*wait=*/true));
        }
        // O is still zero: only l needs rescaling (the m, l of the state).
        Value grows;
        SmallVector<Value> alpha;
        SmallVector<Value> carried =
            updateSoftmax(scores, lo, init, grows, &alpha);
        // Every warp is done with K(0): K(S) loads into its stage next.
        if (specialized)
          releaseStage(stageBuffers[0].keyEmpty);
        else
          mlir::gpu::BarrierOp::create(b);

        carried.append(init.begin() + stats, init.end());
        carried.append(flatten(packProbabilities(scores)[0]));
        auto loop = scf::ForOp::create(
            b, arith::AddIOp::create(b, lo, kTileSize), hi, kTileSize, carried);
        {
          OpBuilder::InsertionGuard inLoop(b);
          b.setInsertionPointToStart(loop.getBody());
          Value kt = loop.getInductionVar();
          ValueRange state = loop.getRegionIterArgs();
          Value j = tileIndex(kt);
          // K(j + S - 1) loads into the stage K(j - 1) left (at the last
          // tile's closing barrier), V(j + S - 2) into the one V(j - 2)
          // left.
          if (!specialized) {
            loadTile(arith::AddIOp::create(b, j, index(b, stages - 1)),
                     /*keys=*/true);
            loadTile(arith::AddIOp::create(b, j, index(b, stages - 2)),
                     /*keys=*/false);
          }
          auto [current, parity] = stageOfTile(j);
          auto [previous, previousParity] =
              stageOfTile(arith::SubIOp::create(b, j, index(b, 1)));

          // Issue S(j) = Q K(j)^T, then O += P(j - 1) V(j - 1) (ping-pong:
          // both in this warpgroup's turn, once both tiles are in).
          waitBarrier(b, current.keyBarrier, parity);
          if (pingPong) {
            waitBarrier(b, previous.valueBarrier, previousParity);
            startTurn();
          }
          SmallVector<Value> queries;
          SmallVector<Value> pendingScores =
              multiplyKeysByWarpgroup(current.keys, /*wait=*/false, &queries);
          if (!pingPong)
            waitBarrier(b, previous.valueBarrier, previousParity);
          SmallVector<Value> probs(state.drop_front(stats + outs));
          SmallVector<Value> pendingOutputs =
              warpgroupMma(b, SmallVector<Value>(state.slice(stats, outs)),
                           unflatten(probs), getValueSteps(previous.values),
                           /*nMajor=*/true, /*wait=*/false);
          endTurn();

          // S(j) lands; tile j's softmax runs while P V does.
          Scores scores =
              toScores(waitWarpgroupMma(b, 1, pendingScores, queries));
          releaseStage(current.keyEmpty);
          Value grows;
          SmallVector<Value> alpha;
          SmallVector<Value> next =
              updateSoftmax(scores, kt, state, grows, &alpha);
          // O lands in each branch of the rescale. A wait in the
          // exponentials' own block, ptxas hoisted above them (SASS: the
          // next P coalesced into the registers the in-flight P V reads),
          // undoing the overlap; in the branches it stays below them. The
          // two waits' comments keep LLVM from merging them above the
          // branch.
          ValueRange landed = ifThenElse(
              b, grows, SmallVector<Type>(outs, b.getF32Type()),
              [&] {
                SmallVector<Value> o =
                    waitWarpgroupMma(b, 0, pendingOutputs, probs, "moved");
                rescaleOutputs(o, alpha);
                return o;
              },
              [&] {
                return waitWarpgroupMma(b, 0, pendingOutputs, probs, "kept");
              });
          // Every warp is done with K(j) and V(j - 1).
          if (specialized)
            releaseStage(previous.valueEmpty);
          else
            mlir::gpu::BarrierOp::create(b);
          next.append(landed.begin(), landed.end());
          next.append(flatten(packProbabilities(scores)[0]));
          scf::YieldOp::create(b, next);
        }
        // The last tile's P V.
        ValueRange last = loop.getResults();
        auto [buffers, parity] =
            stageOfTile(tileIndex(arith::SubIOp::create(b, hi, index(b, 1))));
        waitBarrier(b, buffers.valueBarrier, parity);
        SmallVector<Value> done(last.take_front(stats));
        SmallVector<Value> probs(last.drop_front(stats + outs));
        startTurn();
        SmallVector<Value> outputs = warpgroupMma(
            b, SmallVector<Value>(last.slice(stats, outs)), unflatten(probs),
            getValueSteps(buffers.values), /*nMajor=*/true, /*wait=*/!pingPong);
        if (pingPong) {
          inWarpgroup(0, endTurn);
          outputs = waitWarpgroupMma(b, 0, outputs, probs);
        }
        done.append(outputs);
        return done;
      },
      [&] { return SmallVector<Value>(init); });
  return SmallVector<Value>(result);
}
