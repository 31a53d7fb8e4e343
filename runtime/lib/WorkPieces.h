//===- WorkPieces.h - Several kernels' work items as one range --*- C++ -*-===//
//
// A call of several slices (sequences at their own positions) runs each
// slice's kernel over its own work items, but dispatches them as one range
// on the pool: the pieces' items laid end to end, each chunk a thread claims
// cut where pieces begin.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_RT_LIB_WORKPIECES_H
#define HYBRID_RT_LIB_WORKPIECES_H

#include <algorithm>
#include <cstdint>
#include <vector>

namespace hybrid::rt {

/// Where pieces of size(0), ..., size(n - 1) items start when laid end to
/// end, and their total last (n + 1 entries).
template <typename Size>
std::vector<int64_t> layOutPieces(size_t n, const Size &size) {
  std::vector<int64_t> starts(n + 1, 0);
  for (size_t i = 0; i < n; ++i)
    starts[i + 1] = starts[i] + size(i);
  return starts;
}

/// Items [begin, end) of pieces laid out at `starts`, as body(i, first,
/// last) for each piece i's share [first, last) of them (numbered as laid
/// out: piece i's items from starts[i]).
template <typename Body>
void forPieces(const std::vector<int64_t> &starts, int64_t begin, int64_t end,
               const Body &body) {
  size_t i =
      std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin();
  for (--i; begin < end; ++i) {
    int64_t last = std::min(end, starts[i + 1]);
    if (last > begin)
      body(i, begin, last);
    begin = std::max(begin, last);
  }
}

} // namespace hybrid::rt

#endif // HYBRID_RT_LIB_WORKPIECES_H
