//===- Ptx.h - PTX modules as the emulator reads them ----------*- C++ -*-===//
//
// The subset of PTX that LLVM's NVPTX backend emits for the project's
// kernels (and the libdevice functions they call), parsed once into
// instructions with resolved operands. Anything outside the subset is a
// parse error naming the line, never a silent guess.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_EMULATOR_PTX_H
#define HYBRID_EMULATOR_PTX_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hybrid::emu {

enum class Type : uint8_t {
  None,
  Pred,
  B8,
  B16,
  B32,
  B64,
  U8,
  U16,
  U32,
  U64,
  S8,
  S16,
  S32,
  S64,
  F16,
  F16x2,
  BF16,
  BF16x2,
  F32,
  F64
};
// Inline: the interpreter asks per thread-instruction.
inline unsigned bitWidth(Type type) {
  switch (type) {
  case Type::Pred:
    return 1;
  case Type::B8:
  case Type::U8:
  case Type::S8:
    return 8;
  case Type::B16:
  case Type::U16:
  case Type::S16:
  case Type::F16:
  case Type::BF16:
    return 16;
  case Type::B32:
  case Type::U32:
  case Type::S32:
  case Type::F32:
  case Type::F16x2:
  case Type::BF16x2:
    return 32;
  case Type::B64:
  case Type::U64:
  case Type::S64:
  case Type::F64:
    return 64;
  case Type::None:
    return 0;
  }
  return 0;
}

inline bool isFloat(Type type) {
  return type == Type::F16 || type == Type::F16x2 || type == Type::BF16 ||
         type == Type::BF16x2 || type == Type::F32 || type == Type::F64;
}

inline bool isSigned(Type type) {
  return type == Type::S8 || type == Type::S16 || type == Type::S32 ||
         type == Type::S64;
}

enum class Space : uint8_t { None, Global, Shared, Local, Param };

enum class Opcode : uint8_t {
  Add,
  Sub,
  Mul,
  Mad,
  Fma,
  Div,
  Rem,
  Min,
  Max,
  Neg,
  Abs,
  Not,
  And,
  Or,
  Xor,
  Shl,
  Shr,
  Bfe,
  Clz,
  Shf,
  Copysign,
  Rcp,
  Ex2,
  Sin,
  Cos,
  Sqrt,
  Setp,
  Selp,
  Cvt,
  Cvta,
  Mov,
  Ld,
  St,
  Bra,
  Ret,
  Exit,
  Call,
  Bar,
  Shfl,
  Vote,
  Ldmatrix,
  Mma,
  CpAsync,
  CpAsyncCommit,
  CpAsyncWait,
  Addc,
  Subc,
  Madc,
  // Hopper's warpgroup MMA (wgmma.*) and the proxy fence that orders
  // generic-proxy shared writes before its async-proxy reads.
  WgmmaFence,
  WgmmaMma,
  WgmmaCommit,
  WgmmaWait,
  FenceProxyAsync,
  // mbarriers and TMA tile loads (cp.async.bulk.tensor).
  MbarrierInit,
  MbarrierArrive,
  MbarrierArriveExpectTx,
  MbarrierTryWait,
  BarSync,       // bar.sync id, count: a named barrier
  BarArrive,     // bar.arrive id, count: a named barrier's arrival, no wait
  OrderingFence, // fences a sequential interpreter satisfies by construction
  MemoryFence,   // fence.acq_rel.gpu: orders global accesses across CTAs
  Atom,          // atom.global.add: CTAs run on host threads at once
  SetMaxNReg,    // setmaxnreg.{inc,dec}: registers are not a resource here
  TensorLoad,
  PrefetchTensorMap // prefetch{.param}.tensormap: checks the map's address
};

/// Instruction modifiers that change semantics.
enum Modifier : uint32_t {
  Lo = 1 << 0,
  Hi = 1 << 1,
  Wide = 1 << 2,
  CarryOut = 1 << 3,
  Ftz = 1 << 4,
  Approx = 1 << 5,
  PropagateNaN = 1 << 6,
  Trans = 1 << 7,
  RoundNearest = 1 << 8,
  RoundZero = 1 << 9,
  RoundDown = 1 << 10,
  RoundUp = 1 << 11,
  IntegerRound = 1 << 12,
  Wrap = 1 << 13,
  ShiftLeft = 1 << 14,
  Sat = 1 << 15,
  ToSpace = 1 << 16 // cvta.to.space (generic to space; else space to generic)
};

enum class Compare : uint8_t {
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  Lo,
  Ls,
  Hi,
  Hs,
  Equ,
  Neu,
  Ltu,
  Leu,
  Gtu,
  Geu,
  Num,
  Nan
};
enum class BoolOp : uint8_t { None, And, Or };
enum class ShuffleMode : uint8_t { Up, Down, Bfly, Idx };
enum class VoteMode : uint8_t { Any, All, Uni, Ballot };

/// Special registers; %tid, %ntid, %ctaid and %nctaid come in groups of three
/// axes, in this order (the interpreter indexes them so).
enum class Special : uint8_t {
  TidX,
  TidY,
  TidZ,
  NtidX,
  NtidY,
  NtidZ,
  CtaidX,
  CtaidY,
  CtaidZ,
  NctaidX,
  NctaidY,
  NctaidZ,
  LaneId,
  WarpId
};

struct Operand {
  enum class Kind : uint8_t {
    None,
    Register,
    Immediate,
    Special,
    Symbol,
    Address,
    Vector,
    Label,
    Function
  };
  Kind kind = Kind::None;
  int reg = -1;       // Register; Address base register (-1: none)
  int symbol = -1;    // Symbol; Address base symbol; Label/Function index
  uint64_t value = 0; // Immediate bits; Address byte offset
  Special special = Special::TidX;
  int predicateOut = -1;         // "%r|%p": the extra predicate destination
  std::vector<Operand> elements; // Vector; Call argument lists
};

struct Instruction {
  Opcode opcode;
  Type type = Type::None;   // the instruction type (last type suffix)
  Type source = Type::None; // cvt's source type, mma's input type
  uint32_t modifiers = 0;
  Compare compare = Compare::Eq;
  BoolOp combine = BoolOp::None; // setp.cmp.and / .or with a third source
  ShuffleMode shuffle = ShuffleMode::Bfly;
  VoteMode vote = VoteMode::Any;
  Space space = Space::None;
  unsigned vector = 1; // ld/st .v2/.v4, ldmatrix .x1/.x2/.x4
  unsigned n = 0;      // wgmma.mma_async's N (m64nNk16); a TensorLoad's rank
  int guard = -1;      // "@%p" / "@!%p" register, -1 when unpredicated
  bool guardNegated = false;
  std::vector<Operand> operands;
  unsigned line = 0;
  std::string text;
};

/// A variable in global, shared, local or param space.
struct Symbol {
  std::string name;
  Space space = Space::None;
  uint64_t size = 0, align = 1;
  std::vector<uint8_t> init; // global initializers
  int function = -1;         // declaring function, -1 for module scope
  uint64_t offset = 0;       // shared/local/param: offset in its area
  /// `.extern .shared name[]`: the launch's dynamic shared memory, after
  /// the static shared variables.
  bool dynamic = false;
};

struct Function {
  std::string name;
  bool entry = false;
  bool defined = false;
  std::vector<int> params;  // formal parameter symbols, in order
  std::vector<int> returns; // return value symbols (.func only)
  std::vector<Instruction> body;
  unsigned registers = 0;
  uint64_t paramBytes = 0, localBytes = 0, sharedBytes = 0;
  std::vector<int> shared; // shared symbols declared in this function
  unsigned line = 0;
};

struct Module {
  std::vector<Symbol> symbols;
  std::vector<Function> functions;
  std::map<std::string, int> functionIndex;
  uint64_t moduleSharedBytes = 0; // module-scope shared variables
  /// The strictest alignment of the dynamic shared arrays (0: none).
  uint64_t dynamicSharedAlign = 0;
  std::string target;
};

/// Parses PTX text; on failure returns false and sets `error` to
/// "line N: what".
bool parse(const std::string &text, Module &module, std::string &error);

} // namespace hybrid::emu

#endif // HYBRID_EMULATOR_PTX_H
