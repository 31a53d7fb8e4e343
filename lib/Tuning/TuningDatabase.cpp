//===- TuningDatabase.cpp - Tile sizes that hybrid-tune measured ----------===//

#include "hybrid/Tuning/TuningDatabase.h"
#include "hybrid/Dialect/Hybrid/IR/HybridOps.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <nlohmann/json.hpp>

#include <cmath>

using namespace hybrid;
using json = nlohmann::ordered_json;

int64_t TuningDatabase::getBucket(int64_t seqLen) {
  int64_t bucket = 256;
  while (bucket < seqLen)
    bucket *= 2;
  return bucket;
}

std::string hybrid::getHostTuningTarget() {
  return ("cpu:" + llvm::sys::getHostCPUName()).str();
}

std::string hybrid::getTuningTarget(llvm::StringRef target) {
  return target == "cpu" ? getHostTuningTarget() : target.str();
}

void TuningDatabase::add(const TuningEntry &entry) {
  for (TuningEntry &e : entries)
    if (e.target == entry.target && e.kernel == entry.kernel &&
        e.seqBucket == entry.seqBucket) {
      e = entry;
      return;
    }
  entries.push_back(entry);
}

const TuningEntry *TuningDatabase::lookup(llvm::StringRef target,
                                          llvm::StringRef kernel,
                                          int64_t seqLen) const {
  double wanted = std::log2(double(getBucket(seqLen)));
  const TuningEntry *best = nullptr;
  double bestDistance = 0;
  for (const TuningEntry &e : entries) {
    if (e.target != target || e.kernel != kernel)
      continue;
    double distance = std::abs(std::log2(double(e.seqBucket)) - wanted);
    if (!best || distance < bestDistance ||
        (distance == bestDistance && e.seqBucket > best->seqBucket)) {
      best = &e;
      bestDistance = distance;
    }
  }
  return best;
}

bool TuningDatabase::load(llvm::StringRef path, std::string &error) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer) {
    error = (path + ": cannot be read: " + buffer.getError().message()).str();
    return false;
  }
  json root = json::parse((*buffer)->getBuffer().begin(),
                          (*buffer)->getBuffer().end(), nullptr,
                          /*allow_exceptions=*/false);
  std::string where = path.str();
  auto bad = [&](const std::string &field, const std::string &what) {
    error = where + ": " + field + ": " + what;
    return false;
  };
  if (root.is_discarded())
    return bad("(file)", "not valid JSON");
  if (!root.is_object() || !root.contains("version") ||
      !root["version"].is_number_integer())
    return bad("version", "missing or not an integer");
  if (root["version"].get<int64_t>() != kVersion)
    return bad("version", "this compiler reads version " +
                              std::to_string(kVersion) + ", not " +
                              root["version"].dump());
  if (!root.contains("entries") || !root["entries"].is_array())
    return bad("entries", "missing or not an array");
  entries.clear();
  for (size_t i = 0; i < root["entries"].size(); ++i) {
    const json &e = root["entries"][i];
    std::string at = "entries[" + std::to_string(i) + "]";
    if (!e.is_object())
      return bad(at, "not an object");
    for (const char *key : {"target", "kernel"})
      if (!e.contains(key) || !e[key].is_string())
        return bad(at + "." + key, "missing or not a string");
    for (const char *key : {"seq_bucket", "q_tile", "k_tile"})
      if (!e.contains(key) || !e[key].is_number_integer() ||
          e[key].get<int64_t>() <= 0)
        return bad(at + "." + key, "missing or not a positive integer");
    for (const char *key : {"q_tile", "k_tile"})
      if (e[key].get<int64_t>() > kMaxTileSize)
        return bad(at + "." + key, "must be at most " +
                                       std::to_string(kMaxTileSize) + ", got " +
                                       e[key].dump());
    TuningEntry entry;
    entry.target = e["target"];
    entry.kernel = e["kernel"];
    entry.seqBucket = e["seq_bucket"];
    entry.qTile = e["q_tile"];
    entry.kTile = e["k_tile"];
    if (e.contains("ms") && e["ms"].is_number())
      entry.ms = e["ms"];
    if (e.contains("default_ms") && e["default_ms"].is_number())
      entry.defaultMs = e["default_ms"];
    if (e.contains("device") && e["device"].is_string())
      entry.device = e["device"];
    bool onGPU = llvm::StringRef(entry.target).starts_with("cuda:");
    if (e.contains("gpu") != onGPU)
      return bad(at + ".gpu", onGPU ? "missing (a cuda: target's entry names "
                                      "its kernel variant)"
                                    : "only for cuda: targets");
    if (onGPU) {
      entry.gpu = GPUKernelVariant::fromJSON(e["gpu"], at + ".gpu", error);
      if (!entry.gpu) {
        error = where + ": " + error;
        return false;
      }
    }
    add(entry);
  }
  return true;
}

bool TuningDatabase::save(llvm::StringRef path, std::string &error) const {
  json out = {{"version", kVersion}, {"entries", json::array()}};
  for (const TuningEntry &e : entries) {
    json entry = {{"target", e.target},        {"kernel", e.kernel},
                  {"seq_bucket", e.seqBucket}, {"q_tile", e.qTile},
                  {"k_tile", e.kTile},         {"ms", e.ms},
                  {"default_ms", e.defaultMs}};
    if (e.gpu)
      entry["gpu"] = e.gpu->toJSON();
    if (!e.device.empty())
      entry["device"] = e.device;
    out["entries"].push_back(std::move(entry));
  }
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec) {
    error = (path + ": cannot be written: " + ec.message()).str();
    return false;
  }
  os << out.dump(2) << "\n";
  return true;
}
