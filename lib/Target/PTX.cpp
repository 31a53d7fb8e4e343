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

bool hybrid::assembleCubin(StringRef ptxas, StringRef ptxPath, StringRef chip,
                           StringRef cubinPath, std::string &error) {
  SmallString<128> log;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("ptxas", "log", log)) {
    error = "cannot create a temporary file: " + ec.message();
    return false;
  }
  std::string arch = ("-arch=" + chip).str();
  SmallVector<StringRef> args = {ptxas, arch, "-O3", ptxPath, "-o", cubinPath};
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log),
                                          StringRef(log)};
  int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects);
  if (rc != 0) {
    auto text = llvm::MemoryBuffer::getFile(log);
    error = ("ptxas " + arch + " failed: " +
             (text ? (*text)->getBuffer() : StringRef("(no output)")))
                .str();
  }
  llvm::sys::fs::remove(log);
  return rc == 0;
}
