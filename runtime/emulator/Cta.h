//===- Cta.h - One CTA's execution state in the PTX interpreter -*- C++ -*-===//
//
// The interpreter's per-CTA machine: registers per frame, shared memory and
// its per-byte history for the race checks, cp.async groups, and Hopper's
// asynchronous units (wgmma groups per warp, mbarriers, TMA loads).
// Interpreter.cpp runs warps and executes the SIMT instructions;
// HopperAsync.cpp holds wgmma, mbarrier and TMA semantics.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_CTA_H
#define HYBRID_EMULATOR_CTA_H

#include "Interpreter.h"
#include "Profile.h"
#include "TensorMap.h"

#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

namespace hybrid::emu::detail {

/// Parked: at a warp-collective instruction, until the warp's other
/// running lanes get there.
/// Yielded: spinning on an mbarrier phase that has not completed; the warp
/// lets the others run.
/// Named: at `bar.sync id, count` until the barrier's count is reached.
enum LaneState : uint8_t { Running, Parked, Waiting, Done, Yielded, Named };

inline bool isCollective(Opcode op) {
  return op == Opcode::Shfl || op == Opcode::Vote || op == Opcode::Ldmatrix ||
         op == Opcode::Mma || op == Opcode::WgmmaFence ||
         op == Opcode::WgmmaMma || op == Opcode::WgmmaCommit ||
         op == Opcode::WgmmaWait || op == Opcode::SetMaxNReg ||
         op == Opcode::BarSync || op == Opcode::BarArrive;
}

/// Whether an instruction leaves every lane that runs it Running, at the
/// next instruction: no branch, exit, call, barrier or mbarrier (which can
/// yield). A warp whose lanes all ran one such instruction together is
/// still converged (Cta::runWarp keeps its program counter in a register).
inline bool isStraightLine(Opcode op) {
  switch (op) {
  case Opcode::Bra:
  case Opcode::Ret:
  case Opcode::Exit:
  case Opcode::Call:
  case Opcode::Bar:
  case Opcode::BarSync:
  case Opcode::BarArrive:
  case Opcode::MbarrierInit:
  case Opcode::MbarrierArrive:
  case Opcode::MbarrierArriveExpectTx:
  case Opcode::MbarrierTryWait:
  case Opcode::TensorLoad:
    return false;
  default:
    return true;
  }
}

/// Per-byte shared-memory history for the race checks, against per-warp
/// vector clocks (Cta::clocks): an access is ordered after another warp's
/// if a barrier or an mbarrier phase carried that warp's clock at or past
/// the access's to this warp.
struct Shadow {
  uint32_t writeClock = 0; // the writer's own clock then; 0: no warp wrote
  uint32_t readers = 0;    // warps that read since the last write (their
                           // clocks then: Cta::readClocks)
  uint8_t writer = 0;
  uint8_t pending = 0;   // cp.async copies in flight into this byte
  uint8_t reading = 0;   // in-flight wgmmas reading it (B operands)
  uint8_t unfenced = 0;  // written by the generic proxy, no proxy fence since
  uint16_t landedBy = 0; // 1 + the mbarrier whose phase a TMA load landed at
  uint32_t landedPhase = 0; // ... that barrier's completed phases then
};

/// An mbarrier object in shared memory. TMA loads attached to the current
/// phase land (their bytes written, `pending` on them cleared) when it
/// completes: every expected arrival made, every expected byte delivered.
struct Mbarrier {
  uint64_t address = 0;
  // Vector clocks: the join of this phase's arrivals, and what the last
  // completed phase releases to the warps that observe it.
  std::vector<uint32_t> arrived, released;
  uint32_t expected = 0, arrivalsLeft = 0;
  int64_t bytesLeft = 0;  // tx-count: expected minus delivered
  uint32_t completed = 0; // phases completed; the current parity is & 1
  std::vector<std::pair<uint32_t, uint8_t>> landing; // shared offset, byte
};

/// A wgmma.mma_async issued by one warp (its 16 rows of the warpgroup's
/// 64): results land in its D registers at the wgmma.wait_group that
/// retires its group. Until then the D registers hold NaN, and what it read
/// (A registers, B in shared memory) must stay unchanged.
struct PendingWgmma {
  std::vector<int> dest;          // D registers
  std::vector<uint64_t> results;  // [lane][N/2]
  std::vector<int> sources;       // A registers
  std::vector<uint64_t> snapshot; // [lane][4] A register values
  std::vector<std::pair<uint32_t, uint16_t>> reads; // B: offset, value
  const Instruction *at = nullptr;
  bool superseded = false; // a later wgmma accumulates onto its results
};

struct WarpWgmma {
  bool fenced = false; // wgmma.fence since the last wait_group
  std::vector<PendingWgmma> open;
  std::deque<std::vector<PendingWgmma>> groups;
};

/// Generic addresses of kernel parameters (cvta.param): this window plus
/// the parameter's offset, far above any host (device memory) address.
constexpr uint64_t kParamWindow = 0xffff'0000'0000'0000ull;

/// D registers of an in-flight wgmma read as this NaN.
constexpr uint64_t kInFlight = 0x7fc0dead;

/// One of the CTA's 16 named barriers (`bar.sync id, count` and
/// `bar.arrive id, count`): each warp's arrival counts 32 threads; at the
/// count the waiting warps go on with the arrivals' clocks.
struct NamedBarrier {
  uint32_t expected = 0, arrived = 0;
  std::vector<uint32_t> clock;   // the join of the arrivals' clocks
  std::vector<unsigned> waiters; // warps at bar.sync
};

struct AsyncCopy {
  uint64_t shared, global, size, sourceSize;
};

struct Frame {
  const Function *fn = nullptr;
  std::vector<uint64_t> regs;  // [register][thread]
  std::vector<uint8_t> params; // [thread][paramBytes]
  std::vector<uint8_t> local;  // [thread][localBytes]
  std::vector<uint32_t> pc;
  std::vector<uint8_t> state;
};

class Cta {
public:
  Cta(const Program &program, int function, const Grid &grid,
      const std::vector<uint8_t> &params, const Memory &memory,
      KernelProfile *stats)
      : program(program), kernel(program.module.functions[function]),
        grid(grid), kernelParams(params), memory(memory), stats(stats) {
    threads = grid.block[0] * grid.block[1] * grid.block[2];
    warps = (threads + 31) / 32;
    // Dynamic shared memory starts after the static variables, at its
    // arrays' alignment.
    sharedBytes = program.module.moduleSharedBytes + kernel.sharedBytes;
    uint64_t align = std::max<uint64_t>(16, program.module.dynamicSharedAlign);
    dynamicSharedBase = (sharedBytes + align - 1) / align * align;
    if (grid.dynamicSharedBytes)
      sharedBytes = dynamicSharedBase + grid.dynamicSharedBytes;
    shared.resize(sharedBytes);
    shadow.resize(sharedBytes);
    readClocks.resize(size_t(sharedBytes) * warps);
    clocks.resize(size_t(warps) * warps);
    carry.resize(threads);
    pendingCopies.resize(threads);
    groups.resize(threads);
    wgmma.resize(warps);
    if (const char *env = std::getenv("HYBRID_EMULATOR_MAX_STEPS"))
      budget = std::strtoull(env, nullptr, 10);
  }

  std::string run(unsigned x, unsigned y, unsigned z);

private:
  const Program &program;
  const Function &kernel;
  const Grid &grid;
  const std::vector<uint8_t> &kernelParams;
  const Memory &memory;
  KernelProfile *stats; // null unless profiling
  unsigned threads = 0, warps = 0;
  unsigned ctaid[3] = {0, 0, 0};
  uint64_t sharedBytes = 0, dynamicSharedBase = 0;
  std::vector<uint8_t> shared;
  std::vector<Shadow> shadow;
  std::vector<uint32_t> readClocks; // [byte][warp]: see Shadow::readers
  // [warp][warp]: clocks[w][u] is the latest clock of warp u ordered before
  // warp w's next access; clocks[w][w] is w's own, which each release
  // (bar.sync, an mbarrier arrival) publishes and then advances.
  std::vector<uint32_t> clocks;
  // Warp-instructions this CTA may execute before the emulator calls it an
  // endless loop rather than hang (about 100 s of emulation by default).
  uint64_t steps = 0, budget = 100'000'000;
  std::vector<uint8_t> carry;
  std::vector<std::vector<AsyncCopy>> pendingCopies; // not yet committed
  std::vector<std::deque<std::vector<AsyncCopy>>> groups;
  std::vector<WarpWgmma> wgmma; // per warp
  std::vector<Mbarrier> barriers;
  NamedBarrier named[16];
  uint64_t barrierEvents = 0, lastEvents = 0; // inits, arrivals, TMA loads
  unsigned idleRounds = 0;
  // Per warp and mbarrier: the phases completed when the warp last saw
  // try_wait succeed (what it may read of TMA loads).
  std::vector<std::vector<uint32_t>> observed;
  // The instruction being executed, for fault messages.
  const Function *currentFn = nullptr;
  const Instruction *current = nullptr;
  unsigned currentThread = 0;
  // What the instruction did, for the profile.
  uint32_t executed = 0;
  uint64_t globalAddress[32] = {}, sharedAddress[32] = {};
  unsigned accessBytes = 0;

  uint32_t laneMask(unsigned warp) const;

  void enter(Frame &f, const Function &fn);

  std::string fault(const std::string &what) const;

  /// Runs the lanes of `warp` in `lanes` until each waits at a barrier or
  /// is done. Lanes at the lowest program counter run first, so divergent
  /// paths reconverge; lanes that reach a warp-collective instruction park
  /// there until the warp's other running lanes arrive (LLVM may place the
  /// reconvergence block above the branch that diverged, where lowest-first
  /// alone would split the warp).
  std::string runWarp(Frame &f, unsigned warp, uint32_t lanes);

  void account(const Instruction &in, uint32_t active);

  //===--------------------------------------------------------------------===//
  // Operands
  //===--------------------------------------------------------------------===//

  uint64_t symbolAddress(int symbol) const;

  uint64_t special(Special s, unsigned t) const;

  uint64_t read(const Frame &f, const Operand &o, unsigned t) const {
    return o.kind == Operand::Kind::Register
               ? f.regs[size_t(o.reg) * threads + t]
               : readOther(f, o, t);
  }
  /// An immediate, special register or symbol's address.
  uint64_t readOther(const Frame &f, const Operand &o, unsigned t) const;
  /// `o`'s value for each lane of `lanes` (out[lane]; 0 without `o`), the
  /// operand's kind dispatched once per warp.
  void readLanes(const Frame &f, const Operand *o, unsigned base,
                 uint32_t lanes, uint64_t *out) const;
  void write(Frame &f, const Operand &o, unsigned t, uint64_t v);
  /// Register `o` = values[lane] for each lane of `lanes`.
  void writeLanes(Frame &f, const Operand &o, unsigned base, uint32_t lanes,
                  const uint64_t *values);
  uint64_t address(const Frame &f, const Operand &o, unsigned t) const;

  //===--------------------------------------------------------------------===//
  // Memory
  //===--------------------------------------------------------------------===//

  std::string sharedAccess(uint64_t offset, uint64_t size, unsigned warp,
                           bool isWrite);

  /// A race fault if a write to shared byte `i` on behalf of `warp` (its
  /// own, or an async copy it issues: `what`) is not ordered after the
  /// byte's last write and reads by other warps.
  std::string checkWrite(uint64_t i, unsigned warp, const char *what);
  /// checkWrite's common case, inline: no wgmma reads the byte, no other
  /// warp read it, and its last write is this warp's or ordered before.
  bool writeIsOrdered(const Shadow &s, unsigned warp, const uint32_t *mine) {
    return !s.reading && !(s.readers & ~(1u << warp)) &&
           (!s.writeClock || s.writer == warp ||
            mine[s.writer] >= s.writeClock);
  }

  /// Warp `warp`'s clocks, and every warp's after a CTA barrier.
  uint32_t *clockOf(unsigned warp) { return &clocks[size_t(warp) * warps]; }
  void releaseAtBarrier();
  /// A release by `warp` (an arrival): its clock joins `into`, then
  /// advances, so that its later accesses are not covered.
  void release(unsigned warp, uint32_t *into);
  /// `into` = the element-wise max of itself and `from`.
  void join(uint32_t *into, const uint32_t *from) const;

  /// Whether [addr, addr + size) lies in one allocation (the last one found
  /// is remembered: a kernel's accesses mostly stay in a few tensors).
  bool inGlobal(uint64_t addr, uint64_t size);
  /// inGlobal's fast path, inline: inside the allocation found last.
  bool inLastRange(uint64_t addr, uint64_t size) const {
    return addr >= lastRange[0] && addr + size <= lastRange[1] &&
           addr + size > addr;
  }
  uint64_t lastRange[2] = {0, 0};

  /// Where `size` bytes at `addr` in `space` live for thread t, checked.
  std::string locate(Frame &f, Space space, uint64_t addr, uint64_t size,
                     unsigned t, unsigned warp, bool isWrite, uint8_t *&where);

  static std::string hex(uint64_t v);

  /// ld and st (global, shared, local, param; vectors of up to 4) for the
  /// lanes in `exec`, each access checked as locate does.
  std::string loadStore(Frame &f, const Instruction &in, unsigned warp,
                        uint32_t exec);

  //===--------------------------------------------------------------------===//
  // Instructions
  //===--------------------------------------------------------------------===//

  std::string execute(Frame &f, const Instruction &in, unsigned warp,
                      uint32_t active);

  template <typename Check>
  std::string shuffle(Frame &f, const Instruction &in, unsigned base,
                      uint32_t exec, Check &collective);

  /// vote.sync.{any,all,uni}.pred and vote.sync.ballot.b32 over the
  /// executing lanes of the member mask.
  std::string vote(Frame &f, const Instruction &in, unsigned base,
                   uint32_t exec);

  /// ldmatrix.m8n8.xN[.trans].shared.b16: lanes 8i..8i+7 give the row
  /// addresses of matrix i; lane t gets row t/4, columns 2(t%4) and
  /// 2(t%4)+1 of each matrix (of its transpose with .trans).
  std::string ldmatrix(Frame &f, const Instruction &in, unsigned warp);

  /// mma.sync.m16n8k16.row.col.f32.bf16.bf16.f32 with the PTX ISA's
  /// fragment layouts (g = lane / 4, q = lane % 4):
  ///   A regs: (g, 2q..2q+1) (g+8, 2q..) (g, 2q+8..) (g+8, 2q+8..)
  ///   B regs: (k = 2q..2q+1, n = g) (k = 2q+8.., n = g)
  ///   C/D:    (g, 2q) (g, 2q+1) (g+8, 2q) (g+8, 2q+1)
  std::string mma(Frame &f, const Instruction &in, unsigned base);

  /// The wgmma instructions of one warp. Each warp's share of a warpgroup
  /// MMA (rows 16 (warp % 4) .. + 15 of the 64) depends only on its own A
  /// registers and the shared B, so warps issue theirs independently.
  std::string warpgroupMma(Frame &f, const Instruction &in, unsigned warp);

  /// The mbarrier at the shared address `operand` names, if initialised.
  Mbarrier *findBarrier(uint64_t address);

  /// Completes the barrier's phase if nothing is left: lands its TMA loads.
  void completeIfDone(Mbarrier &m);

  /// mbarrier.init / arrive.expect_tx / try_wait.parity and TMA tile loads
  /// (cp.async.bulk.tensor) for thread t.
  std::string asyncBarrier(Frame &f, const Instruction &in, unsigned t,
                           unsigned warp);

  /// Reads the tensor map at `address` (a generic address: device memory
  /// or, from cvta.param, a kernel parameter; with `param`, a
  /// parameter-space offset) into `map`, faulting unless 64-byte-aligned
  /// bytes made by cuTensorMapEncodeTiled lie there.
  std::string readTensorMap(uint64_t address, bool param, TensorMap &map);

  /// A TMA tile load: the box at the coordinates, zeros outside the tensor,
  /// written at the destination in box order (innermost dimension fastest)
  /// under the map's swizzle, landing when the barrier's phase completes.
  std::string tensorLoad(Frame &f, const Instruction &in, unsigned t,
                         unsigned warp, Mbarrier &m);

  /// Lands a retired wgmma's results, checking that nothing it reads or
  /// writes was touched while it was in flight.
  std::string retire(Frame &f, const PendingWgmma &p, unsigned base);

  /// bar.sync / bar.arrive with an id and a thread count, by a whole warp.
  std::string namedBarrier(Frame &f, const Instruction &in, unsigned warp,
                           uint32_t exec);

  /// call: the executing lanes run the callee to completion in a new frame;
  /// arguments and results pass through param space.
  std::string call(Frame &f, const Instruction &in, unsigned warp,
                   uint32_t exec);
};

} // namespace hybrid::emu::detail

#endif // HYBRID_EMULATOR_CTA_H
