//===- Interpreter.cpp - Run PTX kernels on the host ----------------------===//
//
// Registers are stored per frame as [register][thread] 64-bit words holding
// raw bits; each instruction reads them at its own type. A warp runs until
// all its lanes wait at a barrier or have returned; when every warp of the
// CTA is at bar.sync 0, it releases (a named barrier, at its thread count).
// Shared-memory races are checked against vector clocks per warp, which
// barriers and mbarrier phases carry (Cta.h's Shadow).
// Calls (libdevice's slow paths) run to completion for the calling lanes in
// a fresh frame. The CTA's state is in Cta.h; wgmma, mbarriers and TMA in
// HopperAsync.cpp.
//
//===----------------------------------------------------------------------===//

#include "Cta.h"

#include "Arithmetic.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

using namespace hybrid::emu;
using namespace hybrid::emu::detail;

namespace {
// Fixed-size copies, so that an element's load or store is one move rather
// than a call to memcpy with a run-time size.
uint64_t loadBytes(const uint8_t *from, unsigned bytes) {
  switch (bytes) {
  case 1:
    return *from;
  case 2: {
    uint16_t v;
    std::memcpy(&v, from, 2);
    return v;
  }
  case 4: {
    uint32_t v;
    std::memcpy(&v, from, 4);
    return v;
  }
  default: {
    uint64_t v;
    std::memcpy(&v, from, 8);
    return v;
  }
  }
}

void storeBytes(uint8_t *to, uint64_t v, unsigned bytes) {
  switch (bytes) {
  case 1:
    *to = uint8_t(v);
    return;
  case 2: {
    uint16_t x = uint16_t(v);
    std::memcpy(to, &x, 2);
    return;
  }
  case 4: {
    uint32_t x = uint32_t(v);
    std::memcpy(to, &x, 4);
    return;
  }
  default:
    std::memcpy(to, &v, 8);
  }
}
} // namespace

bool Memory::find(uint64_t address, uint64_t &begin, uint64_t &end) const {
  auto it = ranges.upper_bound(address);
  if (it == ranges.begin())
    return false;
  --it;
  begin = it->first;
  end = it->first + it->second;
  return address < end;
}

bool Memory::contains(uint64_t address, uint64_t size) const {
  uint64_t begin, end;
  return find(address, begin, end) && address + size <= end &&
         address + size >= address;
}

bool Cta::inGlobal(uint64_t addr, uint64_t size) {
  if (inLastRange(addr, size))
    return true;
  if (!memory.find(addr, lastRange[0], lastRange[1]))
    return false;
  return inLastRange(addr, size);
}

std::string Cta::run(unsigned x, unsigned y, unsigned z) {
  ctaid[0] = x;
  ctaid[1] = y;
  ctaid[2] = z;
  steps = 0;
  std::fill(shared.begin(), shared.end(), 0xff);
  std::fill(shadow.begin(), shadow.end(), Shadow());
  std::fill(clocks.begin(), clocks.end(), 0);
  for (unsigned w = 0; w < warps; ++w)
    clockOf(w)[w] = 1;
  std::fill(wgmma.begin(), wgmma.end(), WarpWgmma());
  barriers.clear();
  for (NamedBarrier &n : named)
    n = NamedBarrier();
  observed.assign(warps, {});
  barrierEvents = lastEvents = idleRounds = 0;
  std::fill(carry.begin(), carry.end(), 0);
  for (unsigned t = 0; t < threads; ++t) {
    pendingCopies[t].clear();
    groups[t].clear();
  }
  Frame frame;
  enter(frame, kernel);
  for (unsigned t = 0; t < threads; ++t)
    std::memcpy(&frame.params[t * kernel.paramBytes], kernelParams.data(),
                std::min<size_t>(kernelParams.size(), kernel.paramBytes));
  while (true) {
    for (unsigned w = 0; w < warps; ++w)
      if (std::string e = runWarp(frame, w, laneMask(w)); !e.empty())
        return e;
    // Lanes spinning on an mbarrier run again after the other warps had
    // their turn; a barrier cannot release while any spins.
    bool yielded = false;
    for (unsigned t = 0; t < threads; ++t)
      if (frame.state[t] == Yielded) {
        frame.state[t] = Running;
        yielded = true;
      }
    if (yielded) {
      // Only an arrival, a TMA load or an init moves a barrier: two
      // rounds in which every warp spun or waited without one can never
      // end.
      idleRounds = barrierEvents == lastEvents ? idleRounds + 1 : 0;
      lastEvents = barrierEvents;
      if (idleRounds >= 2) {
        current = nullptr;
        return fault("deadlock: every warp waits on an mbarrier phase (or "
                     "at bar.sync) that nothing left can complete");
      }
      continue;
    }
    idleRounds = 0;
    // A named barrier completed by a warp that ran after its waiters let
    // them go: they run next round.
    if (std::find(frame.state.begin(), frame.state.end(), Running) !=
        frame.state.end())
      continue;
    // Every warp ran until it blocked: threads at a named barrier wait for
    // arrivals nothing left can make (bar.sync 0 needs them too).
    for (unsigned id = 0; id < 16; ++id)
      if (!named[id].waiters.empty()) {
        current = nullptr;
        return fault("deadlock: warp " +
                     std::to_string(named[id].waiters.front()) +
                     " waits at named barrier " + std::to_string(id) + " (" +
                     std::to_string(named[id].arrived) + " of " +
                     std::to_string(named[id].expected) +
                     " threads arrived) for arrivals nothing left can make");
      }
    bool waiting = false;
    for (unsigned t = 0; t < threads; ++t)
      if (frame.state[t] == Waiting) {
        frame.state[t] = Running;
        waiting = true;
      }
    if (!waiting) {
      for (unsigned w = 0; w < warps; ++w)
        if (!wgmma[w].open.empty() || !wgmma[w].groups.empty()) {
          current = wgmma[w].open.empty() ? wgmma[w].groups.back()[0].at
                                          : wgmma[w].open[0].at;
          currentThread = w * 32;
          return fault("warp " + std::to_string(w) +
                       " exits with this wgmma in flight (no "
                       "wgmma.wait_group retired it)");
        }
      for (const Mbarrier &m : barriers)
        if (!m.landing.empty()) {
          current = nullptr;
          return fault("the CTA exits with a TMA load into shared memory "
                       "in flight (mbarrier at offset " +
                       std::to_string(m.address) +
                       ": its phase never completed)");
        }
      return "";
    }
    releaseAtBarrier(); // shared accesses before it are ordered
  }
}

std::string Cta::namedBarrier(Frame &f, const Instruction &in, unsigned warp,
                              uint32_t exec) {
  // A whole warp (checked by the caller): it counts 32 threads.
  const unsigned base = warp * 32;
  uint64_t id = read(f, in.operands[0], base),
           count = read(f, in.operands[1], base);
  for (uint32_t m = exec; m; m &= m - 1) {
    unsigned t = base + __builtin_ctz(m);
    if (read(f, in.operands[0], t) != id || read(f, in.operands[1], t) != count)
      return fault("a named barrier's id or count differs between lanes");
  }
  if (id >= 16 || count == 0 || count % 32 || count > threads)
    return fault("named barrier " + std::to_string(id) + " with " +
                 std::to_string(count) +
                 " threads (ids 0 to 15; a multiple of 32 up to the CTA's " +
                 std::to_string(threads) + ")");
  NamedBarrier &n = named[id];
  if (n.arrived && n.expected != count)
    return fault("named barrier " + std::to_string(id) + " expects " +
                 std::to_string(n.expected) + " threads, this arrival " +
                 std::to_string(count));
  n.expected = uint32_t(count);
  n.arrived += 32;
  ++barrierEvents;
  n.clock.resize(warps, 0);
  release(warp, n.clock.data());
  if (in.opcode == Opcode::BarSync) {
    n.waiters.push_back(warp);
    for (uint32_t m = exec; m; m &= m - 1)
      f.state[base + __builtin_ctz(m)] = Named;
  }
  if (n.arrived < n.expected)
    return "";
  // Complete: the waiting warps go on, ordered after every arrival.
  for (unsigned w : n.waiters) {
    join(clockOf(w), n.clock.data());
    for (uint32_t m = laneMask(w); m; m &= m - 1)
      if (f.state[w * 32 + __builtin_ctz(m)] == Named)
        f.state[w * 32 + __builtin_ctz(m)] = Running;
  }
  n = NamedBarrier();
  return "";
}

void Cta::release(unsigned warp, uint32_t *into) {
  join(into, clockOf(warp));
  ++clockOf(warp)[warp];
}

void Cta::join(uint32_t *into, const uint32_t *from) const {
  for (unsigned u = 0; u < warps; ++u)
    into[u] = std::max(into[u], from[u]);
}

void Cta::releaseAtBarrier() {
  std::vector<uint32_t> all(warps, 0);
  for (unsigned w = 0; w < warps; ++w)
    join(all.data(), clockOf(w));
  for (unsigned w = 0; w < warps; ++w) {
    std::copy(all.begin(), all.end(), clockOf(w));
    ++clockOf(w)[w];
  }
}

uint32_t Cta::laneMask(unsigned warp) const {
  unsigned lanes = std::min(32u, threads - warp * 32);
  return lanes == 32 ? ~0u : (1u << lanes) - 1;
}

void Cta::enter(Frame &f, const Function &fn) {
  f.fn = &fn;
  // 32 more: readLanes copies a warp's 32 lanes at once, so the last warp
  // of a CTA whose threads are not a multiple of 32 reads past the last
  // register's row (lanes its mask then drops).
  f.regs.assign(size_t(fn.registers) * threads + 32, 0);
  f.params.assign(size_t(fn.paramBytes) * threads, 0);
  f.local.assign(size_t(fn.localBytes) * threads, 0xff);
  f.pc.assign(threads, 0);
  f.state.assign(threads, Running);
}

std::string Cta::fault(const std::string &what) const {
  std::string where =
      "kernel " + kernel.name + ", block (" + std::to_string(ctaid[0]) + "," +
      std::to_string(ctaid[1]) + "," + std::to_string(ctaid[2]) + "), thread " +
      std::to_string(currentThread);
  if (current)
    where += ", " +
             (currentFn && currentFn != &kernel ? "in " + currentFn->name + ", "
                                                : std::string()) +
             "PTX line " + std::to_string(current->line) + " `" +
             current->text + "`";
  return where + ": " + what;
}

std::string Cta::runWarp(Frame &f, unsigned warp, uint32_t lanes) {
  const unsigned base = warp * 32;
  const std::vector<Instruction> &body = f.fn->body;
  // While the warp runs converged through straight-line code (every
  // pending lane ran the last instruction), its program counter lives
  // here, not in each lane's f.pc: the lanes' scan and per-lane updates
  // were a sixth of the emulator's time.
  uint32_t convergedPc = 0, converged = 0;
  currentFn = f.fn;
  while (true) {
    uint32_t minPc = convergedPc, pending = converged, active = converged;
    if (!converged) {
      minPc = UINT32_MAX;
      uint32_t parked = 0, waiting = 0;
      for (uint32_t m = lanes; m; m &= m - 1) {
        unsigned lane = __builtin_ctz(m), t = base + lane;
        uint8_t state = f.state[t];
        if (state == Running || state == Parked)
          pending |= 1u << lane;
        if (state == Parked)
          parked |= 1u << lane;
        if (state == Waiting)
          waiting |= 1u << lane;
        if (state == Running && f.pc[t] < minPc)
          minPc = f.pc[t];
      }
      if (!pending)
        return "";
      if (minPc == UINT32_MAX) {
        // Every pending lane is parked: they must be at one instruction,
        // with no lane of the warp waiting at a barrier.
        minPc = f.pc[base + __builtin_ctz(parked)];
        current = &body[minPc];
        currentThread = base + __builtin_ctz(parked);
        for (uint32_t m = parked; m; m &= m - 1)
          if (f.pc[base + __builtin_ctz(m)] != minPc) {
            const Instruction &other = body[f.pc[base + __builtin_ctz(m)]];
            return fault("warp " + std::to_string(warp) +
                         " diverged: its lanes wait at two warp-collective "
                         "instructions (this one and PTX line " +
                         std::to_string(other.line) + ")");
          }
        if (waiting)
          return fault("warp " + std::to_string(warp) + " diverged: lanes 0x" +
                       hex(waiting) + " wait at a barrier while lanes 0x" +
                       hex(parked) + " wait here");
        for (uint32_t m = parked; m; m &= m - 1)
          f.state[base + __builtin_ctz(m)] = Running;
        active = parked;
      } else {
        for (uint32_t m = lanes; m; m &= m - 1) {
          unsigned t = base + __builtin_ctz(m);
          if (f.state[t] == Running && f.pc[t] == minPc)
            active |= 1u << (t - base);
        }
      }
    }
    currentThread = base + __builtin_ctz(active);
    if (minPc >= body.size()) {
      current = nullptr;
      return fault("ran past the end of " + f.fn->name);
    }
    current = &body[minPc];
    const Instruction &in = *current;
    if (++steps > budget)
      return fault("the CTA ran past " + std::to_string(budget) +
                   " warp-instructions: an endless loop? "
                   "(HYBRID_EMULATOR_MAX_STEPS raises the limit)");
    if (isCollective(in.opcode) && active != pending) {
      for (uint32_t m = active; m; m &= m - 1)
        f.state[base + __builtin_ctz(m)] = Parked;
      continue;
    }
    bool straight = isStraightLine(in.opcode) && active == pending;
    if (!straight)
      for (uint32_t m = active; m; m &= m - 1)
        f.pc[base + __builtin_ctz(m)] = minPc + 1;
    if (std::string e = execute(f, in, warp, active); !e.empty())
      return e;
    converged = straight ? active : 0;
    convergedPc = minPc + 1;
    if (stats)
      account(in, active);
  }
}

void Cta::account(const Instruction &in, uint32_t active) {
  ++stats->warpInstructions;
  stats->threadInstructions += __builtin_popcount(active);
  Kind kind = Profile::classify(in);
  ++stats->byKind[unsigned(kind)];
  // A warp's share of wgmma m64nNk16 is N/8 mma.sync m16n8k16.
  if (in.opcode == Opcode::WgmmaMma)
    stats->byKind[unsigned(kind)] += in.n / 8 - 1;
  unsigned lanes = __builtin_popcount(executed);
  if (in.opcode == Opcode::Bra && executed && executed != active)
    ++stats->divergentBranches;
  if (!lanes)
    return;
  auto shared = [&](const uint64_t *addresses, unsigned bytes) {
    stats->sharedWavefronts +=
        Profile::sharedWavefronts(addresses, executed, bytes);
    stats->sharedIdealWavefronts += (uint64_t(lanes) * bytes + 127) / 128;
  };
  auto global = [&](unsigned bytes) {
    stats->globalSectors +=
        Profile::globalSectors(globalAddress, executed, bytes);
    stats->globalIdealSectors += (uint64_t(lanes) * bytes + 31) / 32;
  };
  switch (kind) {
  case Kind::SharedLoad:
  case Kind::SharedStore:
    shared(sharedAddress, accessBytes);
    break;
  case Kind::GlobalLoad:
  case Kind::GlobalStore:
    global(accessBytes);
    break;
  case Kind::AsyncCopy:
    if (in.opcode == Opcode::CpAsync) {
      global(accessBytes);
      shared(sharedAddress, accessBytes);
    }
    break;
  default:
    break;
  }
}

uint64_t Cta::symbolAddress(int symbol) const {
  const Symbol &s = program.module.symbols[symbol];
  switch (s.space) {
  case Space::Global:
    return program.globalAddress[symbol];
  case Space::Shared:
    if (s.dynamic)
      return dynamicSharedBase;
    return s.function < 0 ? s.offset
                          : program.module.moduleSharedBytes + s.offset;
  default:
    return s.offset; // local and param: frame-relative
  }
}

uint64_t Cta::special(Special s, unsigned t) const {
  if (s == Special::LaneId)
    return t % 32;
  if (s == Special::WarpId)
    return t / 32;
  // %tid, %ntid, %ctaid, %nctaid, each .x .y .z in enum order.
  const unsigned *b = grid.block;
  unsigned axis = unsigned(s) % 3;
  switch (unsigned(s) / 3) {
  case 0:
    return axis == 0   ? t % b[0]
           : axis == 1 ? (t / b[0]) % b[1]
                       : t / (b[0] * b[1]);
  case 1:
    return b[axis];
  case 2:
    return ctaid[axis];
  default:
    return grid.grid[axis];
  }
}

uint64_t Cta::readOther(const Frame &f, const Operand &o, unsigned t) const {
  switch (o.kind) {
  case Operand::Kind::Immediate:
    return o.value;
  case Operand::Kind::Special:
    return special(o.special, t);
  case Operand::Kind::Symbol:
    return symbolAddress(o.symbol);
  default:
    return 0;
  }
}

void Cta::readLanes(const Frame &f, const Operand *o, unsigned base,
                    uint32_t lanes, uint64_t *out) const {
  if (!o) {
    std::fill(out, out + 32, 0);
  } else if (o->kind == Operand::Kind::Register) {
    std::copy_n(&f.regs[size_t(o->reg) * threads + base], 32, out);
  } else if (o->kind == Operand::Kind::Immediate) {
    std::fill(out, out + 32, o->value);
  } else {
    for (uint32_t m = lanes; m; m &= m - 1) {
      unsigned lane = __builtin_ctz(m);
      out[lane] = read(f, *o, base + lane);
    }
  }
}

void Cta::write(Frame &f, const Operand &o, unsigned t, uint64_t v) {
  f.regs[size_t(o.reg) * threads + t] = v;
}

void Cta::writeLanes(Frame &f, const Operand &o, unsigned base, uint32_t lanes,
                     const uint64_t *values) {
  uint64_t *to = &f.regs[size_t(o.reg) * threads + base];
  if (lanes == ~0u) {
    std::copy_n(values, 32, to);
    return;
  }
  for (uint32_t m = lanes; m; m &= m - 1) {
    unsigned lane = __builtin_ctz(m);
    to[lane] = values[lane];
  }
}

uint64_t Cta::address(const Frame &f, const Operand &o, unsigned t) const {
  uint64_t base = o.reg >= 0      ? f.regs[size_t(o.reg) * threads + t]
                  : o.symbol >= 0 ? symbolAddress(o.symbol)
                                  : 0;
  return base + o.value;
}

std::string Cta::sharedAccess(uint64_t offset, uint64_t size, unsigned warp,
                              bool isWrite) {
  if (offset + size > sharedBytes || offset + size < offset)
    return fault("shared " + std::string(isWrite ? "write" : "read") + " of " +
                 std::to_string(size) + " bytes at offset " +
                 std::to_string(offset) + " is outside the CTA's " +
                 std::to_string(sharedBytes) + " bytes");
  const uint32_t *mine = clockOf(warp);
  for (uint64_t i = offset; i < offset + size; ++i) {
    Shadow &s = shadow[i];
    if (s.pending)
      return fault("shared byte " + std::to_string(i) + " is " +
                   (isWrite ? "written" : "read") +
                   " while an async copy into it is in flight (missing "
                   "cp.async.wait_group or mbarrier wait?)");
    if (s.landedBy) {
      const std::vector<uint32_t> &seen = observed[warp];
      unsigned b = s.landedBy - 1;
      if (b >= seen.size() || seen[b] < s.landedPhase)
        return fault("warp " + std::to_string(warp) + " " +
                     (isWrite ? "writes" : "reads") + " shared byte " +
                     std::to_string(i) +
                     " that a TMA load landed, without having waited on "
                     "the mbarrier phase it completed");
      if (isWrite)
        s.landedBy = 0;
    }
    if (isWrite) {
      if (!writeIsOrdered(s, warp, mine))
        if (std::string e = checkWrite(i, warp, "writes"); !e.empty())
          return e;
      s.readers = 0;
      s.writeClock = mine[warp];
      s.writer = uint8_t(warp);
      s.unfenced = 1;
      continue;
    }
    if (s.writeClock && s.writer != warp && mine[s.writer] < s.writeClock)
      return fault("race: warp " + std::to_string(warp) +
                   " reads shared byte " + std::to_string(i) + " that warp " +
                   std::to_string(s.writer) +
                   " wrote with no barrier or mbarrier phase between");
    s.readers |= 1u << warp;
    readClocks[i * warps + warp] = mine[warp];
  }
  return "";
}

std::string Cta::checkWrite(uint64_t i, unsigned warp, const char *what) {
  const Shadow &s = shadow[i];
  const uint32_t *mine = clockOf(warp);
  auto race = [&](unsigned other, const char *did) {
    return fault("race: warp " + std::to_string(warp) + " " + what +
                 " shared byte " + std::to_string(i) + " that warp " +
                 std::to_string(other) + " " + did +
                 " with no barrier or mbarrier phase between");
  };
  if (s.reading)
    return fault("race: warp " + std::to_string(warp) + " " + what +
                 " shared byte " + std::to_string(i) +
                 " that an in-flight wgmma reads (before the "
                 "wgmma.wait_group that retires it)");
  if (s.writeClock && s.writer != warp && mine[s.writer] < s.writeClock)
    return race(s.writer, "wrote");
  for (uint32_t r = s.readers & ~(1u << warp); r; r &= r - 1) {
    unsigned reader = __builtin_ctz(r);
    if (mine[reader] < readClocks[i * warps + reader])
      return race(reader, "read");
  }
  return "";
}

std::string Cta::locate(Frame &f, Space space, uint64_t addr, uint64_t size,
                        unsigned t, unsigned warp, bool isWrite,
                        uint8_t *&where) {
  const char *verb = isWrite ? "write" : "read";
  switch (space) {
  case Space::Global:
    if (!inGlobal(addr, size))
      return fault(std::string("out-of-bounds global ") + verb + " of " +
                   std::to_string(size) + " bytes at 0x" + hex(addr));
    if (addr % size)
      return fault(std::string("misaligned global ") + verb + " at 0x" +
                   hex(addr));
    where = reinterpret_cast<uint8_t *>(addr);
    return "";
  case Space::Shared:
    if (addr % size)
      return fault(std::string("misaligned shared ") + verb + " at offset " +
                   std::to_string(addr));
    if (std::string e = sharedAccess(addr, size, warp, isWrite); !e.empty())
      return e;
    where = &shared[addr];
    return "";
  case Space::Local:
    if (addr + size > f.fn->localBytes)
      return fault(std::string("local ") + verb + " outside the frame");
    where = &f.local[size_t(t) * f.fn->localBytes + addr];
    return "";
  case Space::Param:
    if (addr + size > f.fn->paramBytes)
      return fault(std::string("param ") + verb + " outside the parameters");
    where = &f.params[size_t(t) * f.fn->paramBytes + addr];
    return "";
  default:
    return fault("unsupported state space");
  }
}

std::string Cta::loadStore(Frame &f, const Instruction &in, unsigned warp,
                           uint32_t exec) {
  const unsigned base = warp * 32;
  const bool isStore = in.opcode == Opcode::St;
  const Operand &addrOp = in.operands[isStore ? 0 : 1];
  const Operand &valOp = in.operands[isStore ? 1 : 0];
  const unsigned bytes = std::max(1u, bitWidth(in.type) / 8), n = in.vector;
  const uint64_t size = uint64_t(bytes) * n;
  const bool sign = !isStore && isSigned(in.type);
  uint64_t *addresses =
      in.space == Space::Shared ? sharedAddress : globalAddress;
  accessBytes = unsigned(size);
  for (uint32_t m = exec; m; m &= m - 1) {
    unsigned lane = __builtin_ctz(m), t = base + lane;
    currentThread = t;
    uint64_t addr = address(f, addrOp, t);
    uint8_t *where = nullptr;
    // Aligned accesses inside the last allocation found, the common case,
    // skip locate's dispatch; it checks (and names) everything else.
    if (in.space == Space::Global && (addr & (size - 1)) == 0 &&
        inLastRange(addr, size)) {
      where = reinterpret_cast<uint8_t *>(addr);
    } else if (std::string e =
                   locate(f, in.space, addr, size, t, warp, isStore, where);
               !e.empty()) {
      return e;
    }
    addresses[lane] = addr;
    for (unsigned i = 0; i < n; ++i) {
      const Operand &v = n > 1 ? valOp.elements[i] : valOp;
      if (isStore) {
        storeBytes(where + i * bytes, read(f, v, t), bytes);
      } else {
        uint64_t x = loadBytes(where + i * bytes, bytes);
        write(f, v, t, sign ? uint64_t(signExtend(x, bytes * 8)) : x);
      }
    }
  }
  return "";
}

std::string Cta::hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llx", (unsigned long long)v);
  return buf;
}

std::string Cta::execute(Frame &f, const Instruction &in, unsigned warp,
                         uint32_t active) {
  const unsigned base = warp * 32;
  uint32_t exec = active;
  if (in.guard >= 0) {
    exec = 0;
    for (uint32_t m = active; m; m &= m - 1) {
      unsigned lane = __builtin_ctz(m);
      bool p = f.regs[size_t(in.guard) * threads + base + lane] & 1;
      if (p != in.guardNegated)
        exec |= 1u << lane;
    }
  }
  executed = exec;
  auto each = [&](auto &&body) -> std::string {
    for (uint32_t m = exec; m; m &= m - 1) {
      unsigned t = base + __builtin_ctz(m);
      currentThread = t;
      if (std::string e = body(t); !e.empty())
        return e;
    }
    return "";
  };
  // .sync.aligned instructions need every thread of the warp, exited
  // ones included (exiting first is undefined behaviour on a GPU).
  auto collective = [&]() -> std::string {
    uint32_t whole = laneMask(warp);
    if (exec != whole || active != whole)
      return fault("executed by a diverged warp (lanes 0x" + hex(exec) +
                   " of 0x" + hex(whole) +
                   "): .sync.aligned instructions "
                   "need the whole warp");
    return "";
  };
  const std::vector<Operand> &ops = in.operands;
  switch (in.opcode) {
  case Opcode::Bra:
    for (uint32_t m = exec; m; m &= m - 1)
      f.pc[base + __builtin_ctz(m)] = uint32_t(ops[0].symbol);
    return "";
  case Opcode::Ret:
  case Opcode::Exit:
    for (uint32_t m = exec; m; m &= m - 1)
      f.state[base + __builtin_ctz(m)] = Done;
    return "";
  case Opcode::BarSync:
  case Opcode::BarArrive:
    if (f.fn != &kernel)
      return fault("a named barrier inside a called function");
    if (std::string e = collective(); !e.empty())
      return e;
    return namedBarrier(f, in, warp, exec);
  case Opcode::Bar:
    if (f.fn != &kernel)
      return fault("bar.sync inside a called function");
    // Lanes may arrive from different paths (ptxas reconverges them);
    // the barrier releases once every live thread of the CTA waits.
    for (uint32_t m = exec; m; m &= m - 1)
      f.state[base + __builtin_ctz(m)] = Waiting;
    return "";
  case Opcode::Call:
    return call(f, in, warp, exec);
  case Opcode::Setp: {
    uint64_t a[32], b[32], c[32];
    bool r[32];
    readLanes(f, &ops[1], base, exec, a);
    readLanes(f, &ops[2], base, exec, b);
    compare(in, exec, a, b, r);
    if (in.combine != BoolOp::None)
      readLanes(f, &ops[3], base, exec, c);
    for (uint32_t m = exec; m; m &= m - 1) {
      unsigned lane = __builtin_ctz(m), t = base + lane;
      bool p = r[lane], q = !p;
      if (in.combine != BoolOp::None) {
        bool x = c[lane] & 1;
        p = in.combine == BoolOp::And ? (p && x) : (p || x);
        q = in.combine == BoolOp::And ? (q && x) : (q || x);
      }
      write(f, ops[0], t, p);
      if (ops[0].predicateOut >= 0)
        f.regs[size_t(ops[0].predicateOut) * threads + t] = q;
    }
    return "";
  }
  case Opcode::Selp: {
    uint64_t a[32], b[32], c[32];
    readLanes(f, &ops[1], base, exec, a);
    readLanes(f, &ops[2], base, exec, b);
    readLanes(f, &ops[3], base, exec, c);
    for (uint32_t m = exec; m; m &= m - 1) {
      unsigned lane = __builtin_ctz(m);
      a[lane] = c[lane] & 1 ? a[lane] : b[lane];
    }
    writeLanes(f, ops[0], base, exec, a);
    return "";
  }
  case Opcode::Cvta:
    // Global and shared addresses are the same generic or not here; a
    // kernel parameter's generic address lies in the parameter window.
    if (in.space == Space::Param && !f.fn->entry)
      return fault("cvta.param in " + f.fn->name +
                   ", which is no kernel: only kernel parameters have "
                   "generic addresses");
    return each([&](unsigned t) -> std::string {
      uint64_t a = read(f, ops[1], t);
      write(f, ops[0], t, in.space == Space::Param ? kParamWindow + a : a);
      return "";
    });
  case Opcode::Cvt: {
    uint64_t a[32], r[32];
    readLanes(f, &ops[1], base, exec, a);
    if (in.type == Type::BF16x2) { // cvt.rn.bf16x2.f32 d, hi, lo
      uint64_t lo[32];
      readLanes(f, &ops[2], base, exec, lo);
      for (uint32_t m = exec; m; m &= m - 1) {
        unsigned lane = __builtin_ctz(m);
        r[lane] =
            uint64_t(toBF16(asF32(a[lane]))) << 16 | toBF16(asF32(lo[lane]));
      }
    } else if (exec && !convert(in, exec, a, r)) {
      currentThread = base + __builtin_ctz(exec);
      return fault("unsupported conversion");
    }
    writeLanes(f, ops[0], base, exec, r);
    return "";
  }
  case Opcode::Mov:
    if (ops[0].kind != Operand::Kind::Vector &&
        ops[1].kind != Operand::Kind::Vector) {
      uint64_t a[32];
      uint64_t mask = widthMask(bitWidth(in.type) ? bitWidth(in.type) : 64);
      readLanes(f, &ops[1], base, exec, a);
      for (uint32_t m = exec; m; m &= m - 1)
        a[__builtin_ctz(m)] &= mask;
      writeLanes(f, ops[0], base, exec, a);
      return "";
    }
    return each([&](unsigned t) -> std::string {
      const Operand &d = ops[0], &s = ops[1];
      unsigned w = bitWidth(in.type);
      if (s.kind == Operand::Kind::Vector) { // pack, first = low
        unsigned ew = w / unsigned(s.elements.size());
        uint64_t v = 0;
        for (size_t i = 0; i < s.elements.size(); ++i)
          v |= (read(f, s.elements[i], t) & widthMask(ew)) << (ew * i);
        write(f, d, t, v);
      } else { // unpack
        unsigned ew = w / unsigned(d.elements.size());
        uint64_t v = read(f, s, t);
        for (size_t i = 0; i < d.elements.size(); ++i)
          write(f, d.elements[i], t, (v >> (ew * i)) & widthMask(ew));
      }
      return "";
    });
  case Opcode::Ld:
  case Opcode::St:
    return loadStore(f, in, warp, exec);
  case Opcode::Shfl:
    return shuffle(f, in, base, exec, collective);
  case Opcode::Vote:
    if (std::string e = collective(); !e.empty())
      return e;
    return vote(f, in, base, exec);
  case Opcode::Ldmatrix:
    if (std::string e = collective(); !e.empty())
      return e;
    return ldmatrix(f, in, warp);
  case Opcode::Mma:
    if (std::string e = collective(); !e.empty())
      return e;
    return mma(f, in, base);
  case Opcode::CpAsync:
    return each([&](unsigned t) -> std::string {
      uint64_t dst = address(f, ops[0], t), src = address(f, ops[1], t);
      uint64_t size = read(f, ops[2], t);
      uint64_t sourceSize = ops.size() > 3 ? read(f, ops[3], t) : size;
      if (size != 4 && size != 8 && size != 16)
        return fault("cp.async size must be 4, 8 or 16");
      if (sourceSize > size)
        return fault("cp.async source size exceeds the copy size");
      if (dst % size || src % size)
        return fault("misaligned cp.async");
      if (sourceSize && !inGlobal(src, sourceSize))
        return fault("cp.async reads out of bounds at 0x" + hex(src));
      if (dst + size > sharedBytes)
        return fault("cp.async writes outside shared memory");
      // The copy may land any time until the wait: it must be ordered
      // after other warps' accesses.
      const uint32_t *mine = clockOf(warp);
      for (uint64_t i = dst; i < dst + size; ++i) {
        Shadow &s = shadow[i];
        if (!writeIsOrdered(s, warp, mine))
          if (std::string e = checkWrite(i, warp, "copies (cp.async) into");
              !e.empty())
            return e;
        if (s.pending == 255)
          return fault("too many cp.async in flight into one byte");
        ++s.pending;
      }
      pendingCopies[t].push_back({dst, src, size, sourceSize});
      globalAddress[t - base] = src;
      sharedAddress[t - base] = dst;
      accessBytes = unsigned(size);
      return "";
    });
  case Opcode::WgmmaFence:
  case Opcode::WgmmaMma:
  case Opcode::WgmmaCommit:
  case Opcode::WgmmaWait:
    if (std::string e = collective(); !e.empty())
      return e;
    return warpgroupMma(f, in, warp);
  case Opcode::FenceProxyAsync:
    // Orders this warp's generic-proxy shared writes before later
    // async-proxy (wgmma, TMA) accesses.
    for (Shadow &s : shadow)
      if (s.writer == warp)
        s.unfenced = 0;
    return "";
  case Opcode::OrderingFence:
  case Opcode::SetMaxNReg:
    return "";
  case Opcode::MemoryFence:
    // Other CTAs run on other host threads.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return "";
  case Opcode::Atom:
    return each([&](unsigned t) -> std::string {
      uint64_t addr = address(f, ops[1], t);
      unsigned bytes = bitWidth(in.type) / 8;
      uint8_t *where = nullptr;
      if (std::string e = locate(f, Space::Global, addr, bytes, t, warp,
                                 /*isWrite=*/true, where);
          !e.empty())
        return e;
      uint64_t value = read(f, ops[2], t), old = 0;
      if (bytes == 4)
        old = __atomic_fetch_add(reinterpret_cast<uint32_t *>(where),
                                 uint32_t(value), __ATOMIC_SEQ_CST);
      else
        old = __atomic_fetch_add(reinterpret_cast<uint64_t *>(where), value,
                                 __ATOMIC_SEQ_CST);
      globalAddress[t - base] = addr;
      accessBytes = bytes;
      write(f, ops[0], t, old);
      return "";
    });
  case Opcode::PrefetchTensorMap:
    return each([&](unsigned t) -> std::string {
      TensorMap map;
      return readTensorMap(address(f, ops[0], t), in.space == Space::Param,
                           map);
    });
  case Opcode::MbarrierInit:
  case Opcode::MbarrierArrive:
  case Opcode::MbarrierArriveExpectTx:
  case Opcode::MbarrierTryWait:
  case Opcode::TensorLoad:
    return each([&](unsigned t) -> std::string {
      return asyncBarrier(f, in, t, warp);
    });
  case Opcode::CpAsyncCommit:
    return each([&](unsigned t) -> std::string {
      groups[t].push_back(std::move(pendingCopies[t]));
      pendingCopies[t].clear();
      return "";
    });
  case Opcode::CpAsyncWait:
    return each([&](unsigned t) -> std::string {
      size_t keep = ops.empty() ? 0 : size_t(read(f, ops[0], t));
      if (ops.empty()) { // wait_all also completes uncommitted copies
        groups[t].push_back(std::move(pendingCopies[t]));
        pendingCopies[t].clear();
      }
      while (groups[t].size() > keep) {
        for (const AsyncCopy &c : groups[t].front()) {
          for (uint64_t i = c.shared; i < c.shared + c.size; ++i)
            --shadow[i].pending;
          if (std::string e = sharedAccess(c.shared, c.size, warp, true);
              !e.empty())
            return e;
          std::memset(&shared[c.shared], 0, c.size);
          std::memcpy(&shared[c.shared],
                      reinterpret_cast<const void *>(c.global), c.sourceSize);
        }
        groups[t].pop_front();
      }
      return "";
    });
  default:
    break;
  }
  // Arithmetic.
  if (std::string why = whyUnsupported(in); !why.empty())
    return fault(why);
  uint64_t a[32], b[32], c[32], r[32];
  readLanes(f, ops.size() > 1 ? &ops[1] : nullptr, base, exec, a);
  readLanes(f, ops.size() > 2 ? &ops[2] : nullptr, base, exec, b);
  readLanes(f, ops.size() > 3 ? &ops[3] : nullptr, base, exec, c);
  if (exec && !arithmetic(in, exec, a, b, c, &carry[base], r)) {
    currentThread = base + __builtin_ctz(exec);
    return fault("unsupported instruction");
  }
  writeLanes(f, ops[0], base, exec, r);
  return "";
}

template <typename Check>
std::string Cta::shuffle(Frame &f, const Instruction &in, unsigned base,
                         uint32_t exec, Check &collective) {
  const std::vector<Operand> &ops = in.operands;
  if (std::string e = collective(); !e.empty())
    return e;
  uint64_t source[32] = {};
  for (uint32_t m = exec; m; m &= m - 1) {
    unsigned lane = __builtin_ctz(m);
    source[lane] = read(f, ops[1], base + lane);
  }
  for (uint32_t m = exec; m; m &= m - 1) {
    unsigned lane = __builtin_ctz(m), t = base + lane;
    currentThread = t;
    uint32_t b = uint32_t(read(f, ops[2], t)), c = uint32_t(read(f, ops[3], t));
    uint32_t members = uint32_t(read(f, ops[4], t));
    if ((members & exec) != exec)
      return fault("shfl.sync member mask 0x" + hex(members) +
                   " leaves out executing lanes 0x" + hex(exec));
    uint32_t clamp = c & 0x1f, segmask = (c >> 8) & 0x1f;
    uint32_t maxLane = (lane & segmask) | (clamp & ~segmask);
    uint32_t minLane = lane & segmask;
    int64_t j = lane;
    bool inRange = false;
    switch (in.shuffle) {
    case ShuffleMode::Up:
      j = int64_t(lane) - b;
      inRange = j >= minLane;
      break;
    case ShuffleMode::Down:
      j = int64_t(lane) + b;
      inRange = j <= maxLane;
      break;
    case ShuffleMode::Bfly:
      j = lane ^ b;
      inRange = j <= maxLane;
      break;
    case ShuffleMode::Idx:
      j = minLane | (b & ~segmask);
      inRange = j <= maxLane;
      break;
    }
    if (!inRange)
      j = lane;
    if (!((members >> j) & 1))
      return fault("shfl.sync reads lane " + std::to_string(j) +
                   " outside the member mask");
    write(f, ops[0], t, source[j] & 0xffffffff);
    if (ops[0].predicateOut >= 0)
      f.regs[size_t(ops[0].predicateOut) * threads + t] = inRange;
  }
  return "";
}

std::string Cta::vote(Frame &f, const Instruction &in, unsigned base,
                      uint32_t exec) {
  const std::vector<Operand> &ops = in.operands;
  uint32_t ballot = 0;
  for (uint32_t m = exec; m; m &= m - 1) {
    unsigned lane = __builtin_ctz(m);
    currentThread = base + lane;
    uint32_t members = uint32_t(read(f, ops[2], base + lane));
    if ((members & exec) != exec)
      return fault("vote.sync member mask 0x" + hex(members) +
                   " leaves out executing lanes 0x" + hex(exec));
    if (read(f, ops[1], base + lane) & 1)
      ballot |= 1u << lane;
  }
  uint64_t result = 0;
  switch (in.vote) {
  case VoteMode::Any:
    result = ballot != 0;
    break;
  case VoteMode::All:
    result = ballot == exec;
    break;
  case VoteMode::Uni:
    result = ballot == 0 || ballot == exec;
    break;
  case VoteMode::Ballot:
    result = ballot;
    break;
  }
  for (uint32_t m = exec; m; m &= m - 1)
    write(f, ops[0], base + __builtin_ctz(m), result);
  return "";
}

std::string Cta::ldmatrix(Frame &f, const Instruction &in, unsigned warp) {
  const unsigned base = warp * 32;
  const unsigned count = in.vector;
  uint16_t tiles[4][8][8];
  for (unsigned i = 0; i < count; ++i)
    for (unsigned r = 0; r < 8; ++r) {
      unsigned t = base + i * 8 + r;
      currentThread = t;
      uint64_t addr = address(f, in.operands[1], t);
      if (addr % 16)
        return fault("ldmatrix row address " + std::to_string(addr) +
                     " is not 16-byte aligned");
      if (std::string e = sharedAccess(addr, 16, warp, false); !e.empty())
        return e;
      std::memcpy(tiles[i][r], &shared[addr], 16);
      sharedAddress[r] = addr;
      if (stats && r == 7) { // one 128-byte phase per 8x8 matrix
        stats->sharedWavefronts +=
            Profile::sharedWavefronts(sharedAddress, 0xff, 16);
        ++stats->sharedIdealWavefronts;
      }
    }
  bool trans = in.modifiers & Trans;
  const Operand &d = in.operands[0];
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned t = base + lane, row = lane / 4, col = 2 * (lane % 4);
    for (unsigned i = 0; i < count; ++i) {
      uint32_t lo = trans ? tiles[i][col][row] : tiles[i][row][col];
      uint32_t hi = trans ? tiles[i][col + 1][row] : tiles[i][row][col + 1];
      const Operand &reg = count > 1 ? d.elements[i] : d;
      write(f, reg, t, lo | (hi << 16));
    }
  }
  return "";
}

std::string Cta::mma(Frame &f, const Instruction &in, unsigned base) {
  const Operand &D = in.operands[0], &A = in.operands[1], &B = in.operands[2],
                &C = in.operands[3];
  if (D.elements.size() != 4 || A.elements.size() != 4 ||
      B.elements.size() != 2 || C.elements.size() != 4)
    return fault("mma.m16n8k16 needs 4, 4, 2 and 4 registers");
  // A widened and B transposed ([column][k]) once: each output's k loop
  // reads both contiguously.
  double a[16][16], b[8][16];
  float c[16][8];
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned t = base + lane, g = lane / 4, q = lane % 4;
    for (unsigned r = 0; r < 4; ++r) {
      uint32_t v = uint32_t(read(f, A.elements[r], t));
      unsigned row = g + (r & 1) * 8, col = 2 * q + (r >> 1) * 8;
      a[row][col] = fromBF16(uint16_t(v));
      a[row][col + 1] = fromBF16(uint16_t(v >> 16));
    }
    for (unsigned r = 0; r < 2; ++r) {
      uint32_t v = uint32_t(read(f, B.elements[r], t));
      unsigned k = 2 * q + r * 8;
      b[g][k] = fromBF16(uint16_t(v));
      b[g][k + 1] = fromBF16(uint16_t(v >> 16));
    }
    for (unsigned r = 0; r < 4; ++r)
      c[g + (r >> 1) * 8][2 * q + (r & 1)] = asF32(read(f, C.elements[r], t));
  }
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned t = base + lane, g = lane / 4, q = lane % 4;
    for (unsigned r = 0; r < 4; ++r) {
      unsigned row = g + (r >> 1) * 8, col = 2 * q + (r & 1);
      double sum = c[row][col];
      for (unsigned k = 0; k < 16; ++k)
        sum += a[row][k] * b[col][k];
      write(f, D.elements[r], t, fromF32(float(sum)));
    }
  }
  return "";
}

std::string Cta::call(Frame &f, const Instruction &in, unsigned warp,
                      uint32_t exec) {
  const Operand &rets = in.operands[0], &target = in.operands[1],
                &args = in.operands[2];
  const Function &callee = program.module.functions[target.symbol];
  if (!callee.defined)
    return fault("call to " + callee.name + ", which has no body");
  if (args.elements.size() != callee.params.size() ||
      rets.elements.size() != callee.returns.size())
    return fault("call to " + callee.name + " with the wrong arity");
  const unsigned base = warp * 32;
  Frame frame;
  enter(frame, callee);
  auto copy = [&](const Frame &from, const Operand &name, Frame &to, int symbol,
                  unsigned t) -> std::string {
    if (name.kind != Operand::Kind::Symbol)
      return fault("call arguments must be .param variables");
    const Symbol &src = program.module.symbols[name.symbol];
    const Symbol &dst = program.module.symbols[symbol];
    std::memcpy(&to.params[size_t(t) * to.fn->paramBytes + dst.offset],
                &from.params[size_t(t) * from.fn->paramBytes + src.offset],
                std::min(src.size, dst.size));
    return "";
  };
  for (unsigned t = 0; t < threads; ++t)
    frame.state[t] = Done;
  for (uint32_t m = exec; m; m &= m - 1) {
    unsigned t = base + __builtin_ctz(m);
    frame.state[t] = Running;
    for (size_t i = 0; i < args.elements.size(); ++i)
      if (std::string e = copy(f, args.elements[i], frame, callee.params[i], t);
          !e.empty())
        return e;
  }
  const Instruction *caller = current;
  const Function *callerFn = currentFn;
  if (std::string e = runWarp(frame, warp, exec); !e.empty())
    return e;
  current = caller;
  currentFn = callerFn;
  for (uint32_t m = exec; m; m &= m - 1) {
    unsigned t = base + __builtin_ctz(m);
    if (frame.state[t] != Done)
      return fault(callee.name + " waits at a barrier");
    for (size_t i = 0; i < rets.elements.size(); ++i) {
      const Symbol &src = program.module.symbols[callee.returns[i]];
      const Symbol &dst = program.module.symbols[rets.elements[i].symbol];
      std::memcpy(&f.params[size_t(t) * f.fn->paramBytes + dst.offset],
                  &frame.params[size_t(t) * callee.paramBytes + src.offset],
                  std::min(src.size, dst.size));
    }
  }
  return "";
}

std::string hybrid::emu::launch(const Program &program, int function,
                                const Grid &grid,
                                const std::vector<uint8_t> &params,
                                const Memory &memory, Profile *profile) {
  const unsigned threads = grid.block[0] * grid.block[1] * grid.block[2];
  if (threads == 0 || threads > 1024)
    return "a block of " + std::to_string(threads) +
           " threads (1 to 1024 allowed)";
  const uint64_t ctas = uint64_t(grid.grid[0]) * grid.grid[1] * grid.grid[2];
  KernelProfile *stats =
      profile ? &profile->kernel(program.module.functions[function].name)
              : nullptr;
  if (stats) {
    ++stats->launches;
    stats->ctas += ctas;
  }
  // CTAs run in parallel on `workers` threads, each with its own state (and
  // profile counts, merged after). The fault reported is the lowest failing
  // CTA's, as a sequential run would report.
  unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  if (const char *env = std::getenv("HYBRID_EMULATOR_THREADS"))
    workers = unsigned(std::max(1, std::atoi(env)));
  workers = unsigned(std::min<uint64_t>(workers, ctas));
  std::atomic<uint64_t> next{0};
  std::mutex mutex; // guards `fault`; firstFailed only falls under it
  std::atomic<uint64_t> firstFailed{UINT64_MAX};
  std::string fault;
  std::vector<KernelProfile> counts(workers);
  auto work = [&](unsigned worker) {
    Cta cta(program, function, grid, params, memory,
            stats ? &counts[worker] : nullptr);
    for (uint64_t i = next++; i < ctas; i = next++) {
      if (i > firstFailed.load())
        return;
      unsigned x = unsigned(i % grid.grid[0]);
      unsigned y = unsigned(i / grid.grid[0] % grid.grid[1]);
      unsigned z = unsigned(i / grid.grid[0] / grid.grid[1]);
      if (std::string e = cta.run(x, y, z); !e.empty()) {
        std::lock_guard<std::mutex> lock(mutex);
        if (i < firstFailed.load()) {
          firstFailed.store(i);
          fault = std::move(e);
        }
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < workers; ++w)
    pool.emplace_back(work, w);
  work(0);
  for (std::thread &t : pool)
    t.join();
  if (stats)
    for (const KernelProfile &c : counts)
      stats->add(c);
  return fault;
}
