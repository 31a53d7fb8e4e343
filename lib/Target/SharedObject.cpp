//===- SharedObject.cpp - LLVM-dialect module to a host .so --------------===//

#include "hybrid/Target/SharedObject.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/Support/FileUtilities.h"

using namespace llvm;

static std::string getHostFeatures() {
  SubtargetFeatures features;
  for (const auto &[name, enabled] : sys::getHostCPUFeatures())
    features.AddFeature(name, enabled);
  return features.getString();
}

std::string hybrid::getHostTargetDescription() {
  return (sys::getHostCPUName() + " (" + sys::getDefaultTargetTriple() + ")")
      .str();
}

bool hybrid::emitHostSharedObject(mlir::ModuleOp module, StringRef path,
                                  std::string &error) {
  InitializeNativeTarget();
  InitializeNativeTargetAsmPrinter();
  mlir::registerBuiltinDialectTranslation(*module->getContext());
  mlir::registerLLVMDialectTranslation(*module->getContext());

  LLVMContext context;
  std::unique_ptr<Module> llvmModule =
      mlir::translateModuleToLLVMIR(module, context, "hybrid_kernels");
  if (!llvmModule) {
    error = "cannot translate the kernels to LLVM IR";
    return false;
  }
  Triple triple(sys::getDefaultTargetTriple());
  const Target *target = TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return false;
  TargetOptions options;
  std::unique_ptr<TargetMachine> machine(target->createTargetMachine(
      triple, sys::getHostCPUName(), getHostFeatures(), options, Reloc::PIC_,
      std::nullopt, CodeGenOptLevel::Aggressive));
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(machine->createDataLayout());
  if (Error err = mlir::makeOptimizingTransformer(3, 0, machine.get())(
          llvmModule.get())) {
    error = toString(std::move(err));
    return false;
  }

  SmallString<128> object;
  int fd;
  if (std::error_code ec =
          sys::fs::createTemporaryFile("hybrid-kernels", "o", fd, object)) {
    error = "cannot create a temporary object file: " + ec.message();
    return false;
  }
  FileRemover removeObject(object);
  {
    raw_fd_ostream os(fd, /*shouldClose=*/true);
    legacy::PassManager pm;
    if (machine->addPassesToEmitFile(pm, os, nullptr,
                                     CodeGenFileType::ObjectFile)) {
      error = "the host target cannot emit object files";
      return false;
    }
    pm.run(*llvmModule);
  }

  ErrorOr<std::string> driver = sys::findProgramByName("clang-22");
  if (!driver)
    driver = sys::findProgramByName("cc");
  if (!driver) {
    error = "no C compiler driver (clang-22 or cc) to link the kernels with";
    return false;
  }
  std::string output = path.str(), objectPath = object.str().str();
  SmallVector<StringRef> args = {*driver, "-shared", "-o", output, objectPath,
                                 "-lm"};
  std::string message;
  if (sys::ExecuteAndWait(*driver, args, std::nullopt, {}, 0, 0, &message) !=
      0) {
    error = "linking " + output + " failed" +
            (message.empty() ? "" : ": " + message);
    return false;
  }
  return true;
}
