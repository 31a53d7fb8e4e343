//===- Compiler.cpp - Input file to schedule, summary and artifacts ------===//

#include "hybrid/Driver/Compiler.h"
#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "hybrid/Export/Manifest.h"
#include "hybrid/Import/Importer.h"
#include "hybrid/Import/ScheduleBuilder.h"
#include "hybrid/Pipelines/Pipelines.h"
#include "hybrid/Target/PTX.h"
#include "hybrid/Target/SharedObject.h"
#include "hybrid/Tuning/ApplyTuning.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace hybrid;

static bool fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "hybrid") << message << "\n";
  return false;
}

struct CompilerContext::Diagnostics {
  Diagnostics(MLIRContext &context) : handler(sourceMgr, &context) {}
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler handler;
};

CompilerContext::CompilerContext() {
  DialectRegistry registry;
  registry.insert<HybridDialect, func::FuncDialect, tensor::TensorDialect>();
  registerCUDAPipelineDependencies(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  // Users get the message and its location, not a dump of the whole op.
  context.printOpOnDiagnostic(false);
  diagnostics = std::make_unique<Diagnostics>(context);
}

CompilerContext::~CompilerContext() = default;

OwningOpRef<ModuleOp>
CompilerContext::load(StringRef path, const spec::ImportOptions &options) {
  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> file = openInputFile(path, &error);
  if (!file) {
    fail(error);
    return nullptr;
  }
  if (llvm::sys::path::extension(path) == ".mlir") {
    diagnostics->sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
    OwningOpRef<ModuleOp> module =
        parseSourceFile<ModuleOp>(diagnostics->sourceMgr, &context);
    if (module && std::distance(module->getOps<ScheduleOp>().begin(),
                                module->getOps<ScheduleOp>().end()) != 1) {
      fail(path + ": expected exactly one hybrid.schedule");
      return nullptr;
    }
    return module;
  }
  llvm::Expected<spec::ModelSpec> model =
      spec::importModel(file->getBuffer(), path, options);
  if (!model) {
    fail(llvm::toString(model.takeError()));
    return nullptr;
  }
  Location loc = FileLineColLoc::get(&context, path, 1, 1);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  OpBuilder builder = OpBuilder::atBlockEnd(module->getBody());
  if (failed(buildSchedule(builder, loc, *model)))
    return nullptr;
  return module;
}

std::string hybrid::getDefaultCUDAToolkit() {
  const char *home = std::getenv("CUDA_HOME");
  return home && *home ? home : "/usr/local/cuda";
}

std::string hybrid::validateTarget(StringRef target) {
  if (target != "cpu" && target != "cuda:sm_90a" && target != "cuda:sm_80")
    return ("--target: unknown target '" + target +
            "' (expected cpu, cuda:sm_90a or cuda:sm_80)")
        .str();
  return "";
}

StorageType hybrid::getArtifactCacheStorage(const CompileOptions &options) {
  return options.kvStorage.value_or(
      options.target == "cpu" ? StorageType::f32 : StorageType::bf16);
}

std::string
hybrid::validateArtifactCacheStorage(const CompileOptions &options) {
  StorageType storage = getArtifactCacheStorage(options);
  bool onCPU = options.target == "cpu";
  // Every storage type serves CPU caches.
  if (storage == StorageType::bf16 || onCPU)
    return "";
  return ("--kv-dtype " + stringifyStorageType(storage) +
          ": the runtime keeps GPU caches in bf16")
      .str();
}

std::string hybrid::validate(const CompileOptions &options) {
  if (std::string error = validateTarget(options.target); !error.empty())
    return error;
  if (options.maxSeq < 0)
    return "--max-seq: must be positive, got " + std::to_string(options.maxSeq);
  if (options.qTile < 0 || options.kTile <= 0)
    return "--q-tile must be positive or 0 (automatic), --k-tile positive";
  const GPUKernelVariant &gpu = options.gpu;
  bool wgmma = gpu.tensorCores == TensorCores::Wgmma;
  if (wgmma && options.target != "cuda:sm_90a")
    return "--tensor-cores wgmma: only for --target cuda:sm_90a (wgmma is an "
           "sm_90a instruction), got " +
           options.target;
  if (gpu.tma && !wgmma)
    return "--tma: TMA writes the swizzled tiles only the wgmma kernels "
           "read; add --tensor-cores wgmma";
  if (gpu.warps != 4 && gpu.warps != 8)
    return "--warps must be 4 or 8 (warps per flash CTA), got " +
           std::to_string(gpu.warps);
  if (gpu.warps != 4 && options.target == "cpu")
    return "--warps: only for GPU targets";
  if (gpu.stages < 1 || gpu.stages > 4)
    return "--stages must be 1 to 4, got " + std::to_string(gpu.stages);
  if (gpu.stages > 1 && !gpu.tma)
    return "--stages " + std::to_string(gpu.stages) +
           ": tiles ahead of the current one are loaded by TMA; add --tma";
  if (gpu.softmaxOverlap && gpu.stages < 2)
    return "--softmax-overlap: the tiles of two key tiles are in use at "
           "once; add --tma --stages 2 (or more)";
  if (gpu.warpSpecialized && gpu.stages < 2)
    return "--warp-specialized: the producer warp loads tiles ahead into "
           "stages the compute warps free; add --tma --stages 2 (or more)";
  if (gpu.pingPong &&
      !(gpu.warpSpecialized && gpu.softmaxOverlap && gpu.warps == 8))
    return "--ping-pong: two warpgroups take turns issuing their overlapped "
           "products, with no CTA barrier between them; add --warps 8 "
           "--softmax-overlap --warp-specialized";
  if (!(gpu.rescaleThreshold >= 0 && gpu.rescaleThreshold <= 32)) {
    std::string shown;
    llvm::raw_string_ostream(shown) << llvm::format("%g", gpu.rescaleThreshold);
    return "--rescale-threshold must be 0 to 32 (powers of two), got " + shown;
  }
  if (gpu.rescaleThreshold != 8 && options.target == "cpu")
    return "--rescale-threshold: only for GPU targets";
  int64_t granule = wgmma ? 64 : 16;
  if (gpu.valueSlice < granule || gpu.valueSlice > 256 ||
      gpu.valueSlice % granule != 0)
    return "--value-slice must be a multiple of " + std::to_string(granule) +
           " from " + std::to_string(granule) + " to 256" +
           (wgmma ? " with --tensor-cores wgmma" : "") + ", got " +
           std::to_string(gpu.valueSlice);
  if (gpu.valueSlice != 256 && options.target == "cpu")
    return "--value-slice: only for GPU targets";
  return "";
}

/// CompileOptions::externalPositional: positional none, no temperature, and
/// no K=V storage. A K=V cache keeps the keys before RoPE as the values too;
/// a caller that encodes positions (transformers' attention modules) passes
/// keys rotated (and normalised unlike the values: Gemma 4's k_norm has a
/// scale, its v_norm none), so those layers keep keys and values apart.
static void makePositionalExternal(ModuleOp module) {
  MLIRContext *ctx = module.getContext();
  auto none = PositionalAttr::get(ctx, PositionalKind::none, Real(), 0, Real(),
                                  RopeScalingAttr(), /*interleaved=*/false,
                                  /*rotary_offset=*/int64_t(0));
  module.walk([&](LayerOp layer) {
    if (layer.getPositional())
      layer->setAttr(layer.getPositionalAttrName(), none);
    if (std::optional<ScoreAttr> score = layer.getScore())
      layer->setAttr(layer.getScoreAttrName(),
                     ScoreAttr::get(ctx, score->getScale(), score->getSoftcap(),
                                    score->getSinks(),
                                    TemperatureTuningAttr()));
    CacheAttr cache = layer.getCacheAttr();
    if (!cache || !cache.getKEqV())
      return;
    if (cache.getPolicy() == CachePolicy::shared)
      layer->setAttr(layer.getCacheAttrName(),
                     CacheAttr::get(ctx, cache.getPolicy(), cache.getWindow(),
                                    cache.getChunk(), cache.getSourceLayer(),
                                    /*k_eq_v=*/false, /*latent=*/false));
    else // the planner gives it the cache of its mask
      layer->removeAttr(layer.getCacheAttrName());
  });
}

/// Sets up `pm` for one phase of the compile as `options` ask: the caller's
/// instrumentation, and a timer named `phase` (kept alive in `scope`).
static LogicalResult configurePhase(PassManager &pm,
                                    const CompileOptions &options,
                                    StringRef phase,
                                    std::optional<TimingScope> &scope) {
  if (options.configurePassManager && failed(options.configurePassManager(pm)))
    return failure();
  if (options.timing) {
    scope.emplace(options.timing->nest(phase));
    pm.enableTiming(*scope);
  }
  return success();
}

/// Runs the passes `build` adds on `module`, as phase `phase`.
static bool runPhase(ModuleOp module, const CompileOptions &options,
                     StringRef phase,
                     llvm::function_ref<void(OpPassManager &)> build) {
  PassManager pm = PassManager::on<ModuleOp>(module.getContext());
  build(pm);
  std::optional<TimingScope> scope;
  return succeeded(configurePhase(pm, options, phase, scope)) &&
         succeeded(pm.run(module));
}

/// A timer for a phase outside the pass managers (ptxas, the host object).
static std::optional<TimingScope> timePhase(const CompileOptions &options,
                                            StringRef phase) {
  if (!options.timing)
    return std::nullopt;
  return options.timing->nest(phase);
}

bool hybrid::planSchedule(ModuleOp module, const CompileOptions &options,
                          bool expand) {
  if (options.externalPositional)
    makePositionalExternal(module);
  SchedulePipelineOptions schedule;
  schedule.expand = expand;
  schedule.maxSeq = options.maxSeq;
  schedule.storage = options.kvStorage.value_or(StorageType::bf16);
  return runPhase(module, options, "schedule", [&](OpPassManager &pm) {
    buildSchedulePipeline(pm, schedule);
  });
}

static bool writeFile(const llvm::Twine &path, StringRef text) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path.str(), ec);
  if (ec)
    return fail("cannot write " + path + ": " + ec.message());
  os << text;
  return true;
}

/// Writes the kernels before their lowering to `dir`/kernels.mlir, then
/// drops the schedule: it lives on in manifest.json, and the library (or
/// PTX) holds kernels only.
static bool writeKernelsAndDropSchedule(ModuleOp module, ScheduleOp schedule,
                                        StringRef dir) {
  std::string ir;
  llvm::raw_string_ostream irStream(ir);
  module.print(irStream);
  if (!writeFile(dir + "/kernels.mlir", ir))
    return false;
  schedule.erase();
  return true;
}

/// Each kernel's tuning in the manifest: its signature and whether a
/// database entry set it; a note for kernels a given database lacks.
static void recordTuning(nlohmann::ordered_json &manifest,
                         const std::vector<TuningDecision> &decisions,
                         const CompileOptions &options) {
  for (const TuningDecision &d : decisions) {
    nlohmann::ordered_json tuning = {{"signature", d.signature}};
    if (d.entry) {
      tuning["source"] = "database";
      tuning["seq_bucket"] = d.entry->seqBucket;
      if (d.entry->gpu)
        tuning["variant"] = d.entry->gpu->getName();
    } else {
      tuning["source"] =
          options.tuningDb.empty() ? "default" : "default (no entry)";
      if (!options.tuningDb.empty())
        llvm::WithColor::note(llvm::errs(), "hybrid")
            << "no tuning entry for kernel " << d.kernel << " (" << d.signature
            << ") on " << getTuningTarget(options.target) << ": default "
            << (options.target == "cpu" ? "tile sizes" : "kernel") << "\n";
    }
    manifest["kernels"][d.kernel]["tuning"] = std::move(tuning);
  }
}

/// What both targets do before emitting code: runs `extract`, sets the
/// attributes options.tuningDb's entries give the kernels (looked up for the
/// context the caches are planned for), runs `convert`, describes the kernels
/// (in `kernelFile`) and their tuning in a manifest, writes kernels.mlir to
/// `dir`, drops the schedule and runs `lower`. Returns the manifest.
static std::optional<nlohmann::ordered_json>
lowerKernels(ModuleOp module, const CompileOptions &options, StringRef dir,
             StringRef kernelFile,
             llvm::function_ref<void(OpPassManager &)> extract,
             llvm::function_ref<void(OpPassManager &)> convert,
             llvm::function_ref<void(OpPassManager &)> lower) {
  TuningDatabase database;
  std::string error;
  if (!options.tuningDb.empty() && !database.load(options.tuningDb, error)) {
    fail(error);
    return std::nullopt;
  }
  if (!runPhase(module, options, "extract", extract))
    return std::nullopt;
  ScheduleOp schedule = *module.getOps<ScheduleOp>().begin();
  int64_t seqLen = schedule.getCacheSummaryAttr()
                       ? schedule.getCacheSummaryAttr().getMaxSeq()
                       : options.maxSeq;
  FailureOr<std::vector<TuningDecision>> decisions =
      applyTuning(module, database, getTuningTarget(options.target), seqLen);
  if (failed(decisions) || !runPhase(module, options, "convert", convert))
    return std::nullopt;
  nlohmann::ordered_json manifest =
      buildManifest(module, schedule, kernelFile, options.target);
  recordTuning(manifest, *decisions, options);
  if (!writeKernelsAndDropSchedule(module, schedule, dir) ||
      !runPhase(module, options, "lower", lower))
    return std::nullopt;
  return manifest;
}

/// The manifest's `resources` (per kernel of the cubin, what ptxas allotted
/// it) and `ptxas_performance_losses` (what ptxas says the cubin gives up).
/// Spilled registers and performance losses get one warning each: their
/// cost shows only on a GPU, their cause only here.
static void recordResources(nlohmann::ordered_json &manifest,
                            const PtxasReport &report, bool warn) {
  nlohmann::ordered_json &out = manifest["resources"];
  out = nlohmann::ordered_json::object();
  const std::pair<std::string, FunctionResources> *worst = nullptr;
  unsigned spilling = 0;
  for (const auto &entry : report.functions) {
    const FunctionResources &r = entry.second;
    std::string quoted = "'" + entry.first + "'";
    out[entry.first] = {
        {"registers", r.registers},
        {"stack_bytes", r.stackBytes},
        {"spill_store_bytes", r.spillStoreBytes},
        {"spill_load_bytes", r.spillLoadBytes},
        {"static_shared_bytes", r.sharedBytes},
        {"performance_losses",
         llvm::count_if(report.performanceLosses, [&](const std::string &l) {
           return StringRef(l).contains(quoted);
         })}};
    if (!r.spillStoreBytes && !r.spillLoadBytes)
      continue;
    ++spilling;
    if (!worst || r.spillStoreBytes > worst->second.spillStoreBytes)
      worst = &entry;
  }
  manifest["ptxas_performance_losses"] = report.performanceLosses;
  if (!warn)
    return;
  if (worst)
    llvm::WithColor::warning(llvm::errs(), "hybrid")
        << "ptxas spills registers to local memory in " << spilling << " of "
        << report.functions.size() << " kernels (the most: " << worst->first
        << ", " << worst->second.spillStoreBytes << " bytes stored at "
        << worst->second.registers
        << " registers); each kernel's are in manifest.json's resources\n";
  if (!report.performanceLosses.empty())
    llvm::WithColor::warning(llvm::errs(), "hybrid")
        << "ptxas reports " << report.performanceLosses.size()
        << " potential performance loss"
        << (report.performanceLosses.size() > 1 ? "es" : "")
        << " (the first: " << report.performanceLosses.front()
        << "); all are in manifest.json's ptxas_performance_losses\n";
}

/// emitArtifacts for `cuda:<chip>`: kernels.ptx, kernels.cubin when asked
/// for (the default) and ptxas is found, kernels.mlir and manifest.json.
static bool emitCUDAArtifacts(ModuleOp module, const CompileOptions &options,
                              StringRef dir) {
  std::string libdevice =
      options.cudaToolkit + "/nvvm/libdevice/libdevice.10.bc";
  if (!llvm::sys::fs::exists(libdevice))
    return fail("--cuda-toolkit: " + options.cudaToolkit +
                " has no nvvm/libdevice/libdevice.10.bc, which provides exp, "
                "tanh and cos to the GPU kernels (set --cuda-toolkit or "
                "CUDA_HOME)");
  CUDAPipelineOptions cuda;
  cuda.chip = StringRef(options.target).drop_front(strlen("cuda:")).str();
  cuda.maxSeq = options.maxSeq;
  cuda.kTile = options.kTile;
  if (options.kTileGiven)
    cuda.sharedMemory = 0; // the chip's maximum
  const GPUKernelVariant &gpu = options.gpu;
  cuda.tensorCores = getTensorCoresName(gpu.tensorCores).str();
  cuda.tma = gpu.tma;
  cuda.warps = gpu.warps;
  cuda.warpRows = gpu.warpRows;
  cuda.stages = gpu.stages;
  cuda.softmaxOverlap = gpu.softmaxOverlap;
  cuda.warpSpecialized = gpu.warpSpecialized;
  cuda.pingPong = gpu.pingPong;
  cuda.rescaleThreshold = gpu.rescaleThreshold;
  cuda.minCtasPerSM = gpu.minCtasPerSM;
  cuda.valueSlice = gpu.valueSlice;
  cuda.toolkit = options.cudaToolkit;
  const char *ptxFile = "kernels.ptx";
  std::optional<nlohmann::ordered_json> manifest = lowerKernels(
      module, options, dir, ptxFile,
      [&](OpPassManager &pm) { buildCUDAExtractPipeline(pm, cuda); },
      [&](OpPassManager &pm) { buildCUDAConvertPipeline(pm, cuda); },
      [&](OpPassManager &pm) { buildCUDAToNVVMPipeline(pm, cuda); });
  if (!manifest)
    return false;
  std::string error;
  std::optional<TimingScope> ptxScope;
  std::optional<std::string> ptx =
      emitPTX(module, cuda.toolkit, error, [&](PassManager &pm) {
        return configurePhase(pm, options, "ptx", ptxScope);
      });
  ptxScope.reset();
  if (!ptx)
    return fail(error);
  std::string ptxPath = (dir + "/" + ptxFile).str();
  if (!writeFile(ptxPath, *ptx))
    return false;
  // The cubin loads without JIT on the chip itself; other (newer) GPUs JIT
  // the PTX.
  (*manifest)["cubin"] = nullptr;
  std::optional<std::string> ptxas;
  if (options.cubin)
    ptxas = findPtxas(cuda.toolkit);
  if (ptxas) {
    std::string cubinPath = (dir + "/kernels.cubin").str();
    std::optional<TimingScope> scope = timePhase(options, "cubin (ptxas)");
    PtxasReport report;
    if (!assembleCubin(*ptxas, ptxPath, cuda.chip, cubinPath, error, report))
      return fail(error);
    (*manifest)["cubin"] = "kernels.cubin";
    recordResources(*manifest, report, options.warnPtxas);
  }
  return writeFile(dir + "/manifest.json", manifest->dump(2) + "\n");
}

bool hybrid::emitArtifacts(ModuleOp module, const CompileOptions &options,
                           StringRef dir) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fail("cannot create " + dir + ": " + ec.message());
  if (options.externalPositional)
    makePositionalExternal(module);
  if (std::string error = validateArtifactCacheStorage(options); !error.empty())
    return fail(error);
  if (options.target != "cpu")
    return emitCUDAArtifacts(module, options, dir);
  CPUPipelineOptions cpu;
  cpu.maxSeq = options.maxSeq;
  cpu.qTile = options.qTile;
  cpu.kTile = options.kTile;
  cpu.kvDtype = getArtifactCacheStorage(options);
  const char *library = "libkernels.so";
  std::optional<nlohmann::ordered_json> manifest = lowerKernels(
      module, options, dir, library,
      [&](OpPassManager &pm) { buildCPUExtractPipeline(pm, cpu); },
      [&](OpPassManager &pm) { buildCPUConvertPipeline(pm, cpu); },
      [&](OpPassManager &pm) { buildCPUToLLVMPipeline(pm); });
  if (!manifest)
    return false;
  (*manifest)["host"] = getHostTargetDescription();
  std::string error;
  std::optional<TimingScope> scope = timePhase(options, "object");
  if (!emitHostSharedObject(module, (dir + "/" + library).str(), error))
    return fail(error);
  return writeFile(dir + "/manifest.json", manifest->dump(2) + "\n");
}
