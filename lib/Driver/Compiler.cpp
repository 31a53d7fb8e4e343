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

OwningOpRef<ModuleOp> CompilerContext::load(StringRef path) {
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
      spec::importModel(file->getBuffer(), path);
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

std::string hybrid::validate(const CompileOptions &options) {
  if (options.target != "cpu" && options.target != "cuda:sm_90a" &&
      options.target != "cuda:sm_80")
    return "--target: unknown target '" + options.target +
           "' (expected cpu, cuda:sm_90a or cuda:sm_80)";
  if (options.maxSeq < 0)
    return "--max-seq: must be positive, got " + std::to_string(options.maxSeq);
  if (options.qTile <= 0 || options.kTile <= 0)
    return "--q-tile and --k-tile must be positive";
  if (options.tensorCores != "mma.sync" && options.tensorCores != "wgmma")
    return "--tensor-cores must be mma.sync or wgmma, got '" +
           options.tensorCores + "'";
  if (options.tensorCores == "wgmma" && options.target != "cuda:sm_90a")
    return "--tensor-cores wgmma: only for --target cuda:sm_90a (wgmma is an "
           "sm_90a instruction), got " +
           options.target;
  if (options.tma && options.tensorCores != "wgmma")
    return "--tma: TMA writes the swizzled tiles only the wgmma kernels "
           "read; add --tensor-cores wgmma";
  if (options.warps != 4 && options.warps != 8)
    return "--warps must be 4 or 8 (warps per flash CTA), got " +
           std::to_string(options.warps);
  if (options.warps != 4 && options.target == "cpu")
    return "--warps: only for GPU targets";
  if (options.stages < 1 || options.stages > 4)
    return "--stages must be 1 to 4, got " + std::to_string(options.stages);
  if (options.stages > 1 && !options.tma)
    return "--stages " + std::to_string(options.stages) +
           ": tiles ahead of the current one are loaded by TMA; add --tma";
  if (options.softmaxOverlap && options.stages < 2)
    return "--softmax-overlap: the tiles of two key tiles are in use at "
           "once; add --tma --stages 2 (or more)";
  if (!(options.rescaleThreshold >= 0 && options.rescaleThreshold <= 32)) {
    std::string shown;
    llvm::raw_string_ostream(shown)
        << llvm::format("%g", options.rescaleThreshold);
    return "--rescale-threshold must be 0 to 32 (powers of two), got " + shown;
  }
  if (options.rescaleThreshold != 8 && options.target == "cpu")
    return "--rescale-threshold: only for GPU targets";
  return "";
}

/// CompileOptions::externalPositional: positional none, no temperature.
static void makePositionalExternal(ModuleOp module) {
  MLIRContext *ctx = module.getContext();
  auto none = PositionalAttr::get(ctx, PositionalKind::none, Real(), 0, Real(),
                                  RopeScalingAttr());
  module.walk([&](LayerOp layer) {
    if (layer.getPositional())
      layer->setAttr(layer.getPositionalAttrName(), none);
    if (std::optional<ScoreAttr> score = layer.getScore())
      layer->setAttr(layer.getScoreAttrName(),
                     ScoreAttr::get(ctx, score->getScale(), score->getSoftcap(),
                                    score->getSinks(),
                                    TemperatureTuningAttr()));
  });
}

bool hybrid::planSchedule(ModuleOp module, const CompileOptions &options,
                          bool expand) {
  if (options.externalPositional)
    makePositionalExternal(module);
  PassManager pm = PassManager::on<ModuleOp>(module.getContext());
  SchedulePipelineOptions schedule;
  schedule.expand = expand;
  schedule.maxSeq = options.maxSeq;
  schedule.storage = options.kvStorage;
  buildSchedulePipeline(pm, schedule);
  return succeeded(pm.run(module));
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

/// Runs the `extract` pipeline, sets the attributes options.tuningDb's
/// entries (loaded into `database`) give the kernels, looked up for the
/// context the caches are planned for, then runs `convert`. The decisions
/// point into `database`.
static FailureOr<std::vector<TuningDecision>>
convertTuned(ModuleOp module, const CompileOptions &options,
             TuningDatabase &database,
             llvm::function_ref<void(OpPassManager &)> extract,
             llvm::function_ref<void(OpPassManager &)> convert) {
  std::string error;
  if (!options.tuningDb.empty() && !database.load(options.tuningDb, error)) {
    fail(error);
    return failure();
  }
  PassManager extracting = PassManager::on<ModuleOp>(module.getContext());
  extract(extracting);
  if (failed(extracting.run(module)))
    return failure();
  ScheduleOp schedule = *module.getOps<ScheduleOp>().begin();
  int64_t seqLen = schedule.getCacheSummaryAttr()
                       ? schedule.getCacheSummaryAttr().getMaxSeq()
                       : options.maxSeq;
  FailureOr<std::vector<TuningDecision>> decisions =
      applyTuning(module, database, getTuningTarget(options.target), seqLen);
  if (failed(decisions))
    return failure();
  PassManager converting = PassManager::on<ModuleOp>(module.getContext());
  convert(converting);
  if (failed(converting.run(module)))
    return failure();
  return decisions;
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

/// emitArtifacts for `cuda:<chip>`: kernels.ptx, kernels.cubin when ptxas is
/// found, kernels.mlir and manifest.json.
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
  cuda.warpRows = options.warpRows;
  cuda.warps = options.warps;
  cuda.stages = options.stages;
  cuda.rescaleThreshold = options.rescaleThreshold;
  cuda.softmaxOverlap = options.softmaxOverlap;
  if (options.kTileGiven)
    cuda.sharedMemory = 0; // the chip's maximum
  cuda.minCtasPerSM = options.minCtasPerSM;
  cuda.tensorCores = options.tensorCores;
  cuda.tma = options.tma;
  cuda.toolkit = options.cudaToolkit;
  TuningDatabase database;
  FailureOr<std::vector<TuningDecision>> decisions = convertTuned(
      module, options, database,
      [&](OpPassManager &pm) { buildCUDAExtractPipeline(pm, cuda); },
      [&](OpPassManager &pm) { buildCUDAConvertPipeline(pm, cuda); });
  if (failed(decisions))
    return false;
  ScheduleOp schedule = *module.getOps<ScheduleOp>().begin();
  const char *ptxFile = "kernels.ptx";
  nlohmann::ordered_json manifest =
      buildManifest(module, schedule, ptxFile, options.target);
  recordTuning(manifest, *decisions, options);
  if (!writeKernelsAndDropSchedule(module, schedule, dir))
    return false;
  PassManager lowering = PassManager::on<ModuleOp>(module.getContext());
  buildCUDAToNVVMPipeline(lowering, cuda);
  if (failed(lowering.run(module)))
    return false;
  std::string error;
  std::optional<std::string> ptx = emitPTX(module, cuda.toolkit, error);
  if (!ptx)
    return fail(error);
  std::string ptxPath = (dir + "/" + ptxFile).str();
  if (!writeFile(ptxPath, *ptx))
    return false;
  // The cubin loads without JIT on the chip itself; other (newer) GPUs JIT
  // the PTX.
  manifest["cubin"] = nullptr;
  if (std::optional<std::string> ptxas = findPtxas(cuda.toolkit)) {
    std::string cubinPath = (dir + "/kernels.cubin").str();
    if (!assembleCubin(*ptxas, ptxPath, cuda.chip, cubinPath, error))
      return fail(error);
    manifest["cubin"] = "kernels.cubin";
  }
  return writeFile(dir + "/manifest.json", manifest.dump(2) + "\n");
}

bool hybrid::emitArtifacts(ModuleOp module, const CompileOptions &options,
                           StringRef dir) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fail("cannot create " + dir + ": " + ec.message());
  if (options.externalPositional)
    makePositionalExternal(module);
  if (StringRef(options.target).starts_with("cuda:"))
    return emitCUDAArtifacts(module, options, dir);
  CPUPipelineOptions cpu;
  cpu.maxSeq = options.maxSeq;
  cpu.qTile = options.qTile;
  cpu.kTile = options.kTile;
  TuningDatabase database;
  FailureOr<std::vector<TuningDecision>> decisions = convertTuned(
      module, options, database,
      [&](OpPassManager &pm) { buildCPUExtractPipeline(pm, cpu); },
      [&](OpPassManager &pm) { buildCPUConvertPipeline(pm, cpu); });
  if (failed(decisions))
    return false;

  ScheduleOp schedule = *module.getOps<ScheduleOp>().begin();
  const char *library = "libkernels.so";
  nlohmann::ordered_json manifest =
      buildManifest(module, schedule, library, options.target);
  recordTuning(manifest, *decisions, options);
  manifest["host"] = getHostTargetDescription();
  if (!writeKernelsAndDropSchedule(module, schedule, dir))
    return false;
  PassManager lowering = PassManager::on<ModuleOp>(module.getContext());
  buildCPUToLLVMPipeline(lowering);
  if (failed(lowering.run(module)))
    return false;
  std::string error;
  if (!emitHostSharedObject(module, (dir + "/" + library).str(), error))
    return fail(error);
  return writeFile(dir + "/manifest.json", manifest.dump(2) + "\n");
}
