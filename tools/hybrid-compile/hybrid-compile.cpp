//===- hybrid-compile.cpp - Model description to schedule and kernels ----===//
//
// hybrid-compile INPUT [--target T] [--emit mlir|summary|artifacts] [-o DIR]
//                      [--max-seq N] [--kv-dtype T] [--q-tile N] [--k-tile N]
//
// INPUT is a Hugging Face config.json, the project's own schedule spec, or a
// .mlir file holding a hybrid.schedule.
//
//===----------------------------------------------------------------------===//

#include "../common/GPUKernelOptions.h"
#include "hybrid/Conversion/Passes.h"
#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "hybrid/Dialect/Hybrid/Transforms/Passes.h"
#include "hybrid/Driver/Compiler.h"
#include "hybrid/Export/Summary.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace llvm;

namespace {
cl::OptionCategory toolCategory("hybrid-compile options");

enum class Emit { MLIR, Summary, Artifacts };

cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<config.json | spec.json | .mlir>"),
                               cl::cat(toolCategory));
cl::opt<std::string> target("target", cl::init("cpu"),
                            cl::desc("cpu, cuda:sm_90a or cuda:sm_80"),
                            cl::cat(toolCategory));
cl::opt<Emit> emit("emit", cl::init(Emit::Summary), cl::desc("What to produce"),
                   cl::values(clEnumValN(Emit::MLIR, "mlir",
                                         "the schedule in the hybrid dialect"),
                              clEnumValN(Emit::Summary, "summary",
                                         "the JSON summary and cache plan"),
                              clEnumValN(Emit::Artifacts, "artifacts",
                                         "kernels and manifest.json in -o")),
                   cl::cat(toolCategory));
cl::opt<std::string> outputDir("o", cl::desc("Output directory (artifacts)"),
                               cl::value_desc("dir"), cl::cat(toolCategory));
cl::opt<int64_t> maxSeq("max-seq", cl::init(0),
                        cl::desc("Context length the cache plan is for "
                                 "(default: max_position_embeddings)"),
                        cl::cat(toolCategory));
cl::opt<hybrid::StorageType> kvDtype(
    "kv-dtype", cl::init(hybrid::StorageType::bf16),
    cl::desc("Element type of stored caches and states (the "
             "summary's plan: bf16 by default; artifacts: the caches "
             "the runtime keeps, f32 by default, bf16, f16 or f8 on CPUs, "
             "bf16 on GPUs)"),
    cl::values(clEnumValN(hybrid::StorageType::f32, "f32", "4 bytes"),
               clEnumValN(hybrid::StorageType::f16, "f16", "2 bytes"),
               clEnumValN(hybrid::StorageType::bf16, "bf16", "2 bytes"),
               clEnumValN(hybrid::StorageType::f8, "f8", "1 byte (E4M3FN)")),
    cl::cat(toolCategory));
cl::opt<int64_t>
    qTile("q-tile", cl::init(0),
          cl::desc("CPU kernels: query rows (positions x GQA group) per "
                   "work item at most (the runtime takes fewer when a prompt "
                   "is short; 0: 256)"),
          cl::cat(toolCategory));
cl::opt<int64_t>
    kTile("k-tile", cl::init(64),
          cl::desc("Keys per tile (GPU targets: halved until the K and V tiles "
                   "fit 48 KiB of shared memory; when given, until they fit "
                   "the chip's: 227 KiB on sm_90a, 163 KiB on sm_80)"),
          cl::cat(toolCategory));
cl::opt<int64_t> warpRows(
    "warp-rows", cl::init(16),
    cl::desc("GPU targets: query rows per warp of the flash kernel, 16 or 32 "
             "(32: each K/V fragment feeds two mma tiles, more registers)"),
    cl::cat(toolCategory));
cl::opt<int64_t> minCtasPerSM(
    "min-ctas-per-sm", cl::init(0),
    cl::desc("GPU targets: CTAs of a flash kernel each multiprocessor must "
             "hold at once (ptxas caps registers to fit, spilling if it must; "
             "0: no bound)"),
    cl::cat(toolCategory));
cl::opt<std::string> cudaToolkit(
    "cuda-toolkit",
    cl::desc("CUDA toolkit for cuda targets: libdevice, and ptxas for a "
             "cubin (default: $CUDA_HOME, else /usr/local/cuda)"),
    cl::value_desc("dir"), cl::cat(toolCategory));
cl::opt<bool> cubin(
    "cubin", cl::init(true),
    cl::desc("cuda targets: assemble kernels.cubin with the toolkit's ptxas "
             "when it is found (--cubin=false: PTX only, which the driver "
             "JITs at load and the PTX emulator runs; about half the compile "
             "time)"),
    cl::cat(toolCategory));
cl::opt<bool> externalPositional(
    "external-positional",
    cl::desc("q and k arrive rotated by the caller (as Hugging Face "
             "attention modules pass them): compile without positional "
             "encoding or temperature tuning"),
    cl::cat(toolCategory));
enum class MlaCache { Decompressed, Latent };
cl::opt<MlaCache> mlaCache(
    "mla-cache", cl::init(MlaCache::Decompressed),
    cl::desc("Multi-head latent attention layers (DeepSeek V2/V3, Kimi K2, "
             "...) of a Hugging Face config"),
    cl::values(clEnumValN(MlaCache::Decompressed, "decompressed",
                          "keys and values per head, as transformers' "
                          "attention modules pass them (the default)"),
               clEnumValN(MlaCache::Latent, "latent",
                          "absorbed: one KV head of kv_lora_rank + "
                          "qk_rope_head_dim dims, whose first kv_lora_rank "
                          "are the values, in a latent cache")),
    cl::cat(toolCategory));
cl::opt<std::string> tuningDb("tuning-db", cl::desc("Tuning database (JSON)"),
                              cl::value_desc("file"), cl::cat(toolCategory));

int fail(const Twine &message) {
  WithColor::error(errs(), "hybrid-compile") << message << "\n";
  return 1;
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  // MLIR's own pass-manager and timing options, as in hybrid-opt (not
  // listed by --help, which keeps to the compiler's); the project's passes
  // and MLIR's generic ones are registered so that -mlir-print-ir-after=P
  // can name them.
  hybrid::registerHybridPasses();
  hybrid::registerHybridConversionPasses();
  registerTransformsPasses();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  cl::HideUnrelatedOptions(
      {&toolCategory, &hybrid::tools::getGPUKernelOptionCategory()});
  cl::ParseCommandLineOptions(
      argc, argv,
      "hybrid-compile: compile a hybrid attention schedule\n\n"
      "  INPUT is a Hugging Face config.json, a hybrid schedule spec (JSON)\n"
      "  or a .mlir file holding a hybrid.schedule.\n\n"
      "  MLIR's -mlir-timing (each phase: schedule, extract, convert, lower,\n"
      "  ptx, cubin or object), -mlir-print-ir-after-all, "
      "-mlir-pass-statistics\n"
      "  and the other pass-manager options apply to every pass pipeline.\n");
  DefaultTimingManager timing;
  applyDefaultTimingManagerCLOptions(timing);
  TimingScope root = timing.getRootScope();

  hybrid::CompileOptions options;
  options.target = target;
  options.maxSeq = maxSeq;
  if (kvDtype.getNumOccurrences())
    options.kvStorage = kvDtype;
  options.qTile = qTile;
  options.kTile = kTile;
  options.kTileGiven = kTile.getNumOccurrences() > 0;
  if (std::string error = hybrid::tools::applyGPUKernelOptions(options);
      !error.empty())
    return fail(error);
  if (std::string error = hybrid::validate(options); !error.empty())
    return fail(error);
  if (!tuningDb.empty() && emit != Emit::Artifacts)
    return fail("--tuning-db: only with --emit artifacts (it sets kernel tile "
                "sizes and variants)");
  options.tuningDb = tuningDb;
  options.externalPositional = externalPositional;
  options.import.latentMla = mlaCache == MlaCache::Latent;
  if (!cudaToolkit.empty())
    options.cudaToolkit = cudaToolkit;
  options.cubin = cubin;
  options.configurePassManager = [](PassManager &pm) {
    return applyPassManagerCLOptions(pm);
  };
  if (timing.isEnabled())
    options.timing = &root;
  options.gpu.warpRows = warpRows;
  options.gpu.minCtasPerSM = minCtasPerSM;
  if (target == "cpu" && cubin.getNumOccurrences())
    return fail("--cubin: only for cuda targets");
  if (target == "cpu" && minCtasPerSM.getNumOccurrences())
    return fail("--min-ctas-per-sm: only for GPU targets");
  if (minCtasPerSM < 0 || minCtasPerSM > 32)
    return fail("--min-ctas-per-sm must be 0 (no bound) to 32, got " +
                std::to_string(minCtasPerSM));

  if (target == "cpu" && warpRows.getNumOccurrences())
    return fail("--warp-rows: only for GPU targets (the CPU kernels take "
                "--q-tile)");
  if (target != "cpu" && qTile.getNumOccurrences())
    return fail("--q-tile: the GPU kernels' query tile follows from --warps "
                "and --warp-rows (16 rows per mma tile)");
  if (emit == Emit::Artifacts && outputDir.empty())
    return fail("--emit artifacts needs an output directory: -o DIR");
  if (emit == Emit::Artifacts)
    if (std::string error = hybrid::validateArtifactCacheStorage(options);
        !error.empty())
      return fail(error);

  hybrid::CompilerContext context;
  OwningOpRef<ModuleOp> module = context.load(inputPath, options.import);
  if (!module)
    return 1;
  if (emit == Emit::Artifacts)
    return hybrid::emitArtifacts(*module, options, outputDir) ? 0 : 1;

  // --emit mlir keeps the compact patterns; the summary lists every layer.
  if (!hybrid::planSchedule(*module, options, /*expand=*/emit != Emit::MLIR))
    return 1;
  if (emit == Emit::MLIR) {
    module->print(outs());
    return 0;
  }
  auto schedule = *module->getOps<hybrid::ScheduleOp>().begin();
  outs() << hybrid::buildSummary(schedule).dump(2) << "\n";
  return 0;
}
