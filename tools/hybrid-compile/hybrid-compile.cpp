//===- hybrid-compile.cpp - Model description to schedule and kernels ----===//
//
// hybrid-compile INPUT [--target T] [--emit mlir|summary|artifacts] [-o DIR]
//                      [--max-seq N] [--kv-dtype T] [--tuning-db FILE]
//
// INPUT is a Hugging Face config.json, the project's own schedule spec, or a
// .mlir file holding a hybrid.schedule.
//
//===----------------------------------------------------------------------===//

#include "hybrid/Dialect/Hybrid/IR/HybridDialect.h"
#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"
#include "hybrid/Export/Manifest.h"
#include "hybrid/Export/Summary.h"
#include "hybrid/Import/Importer.h"
#include "hybrid/Import/ScheduleBuilder.h"
#include "hybrid/Pipelines/Pipelines.h"
#include "hybrid/Target/SharedObject.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace llvm;

namespace {
enum class Emit { MLIR, Summary, Artifacts };

cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<config.json | spec.json | .mlir>"));
cl::opt<std::string> target("target", cl::init("cpu"),
                            cl::desc("cpu, cuda:sm_90a or cuda:sm_80"));
cl::opt<Emit> emit("emit", cl::init(Emit::Summary),
                   cl::desc("What to produce"),
                   cl::values(clEnumValN(Emit::MLIR, "mlir",
                                         "the schedule in the hybrid dialect"),
                              clEnumValN(Emit::Summary, "summary",
                                         "the JSON summary and cache plan"),
                              clEnumValN(Emit::Artifacts, "artifacts",
                                         "kernels and manifest.json in -o")));
cl::opt<std::string> outputDir("o", cl::desc("Output directory (artifacts)"),
                               cl::value_desc("dir"));
cl::opt<int64_t> maxSeq("max-seq", cl::init(0),
                        cl::desc("Context length the cache plan is for "
                                 "(default: max_position_embeddings)"));
cl::opt<hybrid::StorageType> kvDtype(
    "kv-dtype", cl::init(hybrid::StorageType::bf16),
    cl::desc("Element type of stored caches and states"),
    cl::values(clEnumValN(hybrid::StorageType::f32, "f32", "4 bytes"),
               clEnumValN(hybrid::StorageType::f16, "f16", "2 bytes"),
               clEnumValN(hybrid::StorageType::bf16, "bf16", "2 bytes"),
               clEnumValN(hybrid::StorageType::f8, "f8", "1 byte")));
cl::opt<int64_t> qTile("q-tile", cl::init(32),
                       cl::desc("CPU kernels: query positions per work item"));
cl::opt<int64_t> kTile("k-tile", cl::init(64),
                       cl::desc("CPU kernels: keys per tile"));
cl::opt<std::string> tuningDb("tuning-db", cl::desc("Tuning database (JSON)"),
                              cl::value_desc("file"));

int fail(const Twine &message) {
  WithColor::error(errs(), "hybrid-compile") << message << "\n";
  return 1;
}

/// Reads INPUT into a module holding one hybrid.schedule.
OwningOpRef<ModuleOp> loadSchedule(MLIRContext &context,
                                   SourceMgr &sourceMgr) {
  std::string error;
  std::unique_ptr<MemoryBuffer> file = openInputFile(inputPath, &error);
  if (!file) {
    fail(error);
    return nullptr;
  }
  if (sys::path::extension(inputPath) == ".mlir") {
    sourceMgr.AddNewSourceBuffer(std::move(file), SMLoc());
    return parseSourceFile<ModuleOp>(sourceMgr, &context);
  }
  Expected<hybrid::spec::ModelSpec> spec =
      hybrid::spec::importModel(file->getBuffer(), inputPath);
  if (!spec) {
    fail(toString(spec.takeError()));
    return nullptr;
  }
  Location loc = FileLineColLoc::get(&context, inputPath, 1, 1);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  OpBuilder builder = OpBuilder::atBlockEnd(module->getBody());
  if (failed(hybrid::buildSchedule(builder, loc, *spec)))
    return nullptr;
  return module;
}
bool writeFile(const Twine &path, StringRef text) {
  std::error_code ec;
  raw_fd_ostream os(path.str(), ec);
  if (ec) {
    fail("cannot write " + path + ": " + ec.message());
    return false;
  }
  os << text;
  return true;
}

/// Kernels (libkernels.so), their IR before LLVM lowering (kernels.mlir) and
/// manifest.json in the output directory.
int emitArtifacts(MLIRContext &context, ModuleOp module,
                  hybrid::ScheduleOp schedule) {
  if (std::error_code ec = sys::fs::create_directories(outputDir))
    return fail("cannot create " + outputDir + ": " + ec.message());
  hybrid::CPUPipelineOptions options;
  options.maxSeq = maxSeq;
  options.qTile = qTile;
  options.kTile = kTile;
  PassManager kernels = PassManager::on<ModuleOp>(&context);
  hybrid::buildCPUKernelPipeline(kernels, options);
  if (failed(kernels.run(module)))
    return 1;

  const char *library = "libkernels.so";
  nlohmann::ordered_json manifest =
      hybrid::buildManifest(module, schedule, library, target);
  manifest["host"] = hybrid::getHostTargetDescription();
  std::string ir;
  raw_string_ostream irStream(ir);
  module.print(irStream);
  if (!writeFile(outputDir + "/kernels.mlir", ir))
    return 1;

  // The schedule lives on in manifest.json; the library holds kernels only.
  schedule.erase();
  PassManager lowering = PassManager::on<ModuleOp>(&context);
  hybrid::buildCPUToLLVMPipeline(lowering);
  if (failed(lowering.run(module)))
    return 1;
  std::string error;
  if (!hybrid::emitHostSharedObject(module, outputDir + "/" + library, error))
    return fail(error);
  if (!writeFile(outputDir + "/manifest.json", manifest.dump(2) + "\n"))
    return 1;
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "hybrid-compile: compile a hybrid attention schedule\n\n"
      "  INPUT is a Hugging Face config.json, a hybrid schedule spec (JSON)\n"
      "  or a .mlir file holding a hybrid.schedule.\n");

  if (target != "cpu" && target != "cuda:sm_90a" && target != "cuda:sm_80")
    return fail("--target: unknown target '" + target +
                "' (expected cpu, cuda:sm_90a or cuda:sm_80)");
  if (maxSeq < 0)
    return fail("--max-seq: must be positive, got " + Twine(maxSeq));
  if (!tuningDb.empty())
    return fail("--tuning-db: tuning databases are not supported yet");
  if (emit == Emit::Artifacts && target != "cpu")
    return fail("--emit artifacts: kernel code generation for '" + target +
                "' is not implemented yet (only cpu)");
  if (emit == Emit::Artifacts && outputDir.empty())
    return fail("--emit artifacts needs an output directory: -o DIR");

  DialectRegistry registry;
  registry.insert<hybrid::HybridDialect, func::FuncDialect,
                  tensor::TensorDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  // Users get the message and its location, not a dump of the whole op.
  context.printOpOnDiagnostic(false);
  SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);

  OwningOpRef<ModuleOp> module = loadSchedule(context, sourceMgr);
  if (!module)
    return 1;
  auto schedules = module->getOps<hybrid::ScheduleOp>();
  if (std::distance(schedules.begin(), schedules.end()) != 1)
    return fail(inputPath + ": expected exactly one hybrid.schedule");

  if (emit == Emit::Artifacts)
    return emitArtifacts(context, *module, *schedules.begin());

  // --emit mlir keeps the compact patterns; the summary lists every layer.
  PassManager pm = PassManager::on<ModuleOp>(&context);
  hybrid::SchedulePipelineOptions options;
  options.expand = emit != Emit::MLIR;
  options.maxSeq = maxSeq;
  options.storage = kvDtype;
  hybrid::buildSchedulePipeline(pm, options);
  if (failed(pm.run(*module)))
    return 1;

  if (emit == Emit::MLIR) {
    module->print(outs());
    return 0;
  }
  outs() << hybrid::buildSummary(*schedules.begin()).dump(2) << "\n";
  return 0;
}
