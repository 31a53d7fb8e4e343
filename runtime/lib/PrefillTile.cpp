//===- PrefillTile.cpp - Query positions per CPU prefill work item --------===//

#include "PrefillTile.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

using namespace hybrid::rt;

int64_t hybrid::rt::getPositionsPerBlock(int64_t groupSize) {
  return 32 / std::gcd<int64_t>(32, std::max<int64_t>(groupSize, 1));
}

int64_t hybrid::rt::choosePrefillTile(int64_t maxTile, int64_t groupSize,
                                      int64_t seqLen, int64_t heads,
                                      int threads) {
  int64_t step = getPositionsPerBlock(groupSize);
  int64_t tile = std::max<int64_t>(maxTile, 1);
  auto items = [&](int64_t t) { return heads * ((seqLen + t - 1) / t); };
  int64_t wanted = kMinPrefillItemsPerThread * std::max(threads, 1);
  while (tile > step && items(tile) < wanted)
    tile = std::max(step, (tile / 2 + step - 1) / step * step);
  return tile;
}

int64_t hybrid::rt::chooseStepTile(int64_t maxTile, int64_t groupSize,
                                   int64_t stepTokens, int64_t heads,
                                   int threads) {
  int64_t step = getPositionsPerBlock(groupSize);
  int64_t heads1 = std::max<int64_t>(heads, 1);
  int64_t perHead = (std::max(threads, 1) + heads1 - 1) / heads1;
  int64_t even = (stepTokens + perHead - 1) / perHead;
  int64_t tile = (even + step - 1) / step * step;
  return std::max<int64_t>(1, std::min(std::max(maxTile, int64_t(1)), tile));
}

int64_t hybrid::rt::getFixedPrefillTile(std::string &error) {
  const char *env = std::getenv("HYBRID_CPU_Q_TILE");
  if (!env || !*env)
    return 0;
  char *end = nullptr;
  long long fixed = std::strtoll(env, &end, 10);
  if (end == env || *end != '\0' || fixed <= 0) {
    error = std::string("HYBRID_CPU_Q_TILE: expected a positive number of "
                        "query positions, got '") +
            env + "'";
    return 0;
  }
  return fixed;
}
