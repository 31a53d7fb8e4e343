//===- PrefillTile.h - Query positions per CPU prefill work item -*- C++
//-*-===//
//
// The CPU flash kernel is compiled for at most `q_tile` query positions per
// work item and takes the number to use per call. More positions share each
// key and value the work item loads among more rows (at 16K positions, 256
// rows run 1.6x faster than 32: the keys stop fitting the caches), fewer
// give the threads more work items to balance.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_PREFILLTILE_H
#define HYBRID_RT_LIB_PREFILLTILE_H

#include <cstdint>
#include <string>

namespace hybrid::rt {

/// Query positions in one 32-row block of the flash kernel's micro-kernels
/// (rows are positions times the GQA group).
int64_t getPositionsPerBlock(int64_t groupSize);

/// Work items per thread below which the tile is halved.
constexpr int64_t kMinPrefillItemsPerThread = 8;

/// Positions per work item for `seqLen` queries of `heads` kv heads (times
/// the batch): the largest of `maxTile`, halved in whole row blocks (32
/// rows of `groupSize` query heads per position), that still gives every
/// one of `threads` threads kMinPrefillItemsPerThread work items.
int64_t choosePrefillTile(int64_t maxTile, int64_t groupSize, int64_t seqLen,
                          int64_t heads, int threads);

/// Positions per work item when the flash kernel runs a decode step of
/// `stepTokens` tokens after a cache: every query sees about the same keys
/// (the cache), so items cost alike and one per thread balances; the tile is
/// the largest (whole row blocks, at most `maxTile`) that gives every thread
/// an item, evened out over the items (at 16K context, GQA 4 and one kv
/// head, a 64-token step ran 1.35x faster in two items than in eight).
int64_t chooseStepTile(int64_t maxTile, int64_t groupSize, int64_t stepTokens,
                       int64_t heads, int threads);

/// The positions $HYBRID_CPU_Q_TILE fixes (for tuning experiments and
/// tests; the kernel takes at most its `q_tile`), 0 when it is unset; sets
/// `error` for a value that is not a positive integer.
int64_t getFixedPrefillTile(std::string &error);

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_PREFILLTILE_H
