//===- Profile.h - What emulated kernels executed ---------------*- C++ -*-===//
//
// Dynamic counts per kernel, gathered by the interpreter when
// HYBRID_EMULATOR_PROFILE is set: warp-level instructions by kind (relative
// to mma.sync, whose issue rate bounds a tensor-core kernel; a warp's share
// of a wgmma m64nNk16 counts as its N/8 m16n8k16 equivalents), shared-memory
// wavefronts against the conflict-free minimum (32 banks of 4 bytes, one
// 128-byte wavefront per phase), and global 32-byte sectors against the
// bytes moved (TMA loads: the bytes read, as whole sectors). PTX instructions,
// not SASS: ptxas folds some address arithmetic and splits 64-bit integer
// operations, so the counts are a proxy for issue pressure, not a cycle model.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_PROFILE_H
#define HYBRID_EMULATOR_PROFILE_H

#include <cstdint>
#include <map>
#include <string>

namespace hybrid::emu {

struct Instruction;

/// Instruction kinds counted separately.
enum class Kind : uint8_t {
  Mma,
  Ldmatrix,
  SharedLoad,
  SharedStore,
  GlobalLoad,
  GlobalStore,
  AsyncCopy, // cp.async and its groups, TMA loads
  Barrier,   // bar.sync, fences, mbarrier operations, wgmma fence/commit/wait
  Shuffle,   // shfl.sync, vote.sync
  Special,
  Integer64,
  Integer32,
  Float32,
  Float64,
  Convert,
  Move,
  CompareSelect,
  Branch,
  Other,
  Count
};

struct KernelProfile {
  uint64_t launches = 0, ctas = 0;
  uint64_t warpInstructions = 0, threadInstructions = 0;
  uint64_t byKind[unsigned(Kind::Count)] = {};
  uint64_t sharedWavefronts = 0, sharedIdealWavefronts = 0;
  uint64_t globalSectors = 0, globalIdealSectors = 0;
  uint64_t divergentBranches = 0;

  /// Adds another's counts (one worker's), launches and CTAs excepted.
  void add(const KernelProfile &other);
};

class Profile {
public:
  KernelProfile &kernel(const std::string &name) { return kernels[name]; }
  /// One line per counter group and kernel, for people.
  std::string report() const;

  static Kind classify(const Instruction &in);
  /// Wavefronts a warp's shared access takes: `bytes` per lane at each
  /// lane's address in `lanes` (a mask), 128 bytes of lanes per phase.
  static unsigned sharedWavefronts(const uint64_t *addresses, uint32_t lanes,
                                   unsigned bytes);
  /// Distinct 32-byte sectors a warp's global access touches.
  static unsigned globalSectors(const uint64_t *addresses, uint32_t lanes,
                                unsigned bytes);

private:
  std::map<std::string, KernelProfile> kernels;
};

} // namespace hybrid::emu

#endif // HYBRID_EMULATOR_PROFILE_H
