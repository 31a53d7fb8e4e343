//===- KernelLibrary.cpp - The compiled kernels of one schedule -----------===//

#include "KernelLibrary.h"

#include <dlfcn.h>

using namespace hybrid::rt;

KernelLibrary::~KernelLibrary() {
  if (handle)
    dlclose(handle);
}

bool KernelLibrary::load(const Manifest &manifest, std::string &error) {
  std::string path = manifest.library;
  if (path.empty() || path[0] != '/')
    path = manifest.dir + "/" + path;
  handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    error = "cannot load the kernel library: " + std::string(dlerror());
    return false;
  }
  auto resolve = [&](const std::string &kernel, const std::string &symbol,
                     auto &fn) {
    void *address = dlsym(handle, symbol.c_str());
    if (!address) {
      error = path + ": kernel " + kernel + " has no symbol " + symbol;
      return false;
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(address);
    return true;
  };
  for (const auto &[name, spec] : manifest.kernels) {
    KernelEntryPoints e;
    if (!resolve(name, spec.prepareQ, e.prepareQ) ||
        (!spec.prepareK.empty() && !resolve(name, spec.prepareK, e.prepareK)))
      return false;
    bool ok = spec.sinks ? resolve(name, spec.entry, e.attentionWithSinks)
                         : resolve(name, spec.entry, e.attention);
    if (!ok)
      return false;
    if (!spec.decode.empty()) {
      if (spec.derivesKeys)
        ok = spec.sinks ? resolve(name, spec.decode, e.decodeDerivedWithSinks)
                        : resolve(name, spec.decode, e.decodeDerived);
      else
        ok = spec.sinks ? resolve(name, spec.decode, e.decodeWithSinks)
                        : resolve(name, spec.decode, e.decode);
      if (!ok || !resolve(name, spec.decodeCombine, e.combine))
        return false;
    }
    if (!spec.steps.empty() &&
        !(spec.sinks ? resolve(name, spec.steps, e.stepsWithSinks)
                     : resolve(name, spec.steps, e.steps)))
      return false;
    kernels[name] = e;
  }
  return true;
}
