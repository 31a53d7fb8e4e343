//===- PTX.cpp - NVVM-dialect gpu.module to PTX and cubin ----------------===//

#include "hybrid/Target/PTX.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

using namespace mlir;

std::optional<std::string>
hybrid::emitPTX(ModuleOp module, StringRef toolkit, std::string &error,
                function_ref<LogicalResult(PassManager &)> configure) {
  MLIRContext *context = module.getContext();
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  context->appendDialectRegistry(registry);

  PassManager pm = PassManager::on<ModuleOp>(context);
  GpuModuleToBinaryPassOptions options;
  options.compilationTarget = "isa";
  options.toolkitPath = toolkit.str();
  pm.addPass(createGpuModuleToBinaryPass(options));
  if ((configure && failed(configure(pm))) || failed(pm.run(module))) {
    error = "PTX generation failed (see the diagnostics above)";
    return std::nullopt;
  }
  for (auto binary : module.getOps<gpu::BinaryOp>())
    for (Attribute object : binary.getObjects())
      return cast<gpu::ObjectAttr>(object).getObject().str();
  error = "no gpu.module to translate to PTX";
  return std::nullopt;
}

std::optional<std::string> hybrid::findPtxas(StringRef toolkit) {
  SmallString<128> bin(toolkit);
  llvm::sys::path::append(bin, "bin");
  if (llvm::ErrorOr<std::string> path =
          llvm::sys::findProgramByName("ptxas", {bin.str()}))
    return *path;
  if (llvm::ErrorOr<std::string> path = llvm::sys::findProgramByName("ptxas"))
    return *path;
  return std::nullopt;
}

/// The number before `unit` in `text` ("40 bytes stack frame"), or 0.
static uint64_t getCountBefore(StringRef text, StringRef unit) {
  size_t at = text.find(unit);
  if (at == StringRef::npos)
    return 0;
  StringRef digits = text.take_front(at).rtrim().rsplit(' ').second;
  if (digits.empty())
    digits = text.take_front(at).rtrim();
  uint64_t value = 0;
  return digits.getAsInteger(10, value) ? 0 : value;
}

void hybrid::parsePtxasReport(StringRef log, PtxasReport &report) {
  // ptxas info    : Compiling entry function 'k' for 'sm_90a'
  // ptxas info    : Function properties for k
  //     40 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
  // ptxas info    : Used 40 registers, used 0 barriers, 9216 bytes smem
  // and, anywhere (often before the function it is about):
  // ptxas info    : (C7515) Potential Performance Loss: wgmma.mma_async ...
  std::string current;
  FunctionResources found;
  bool properties = false;
  SmallVector<StringRef> lines;
  log.split(lines, '\n');
  for (StringRef line : lines) {
    line = line.trim();
    StringRef info = line;
    constexpr StringRef kLoss = "Potential Performance Loss:";
    if (size_t at = line.find(kLoss); at != StringRef::npos) {
      report.performanceLosses.push_back(
          line.drop_front(at + kLoss.size()).trim().str());
      continue;
    }
    if (info.consume_front("ptxas info")) {
      info = info.ltrim(" :");
      if (info.consume_front("Compiling entry function '")) {
        current = info.take_until([](char c) { return c == '\''; }).str();
        found = FunctionResources();
        properties = false;
      } else if (info.consume_front("Function properties for ")) {
        properties = !current.empty() && info.trim() == current;
      } else if (info.consume_front("Used ") && !current.empty()) {
        found.registers = unsigned(getCountBefore(info, " registers"));
        found.sharedBytes = getCountBefore(info, " bytes smem");
        report.functions.emplace_back(current, found);
        current.clear();
      }
      continue;
    }
    if (properties && line.contains("bytes stack frame")) {
      found.stackBytes = getCountBefore(line, " bytes stack frame");
      found.spillStoreBytes = getCountBefore(line, " bytes spill stores");
      found.spillLoadBytes = getCountBefore(line, " bytes spill loads");
      properties = false;
    }
  }
}

bool hybrid::assembleCubin(StringRef ptxas, StringRef ptxPath, StringRef chip,
                           StringRef cubinPath, std::string &error,
                           PtxasReport &report) {
  SmallString<128> log;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("ptxas", "log", log)) {
    error = "cannot create a temporary file: " + ec.message();
    return false;
  }
  std::string arch = ("-arch=" + chip).str();
  // -v: each function's registers, stack and spills, for the manifest.
  SmallVector<StringRef> args = {ptxas,   arch, "-O3",    "-v",
                                 ptxPath, "-o", cubinPath};
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log),
                                          StringRef(log)};
  int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects);
  auto text = llvm::MemoryBuffer::getFile(log);
  if (rc != 0) {
    // The -v lines are noise beside the error.
    std::string message;
    if (text) {
      SmallVector<StringRef> lines;
      (*text)->getBuffer().split(lines, '\n');
      for (StringRef line : lines)
        if (!line.trim().empty() && !line.starts_with("ptxas info") &&
            !line.contains("bytes stack frame"))
          message += line.str() + "\n";
    }
    error = "ptxas " + arch + " failed: " +
            (message.empty() ? std::string("(no output)") : message);
  } else if (text) {
    parsePtxasReport((*text)->getBuffer(), report);
  }
  llvm::sys::fs::remove(log);
  return rc == 0;
}
