//===- Profile.cpp - What emulated kernels executed -----------------------===//

#include "Profile.h"

#include "Ptx.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

using namespace hybrid::emu;

void KernelProfile::add(const KernelProfile &other) {
  warpInstructions += other.warpInstructions;
  threadInstructions += other.threadInstructions;
  for (unsigned i = 0; i < unsigned(Kind::Count); ++i)
    byKind[i] += other.byKind[i];
  sharedWavefronts += other.sharedWavefronts;
  sharedIdealWavefronts += other.sharedIdealWavefronts;
  globalSectors += other.globalSectors;
  globalIdealSectors += other.globalIdealSectors;
  divergentBranches += other.divergentBranches;
}

Kind Profile::classify(const Instruction &in) {
  switch (in.opcode) {
  case Opcode::Mma:
  case Opcode::WgmmaMma:
    return Kind::Mma;
  case Opcode::WgmmaFence:
  case Opcode::WgmmaCommit:
  case Opcode::WgmmaWait:
  case Opcode::FenceProxyAsync:
    return Kind::Barrier;
  case Opcode::Ldmatrix:
    return Kind::Ldmatrix;
  case Opcode::Ld:
  case Opcode::St: {
    bool load = in.opcode == Opcode::Ld;
    if (in.space == Space::Shared)
      return load ? Kind::SharedLoad : Kind::SharedStore;
    if (in.space == Space::Global)
      return load ? Kind::GlobalLoad : Kind::GlobalStore;
    return Kind::Other; // param and local
  }
  case Opcode::CpAsync:
  case Opcode::CpAsyncCommit:
  case Opcode::CpAsyncWait:
  case Opcode::TensorLoad:
    return Kind::AsyncCopy;
  case Opcode::MbarrierInit:
  case Opcode::MbarrierArrive:
  case Opcode::MbarrierArriveExpectTx:
  case Opcode::MbarrierTryWait:
  case Opcode::OrderingFence:
  case Opcode::MemoryFence:
  case Opcode::SetMaxNReg:
    return Kind::Barrier;
  case Opcode::Atom:
    return Kind::GlobalStore;
  case Opcode::Bar:
  case Opcode::BarSync:
  case Opcode::BarArrive:
    return Kind::Barrier;
  case Opcode::Shfl:
  case Opcode::Vote:
    return Kind::Shuffle;
  case Opcode::Ex2:
  case Opcode::Sin:
  case Opcode::Cos:
  case Opcode::Rcp:
  case Opcode::Sqrt:
    return Kind::Special;
  case Opcode::Cvt:
    return Kind::Convert;
  case Opcode::Mov:
  case Opcode::Cvta:
    return Kind::Move;
  case Opcode::Setp:
  case Opcode::Selp:
    return Kind::CompareSelect;
  case Opcode::Bra:
  case Opcode::Ret:
  case Opcode::Exit:
  case Opcode::Call:
    return Kind::Branch;
  default:
    break;
  }
  if (in.type == Type::F64)
    return Kind::Float64;
  if (isFloat(in.type))
    return Kind::Float32;
  if (in.type == Type::Pred)
    return Kind::CompareSelect;
  return bitWidth(in.type) == 64 || (in.modifiers & Wide) ? Kind::Integer64
                                                          : Kind::Integer32;
}

unsigned Profile::sharedWavefronts(const uint64_t *addresses, uint32_t lanes,
                                   unsigned bytes) {
  bytes = std::max(bytes, 4u);
  const unsigned perPhase = std::max(1u, 128 / bytes);
  unsigned total = 0;
  for (unsigned first = 0; first < 32; first += perPhase) {
    // Distinct 4-byte words per bank; the same word is broadcast.
    std::set<uint64_t> words[32];
    bool any = false;
    for (unsigned lane = first; lane < first + perPhase && lane < 32; ++lane) {
      if (!((lanes >> lane) & 1))
        continue;
      any = true;
      for (uint64_t w = addresses[lane] / 4;
           w < (addresses[lane] + bytes + 3) / 4; ++w)
        words[w % 32].insert(w);
    }
    if (!any)
      continue;
    size_t worst = 1;
    for (const auto &bank : words)
      worst = std::max(worst, bank.size());
    total += unsigned(worst);
  }
  return total;
}

unsigned Profile::globalSectors(const uint64_t *addresses, uint32_t lanes,
                                unsigned bytes) {
  std::set<uint64_t> sectors;
  for (unsigned lane = 0; lane < 32; ++lane)
    if ((lanes >> lane) & 1)
      for (uint64_t s = addresses[lane] / 32;
           s <= (addresses[lane] + bytes - 1) / 32; ++s)
        sectors.insert(s);
  return unsigned(sectors.size());
}

namespace {

std::string count(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.2fG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof(buf), "%.1fK", v / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

std::string ratio(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

} // namespace

std::string Profile::report() const {
  static const char *names[] = {"mma.sync",   "ldmatrix",
                                "ld.shared",  "st.shared",
                                "ld.global",  "st.global",
                                "async copy", "sync",
                                "shfl/vote",  "ex2/rcp/sqrt/sin/cos",
                                "int64",      "int32",
                                "f32",        "f64",
                                "cvt",        "mov",
                                "setp/selp",  "branch",
                                "other"};
  std::string out;
  for (const auto &[name, k] : kernels) {
    double mma = double(k.byKind[unsigned(Kind::Mma)]);
    out += "kernel " + name + ": " + std::to_string(k.launches) +
           " launches, " + std::to_string(k.ctas) + " CTAs, " +
           count(double(k.warpInstructions)) + " warp-instructions";
    if (mma > 0)
      out += ", " + ratio(double(k.warpInstructions) / mma) + " per mma.sync";
    out += "\n  " + std::string(mma > 0 ? "per mma.sync:" : "share:");
    for (unsigned i = 0; i < unsigned(Kind::Count); ++i) {
      if (!k.byKind[i])
        continue;
      double v = double(k.byKind[i]);
      out += std::string(" ") + names[i] + " " +
             (mma > 0 ? ratio(v / mma)
                      : ratio(100.0 * v / double(k.warpInstructions)) + "%");
    }
    out += "\n  shared wavefronts " + count(double(k.sharedWavefronts)) + " (" +
           ratio(k.sharedIdealWavefronts ? double(k.sharedWavefronts) /
                                               double(k.sharedIdealWavefronts)
                                         : 0) +
           "x the conflict-free minimum), global sectors " +
           count(double(k.globalSectors)) + " (" +
           ratio(k.globalIdealSectors
                     ? double(k.globalSectors) / double(k.globalIdealSectors)
                     : 0) +
           "x the bytes' minimum), divergent branches " +
           count(double(k.divergentBranches)) + "\n";
  }
  return out;
}
