//===- Interpreter.h - Run PTX kernels on the host --------------*- C++ -*-===//
//
// Executes a parsed PTX kernel over a grid, one CTA at a time, with the
// semantics of the PTX ISA for the instructions it knows: warps run in
// lockstep (lanes at the lowest program counter first, so divergent lanes
// reconverge), bar.sync waits for every live thread of the CTA, cp.async
// copies land only at cp.async.wait_group, and warp-collective instructions
// (shfl.sync, ldmatrix, mma.sync) need the whole warp.
//
// It also checks what a GPU would not: every global access must fall in an
// allocation, every shared access in the CTA's shared memory, no warp may
// read or write shared bytes another warp wrote (or read, for writes) since
// the last barrier, and no thread may touch shared bytes with a cp.async in
// flight. Shared memory and fresh allocations start as NaN bytes so reads
// of unwritten data show up in results.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_INTERPRETER_H
#define HYBRID_EMULATOR_INTERPRETER_H

#include "Profile.h"
#include "Ptx.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hybrid::emu {

/// Host memory that kernels may address: allocations and module globals.
class Memory {
public:
  void add(uint64_t base, uint64_t size) { ranges[base] = size; }
  /// Forgets the range at `base`; returns its size (0: none).
  uint64_t remove(uint64_t base) {
    auto it = ranges.find(base);
    if (it == ranges.end())
      return 0;
    uint64_t size = it->second;
    ranges.erase(it);
    return size;
  }
  /// Whether [address, address + size) lies inside one range.
  bool contains(uint64_t address, uint64_t size) const;
  /// The range holding `address` as [begin, end), or false.
  bool find(uint64_t address, uint64_t &begin, uint64_t &end) const;

private:
  std::map<uint64_t, uint64_t> ranges;
};

/// A loaded module: the parsed PTX and storage for its globals.
struct Program {
  Module module;
  std::vector<std::unique_ptr<uint8_t[]>> storage;
  std::vector<uint64_t> globalAddress; // per symbol; 0 unless global
};

struct Grid {
  unsigned grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  /// Bytes of dynamic shared memory (the module's `.extern .shared` arrays).
  uint64_t dynamicSharedBytes = 0;
};

/// Runs kernel `function` of `program` over `grid` with the parameter block
/// `params` (laid out as the kernel's .param symbols). Returns "" or the
/// first fault: kernel, block, thread, PTX line and what went wrong. With a
/// `profile`, counts what the kernel executed into it.
std::string launch(const Program &program, int function, const Grid &grid,
                   const std::vector<uint8_t> &params, const Memory &memory,
                   Profile *profile = nullptr);

} // namespace hybrid::emu

#endif // HYBRID_EMULATOR_INTERPRETER_H
