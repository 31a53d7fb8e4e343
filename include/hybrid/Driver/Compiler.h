//===- Compiler.h - Input to schedule, summary and artifacts ----*- C++ -*-===//
//
// What hybrid-compile does, as a library: hybrid-run, hybrid-bench, the tuner
// and the Python package compile through exactly this code.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_DRIVER_COMPILER_H
#define HYBRID_DRIVER_COMPILER_H

#include "hybrid/Dialect/Hybrid/IR/HybridAttrs.h"
#include "hybrid/Import/Importer.h"
#include "hybrid/Tuning/GPUKernelVariant.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace hybrid {

/// $CUDA_HOME, else /usr/local/cuda.
std::string getDefaultCUDAToolkit();

struct CompileOptions {
  std::string target = "cpu";
  int64_t maxSeq = 0; // 0: the model's max_position_embeddings
  /// Element type of stored caches; unset: bf16 for the summary's plan, and
  /// for artifacts the runtime's default (f32 on CPUs, bf16 on GPUs).
  std::optional<StorageType> kvStorage;
  int64_t qTile = 0, kTile = 64; // qTile: rows; 0: 256
  /// A tuning database (hybrid-tune) whose entries set each kernel's tiles
  /// (and on GPU targets its variant); kernels without an entry keep the
  /// options'.
  std::string tuningDb;
  /// q and k arrive rotated (and temperature-scaled) by the caller, as
  /// Hugging Face attention modules pass them: every layer is compiled
  /// without positional encoding or temperature tuning.
  bool externalPositional = false;
  /// How Hugging Face configs are imported (--mla-cache).
  spec::ImportOptions import;
  /// CUDA toolkit for cuda targets: libdevice, and ptxas for a cubin.
  std::string cudaToolkit = getDefaultCUDAToolkit();
  /// cuda targets: assemble kernels.cubin when ptxas is found (false: the
  /// PTX only, which the driver JITs at load and the PTX emulator runs).
  bool cubin = true;
  /// cuda targets with a cubin: warn on stderr when kernels spill registers
  /// or ptxas reports a potential performance loss (the manifest records
  /// both either way; hybrid-tune reports them per candidate instead).
  bool warnPtxas = true;
  /// cuda targets: kTile was asked for, so it is halved only until the
  /// tiles fit the chip's shared memory (else until they fit 48 KiB, which
  /// also keeps large head dims' registers from spilling).
  bool kTileGiven = false;
  /// cuda targets: the flash kernels' variant (the flags --tensor-cores,
  /// --tma, --warps, --warp-rows, --stages, --softmax-overlap,
  /// --warp-specialized, --ping-pong,
  /// --rescale-threshold, --min-ctas-per-sm, --value-slice).
  GPUKernelVariant gpu;
  /// Applied to every pass manager the compiler runs (hybrid-compile: the
  /// -mlir-print-ir-*, -mlir-pass-statistics and reproducer options).
  std::function<mlir::LogicalResult(mlir::PassManager &)> configurePassManager;
  /// When set, each phase (schedule, extract, convert, lower, then ptx and
  /// cubin or the host object) is timed under it (-mlir-timing).
  mlir::TimingScope *timing = nullptr;
};

/// An MLIR context with every dialect and translation the compiler uses;
/// diagnostics go to stderr with their source location.
class CompilerContext {
public:
  CompilerContext();
  ~CompilerContext();
  mlir::MLIRContext &get() { return context; }

  /// Reads a Hugging Face config.json, a hybrid-schedule spec or a .mlir
  /// file into a module holding one hybrid.schedule. Errors are reported
  /// (one line naming the file and field) and yield null.
  mlir::OwningOpRef<mlir::ModuleOp>
  load(llvm::StringRef path, const spec::ImportOptions &options = {});

private:
  mlir::MLIRContext context;
  struct Diagnostics;
  std::unique_ptr<Diagnostics> diagnostics;
};

/// Checks the target and options; returns an error message or "".
std::string validate(const CompileOptions &options);

/// The error for a --target that is none of cpu, cuda:sm_80, cuda:sm_90a;
/// empty if it is one.
std::string validateTarget(llvm::StringRef target);

/// The element type of the caches the options' artifacts plan: kvStorage,
/// else the runtime's default for the target (f32 on CPUs, bf16 on GPUs).
StorageType getArtifactCacheStorage(const CompileOptions &options);

/// The error for artifacts whose caches the target's runtime does not keep
/// in getArtifactCacheStorage() (CPUs: any; GPUs: bf16); empty if
/// it does.
std::string validateArtifactCacheStorage(const CompileOptions &options);

/// Plans the schedule's caches; `expand` lists every layer.
bool planSchedule(mlir::ModuleOp module, const CompileOptions &options,
                  bool expand);

/// Compiles the schedule's kernels into `dir`: libkernels.so (cpu) or
/// kernels.ptx and, when ptxas is found, kernels.cubin (cuda:<chip>);
/// kernels.mlir (the kernels before LLVM lowering) and manifest.json, whose
/// CPU kernels say where their tile sizes came from ("tuning": database
/// entry or default).
bool emitArtifacts(mlir::ModuleOp module, const CompileOptions &options,
                   llvm::StringRef dir);

} // namespace hybrid

#endif // HYBRID_DRIVER_COMPILER_H
