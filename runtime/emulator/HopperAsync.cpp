//===- HopperAsync.cpp - wgmma, mbarriers and TMA in the interpreter ------===//
//
// sm_90a's asynchronous units as the PTX ISA describes them: a warp's share
// of a warpgroup MMA computed at issue and landed at the wgmma.wait_group
// that retires it (accumulators read as NaN meanwhile; what it reads must
// not change), mbarrier phases that complete when every expected arrival
// and byte is in, and TMA tile loads (box order, zero fill, 128-byte
// swizzle) that land when their phase completes.
//
//===----------------------------------------------------------------------===//

#include "Cta.h"

#include "Arithmetic.h"
#include "TensorMap.h"

#include <algorithm>
#include <cstring>

using namespace hybrid::emu;
using namespace hybrid::emu::detail;

std::string Cta::warpgroupMma(Frame &f, const Instruction &in, unsigned warp) {
  WarpWgmma &state = wgmma[warp];
  const unsigned base = warp * 32;
  switch (in.opcode) {
  case Opcode::WgmmaFence:
    state.fenced = true;
    return "";
  case Opcode::WgmmaCommit:
    state.groups.push_back(std::move(state.open));
    state.open.clear();
    return "";
  case Opcode::WgmmaWait: {
    size_t keep = size_t(in.operands[0].value);
    state.fenced = false;
    while (state.groups.size() > keep) {
      for (const PendingWgmma &p : state.groups.front())
        if (std::string e = retire(f, p, base); !e.empty())
          return e;
      state.groups.pop_front();
    }
    return "";
  }
  default:
    break;
  }
  if (!state.fenced)
    return fault("wgmma.mma_async without a wgmma.fence since the warp's "
                 "last wgmma.wait_group (the registers it reads may not be "
                 "ready)");
  const std::vector<Operand> &ops = in.operands;
  const unsigned n = in.n, regsPerLane = n / 2;
  // B (16 x N bf16) through the shared-memory matrix descriptor: start
  // address, leading and stride byte offsets in 16-byte units; only the
  // 128-byte swizzle with base offset 0 is emulated.
  uint64_t desc = read(f, ops[2], base);
  for (unsigned lane = 1; lane < 32; ++lane)
    if (read(f, ops[2], base + lane) != desc)
      return fault("the B descriptor differs between lanes of the warp");
  uint64_t start = (desc & 0x3fff) << 4, lbo = ((desc >> 16) & 0x3fff) << 4,
           sbo = ((desc >> 32) & 0x3fff) << 4;
  unsigned baseOffset = (desc >> 49) & 7, swizzle = unsigned(desc >> 62);
  if (swizzle != 1 || baseOffset != 0)
    return fault("B descriptor with swizzle mode " + std::to_string(swizzle) +
                 " and base offset " + std::to_string(baseOffset) +
                 ": only the 128-byte swizzle (1) with base offset 0 is "
                 "emulated");
  bool nMajor = ops[6].value != 0;
  if (ops[4].value != 1 || ops[5].value != 1)
    return fault("negated A or B (imm-scale -1) is not emulated");
  PendingWgmma p;
  p.at = current;
  // B transposed ([column][k]) and A widened once, so that each output's
  // k loop reads both contiguously.
  std::vector<double> b(size_t(n) * 16);
  for (unsigned k = 0; k < 16; ++k)
    for (unsigned col = 0; col < n; ++col) {
      // Canonical layouts, 128-byte swizzle, 2-byte elements. K-major:
      // 8-row groups of N at SBO, rows 128 bytes apart, K contiguous.
      // N-major: 64-wide blocks of N at LBO, K rows 128 bytes apart in
      // groups of 8 at SBO, N contiguous.
      uint64_t offset = nMajor ? (col / 64) * lbo + (col % 64) * 2 +
                                     (k % 8) * 128 + (k / 8) * sbo
                               : (col / 8) * sbo + (col % 8) * 128 + k * 2;
      uint64_t addr = start + offset;
      addr ^= ((addr >> 7) & 7) << 4; // 16-byte chunks XOR row in atom
      if (addr + 2 > sharedBytes)
        return fault("wgmma reads B at shared offset " + std::to_string(addr) +
                     ", outside the CTA's " + std::to_string(sharedBytes) +
                     " bytes");
      Shadow &s = shadow[addr];
      if (s.unfenced || shadow[addr + 1].unfenced)
        return fault("wgmma reads shared byte " + std::to_string(addr) +
                     ", written through the generic proxy with no "
                     "fence.proxy.async since");
      if (std::string e = sharedAccess(addr, 2, warp, false); !e.empty())
        return e;
      for (uint64_t i = addr; i < addr + 2; ++i)
        if (shadow[i].reading++ == 255)
          return fault("too many wgmmas in flight reading one byte");
      uint16_t bits;
      std::memcpy(&bits, &shared[addr], 2);
      p.reads.emplace_back(uint32_t(addr), bits);
      b[col * 16 + k] = fromBF16(bits);
    }
  const Operand &D = ops[0], &A = ops[1];
  bool accumulate = read(f, ops[3], base) & 1;
  for (unsigned lane = 1; lane < 32; ++lane)
    if (bool(read(f, ops[3], base + lane) & 1) != accumulate)
      return fault("scale-d differs between lanes of the warp");
  for (const Operand &d : D.elements)
    p.dest.push_back(d.reg);
  // A chain of wgmmas on one accumulator (within or across groups)
  // accumulates in issue order: the latest in-flight one's results are
  // this one's C.
  const PendingWgmma *chained = nullptr;
  auto find = [&](std::vector<PendingWgmma> &ops) {
    for (auto it = ops.rbegin(); it != ops.rend() && !chained; ++it)
      if (!it->superseded && it->dest == p.dest) {
        it->superseded = true;
        chained = &*it;
      }
  };
  find(state.open);
  for (auto g = state.groups.rbegin(); g != state.groups.rend() && !chained;
       ++g)
    find(*g);
  for (const Operand &a : A.elements)
    p.sources.push_back(a.reg);
  p.results.resize(32 * regsPerLane);
  p.snapshot.resize(32 * 4);
  // A registers: rows g and g + 8 of the warp's 16, columns 2q, 2q + 1
  // and 2q + 8, 2q + 9 (mma.m16n8k16's A layout); D: register i of lane
  // holds row g + 8 ((i / 2) % 2), column 8 (i / 4) + 2q + i % 2.
  double a[16][16];
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned t = base + lane, g = lane / 4, q = lane % 4;
    for (unsigned r = 0; r < 4; ++r) {
      uint64_t v = read(f, A.elements[r], t);
      p.snapshot[lane * 4 + r] = v;
      unsigned row = g + (r & 1) * 8, col = 2 * q + (r >> 1) * 8;
      a[row][col] = fromBF16(uint16_t(v));
      a[row][col + 1] = fromBF16(uint16_t(v >> 16));
    }
  }
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned t = base + lane, g = lane / 4, q = lane % 4;
    for (unsigned i = 0; i < regsPerLane; ++i) {
      unsigned row = g + ((i >> 1) & 1) * 8,
               col = 8 * (i >> 2) + 2 * q + (i & 1);
      double sum = !accumulate ? 0.0
                   : chained   ? asF32(chained->results[lane * regsPerLane + i])
                               : asF32(read(f, D.elements[i], t));
      const double *bColumn = &b[col * 16];
      for (unsigned k = 0; k < 16; ++k)
        sum += a[row][k] * bColumn[k];
      p.results[lane * regsPerLane + i] = fromF32(float(sum));
    }
  }
  for (unsigned lane = 0; lane < 32; ++lane)
    for (const Operand &d : D.elements)
      write(f, d, base + lane, kInFlight);
  state.open.push_back(std::move(p));
  return "";
}

Mbarrier *Cta::findBarrier(uint64_t address) {
  for (Mbarrier &m : barriers)
    if (m.address == address)
      return &m;
  return nullptr;
}

void Cta::completeIfDone(Mbarrier &m) {
  if (m.arrivalsLeft || m.bytesLeft)
    return;
  uint16_t index = uint16_t(&m - barriers.data() + 1);
  ++m.completed;
  for (auto [offset, byte] : m.landing) {
    Shadow &s = shadow[offset];
    shared[offset] = byte;
    --s.pending;
    s.writeClock = 0; // the async proxy's write, not a warp's
    s.readers = 0;    // ordered after them when it was issued
    s.unfenced = 0;
    s.landedBy = index;
    s.landedPhase = m.completed;
  }
  m.landing.clear();
  m.arrivalsLeft = m.expected;
  m.released.swap(m.arrived);
  m.arrived.assign(warps, 0);
}

std::string Cta::asyncBarrier(Frame &f, const Instruction &in, unsigned t,
                              unsigned warp) {
  const std::vector<Operand> &ops = in.operands;
  const Operand &at = in.opcode == Opcode::MbarrierInit ? ops[0]
                      : in.opcode == Opcode::TensorLoad ? ops[3]
                                                        : ops[1];
  uint64_t address = this->address(f, at, t);
  if (in.opcode != Opcode::MbarrierTryWait)
    ++barrierEvents;
  if (address % 8 || address + 8 > sharedBytes)
    return fault("mbarrier at shared offset " + std::to_string(address) +
                 ": not an 8-byte-aligned object in the CTA's shared memory");
  Mbarrier *m = findBarrier(address);
  if (in.opcode == Opcode::MbarrierInit) {
    uint64_t count = read(f, ops[1], t);
    if (count == 0 || count >= (1u << 20))
      return fault("mbarrier.init count " + std::to_string(count) +
                   " (1 to 2^20 - 1)");
    if (m && !m->landing.empty())
      return fault("mbarrier.init on a barrier with TMA loads in flight");
    if (!m) {
      barriers.push_back({});
      m = &barriers.back();
      m->address = address;
    }
    m->expected = m->arrivalsLeft = uint32_t(count);
    m->arrived.assign(warps, 0);
    m->released.assign(warps, 0);
    m->bytesLeft = 0;
    m->completed = 0;
    return "";
  }
  if (!m)
    return fault("mbarrier at shared offset " + std::to_string(address) +
                 " used before mbarrier.init");
  unsigned index = unsigned(m - barriers.data());
  switch (in.opcode) {
  case Opcode::MbarrierArrive:
  case Opcode::MbarrierArriveExpectTx: {
    if (m->arrivalsLeft == 0)
      return fault("more arrivals on the mbarrier at shared offset " +
                   std::to_string(address) + " than it expects");
    if (in.opcode == Opcode::MbarrierArriveExpectTx)
      m->bytesLeft += int64_t(read(f, ops[2], t));
    --m->arrivalsLeft;
    // A release: what the warp did so far is ordered before whoever
    // observes the phase complete.
    release(warp, m->arrived.data());
    write(f, ops[0], t, m->completed & 1); // the state token: its phase
    completeIfDone(*m);
    return "";
  }
  case Opcode::MbarrierTryWait: {
    // The phase of parity p has completed once the current phase's
    // parity differs from p.
    bool done = (m->completed & 1) != (read(f, ops[2], t) & 1);
    write(f, ops[0], t, done);
    if (done) {
      std::vector<uint32_t> &seen = observed[warp];
      if (seen.size() <= index)
        seen.resize(index + 1, 0);
      seen[index] = std::max(seen[index], m->completed);
      join(clockOf(warp), m->released.data());
    } else {
      f.state[t] = Yielded;
    }
    return "";
  }
  default:
    break;
  }
  return tensorLoad(f, in, t, warp, *m);
}

std::string Cta::readTensorMap(uint64_t address, bool param, TensorMap &map) {
  const void *bytes = nullptr;
  std::string where = "0x" + hex(address);
  if (param || address >= kParamWindow) {
    // A kernel parameter (__grid_constant__ const CUtensorMap).
    uint64_t offset = param ? address : address - kParamWindow;
    where = "parameter offset " + std::to_string(offset);
    if (offset % 64 == 0 && offset <= kernelParams.size() &&
        kernelParams.size() - offset >= sizeof(map))
      bytes = &kernelParams[offset];
  } else if (address % 64 == 0 && memory.contains(address, sizeof(map))) {
    bytes = reinterpret_cast<const void *>(address);
  }
  if (!bytes)
    return fault("the tensor map at " + where +
                 " is not a 64-byte-aligned object in device memory or the "
                 "kernel's parameters");
  std::memcpy(&map, bytes, sizeof(map));
  if (map.magic != TensorMap::kMagic)
    return fault(where + " holds no tensor map made by cuTensorMapEncodeTiled");
  return "";
}

std::string Cta::tensorLoad(Frame &f, const Instruction &in, unsigned t,
                            unsigned warp, Mbarrier &m) {
  const std::vector<Operand> &ops = in.operands;
  TensorMap map;
  if (std::string e = readTensorMap(read(f, ops[1], t), /*param=*/false, map);
      !e.empty())
    return e;
  if (map.rank != in.n)
    return fault("a " + std::to_string(in.n) + "-d load with a rank-" +
                 std::to_string(map.rank) + " tensor map");
  uint64_t dst = address(f, ops[0], t);
  if (dst % (map.swizzleBytes ? 1024 : 128))
    return fault("TMA destination at shared offset " + std::to_string(dst) +
                 (map.swizzleBytes ? " is not 1024-byte aligned (the "
                                     "128-byte swizzle's atom)"
                                   : " is not 128-byte aligned"));
  int64_t at[5] = {};
  for (unsigned d = 0; d < map.rank; ++d)
    at[d] = int32_t(read(f, ops[2].elements[d], t));
  uint64_t boxBytes = map.elementBytes;
  for (unsigned d = 0; d < map.rank; ++d)
    boxBytes *= map.box[d];
  if (dst + boxBytes > sharedBytes)
    return fault("TMA load of " + std::to_string(boxBytes) +
                 " bytes at shared offset " + std::to_string(dst) +
                 " overruns the CTA's shared memory");
  uint64_t bytesRead = 0;
  for (uint64_t e = 0; e < boxBytes / map.elementBytes; ++e) {
    // Element e of the box: coordinates innermost first.
    uint64_t rest = e, source = map.address;
    bool inside = true;
    for (unsigned d = 0; d < map.rank; ++d) {
      int64_t c = at[d] + int64_t(rest % map.box[d]);
      rest /= map.box[d];
      if (c < 0 || c >= int64_t(map.dims[d]))
        inside = false;
      else
        source += uint64_t(c) * (d ? map.strides[d - 1] : map.elementBytes);
    }
    uint64_t offset = dst + e * map.elementBytes;
    if (map.swizzleBytes) // 16-byte chunk XOR the row within the atom
      offset ^= ((offset >> 7) & 7) << 4;
    uint8_t bytes[8] = {};
    if (inside) {
      if (!inGlobal(source, map.elementBytes))
        return fault("TMA load reads outside device memory at 0x" +
                     hex(source));
      std::memcpy(bytes, reinterpret_cast<const void *>(source),
                  map.elementBytes);
      bytesRead += map.elementBytes;
    }
    for (unsigned i = 0; i < map.elementBytes; ++i) {
      Shadow &s = shadow[offset + i];
      if (!writeIsOrdered(s, warp, clockOf(warp)))
        if (std::string e = checkWrite(offset + i, warp, "loads (TMA) into");
            !e.empty())
          return e;
      if (s.pending == 255)
        return fault("too many async copies in flight into one byte");
      ++s.pending;
      m.landing.emplace_back(uint32_t(offset + i), bytes[i]);
    }
  }
  if (stats) { // the box's rows are whole sectors
    stats->globalSectors += (bytesRead + 31) / 32;
    stats->globalIdealSectors += (bytesRead + 31) / 32;
  }
  m.bytesLeft -= int64_t(boxBytes);
  completeIfDone(m);
  return "";
}

std::string Cta::retire(Frame &f, const PendingWgmma &p, unsigned base) {
  auto at = [&](const char *what) {
    return fault(std::string(what) + " of the wgmma at PTX line " +
                 std::to_string(p.at->line) +
                 " changed while it was in flight (before the "
                 "wgmma.wait_group that retires it)");
  };
  for (unsigned lane = 0; lane < 32; ++lane) {
    for (size_t r = 0; r < p.sources.size(); ++r)
      if (f.regs[size_t(p.sources[r]) * threads + base + lane] !=
          p.snapshot[lane * 4 + r])
        return at("an A register");
    for (int d : p.dest)
      if (f.regs[size_t(d) * threads + base + lane] != kInFlight)
        return at("an accumulator register");
  }
  // Its B reads end here: a write is ordered after them only through a
  // release after this wait.
  unsigned warp = base / 32;
  for (auto [offset, bits] : p.reads)
    for (uint64_t i = offset; i < offset + 2; ++i) {
      --shadow[i].reading;
      shadow[i].readers |= 1u << warp;
      readClocks[i * warps + warp] = clockOf(warp)[warp];
    }
  if (p.superseded) // a later wgmma lands the accumulator
    return "";
  for (auto [offset, bits] : p.reads) {
    uint16_t now;
    std::memcpy(&now, &shared[offset], 2);
    if (now != bits)
      return at("B in shared memory");
  }
  size_t regsPerLane = p.dest.size();
  for (unsigned lane = 0; lane < 32; ++lane)
    for (size_t i = 0; i < regsPerLane; ++i)
      f.regs[size_t(p.dest[i]) * threads + base + lane] =
          p.results[lane * regsPerLane + i];
  return "";
}
