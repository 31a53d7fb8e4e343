//===- ImporterTestUtil.h - Helpers of the importer tests -------*- C++ -*-===//
//
// Where the test inputs live and small wrappers around importModel. Config
// files come from three places:
//   HYBRID_SHARED_CONFIGS  the project's shared real configs (tests skip when
//                          the variable is unset and the default is missing),
//   HYBRID_IMPORT_CONFIGS  test/Import/configs (default: found from __FILE__),
//   HYBRID_EXAMPLES        examples/ (default: found from __FILE__).
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_UNITTESTS_IMPORT_IMPORTERTESTUTIL_H
#define HYBRID_UNITTESTS_IMPORT_IMPORTERTESTUTIL_H

#include "hybrid/Import/Importer.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace hybrid::spec::testing {

/// The repository root, from this file's path (unittests/Import/...).
inline std::string repoRoot() {
  llvm::SmallString<256> path(__FILE__);
  llvm::sys::path::remove_filename(path); // unittests/Import
  llvm::sys::path::remove_filename(path); // unittests
  llvm::sys::path::remove_filename(path); // root
  return std::string(path.empty() ? "." : path.str());
}

inline std::string dirFromEnv(const char *var, const std::string &fallback) {
  if (const char *value = std::getenv(var))
    return value;
  return fallback;
}

inline std::string sharedDir() {
  // The real configs of ../shared/configs, bundled in examples/configs.
  return dirFromEnv("HYBRID_SHARED_CONFIGS", repoRoot() + "/examples/configs");
}
inline std::string testConfigDir() {
  return dirFromEnv("HYBRID_IMPORT_CONFIGS",
                    repoRoot() + "/test/Import/configs");
}
inline std::string examplesDir() {
  return dirFromEnv("HYBRID_EXAMPLES", repoRoot() + "/examples");
}

inline std::optional<std::string> readFile(const std::string &path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return std::nullopt;
  return (*buffer)->getBuffer().str();
}

/// Imports `text`; on failure records the message and returns nullopt.
inline std::optional<ModelSpec> importOk(llvm::StringRef text,
                                         llvm::StringRef file = "config.json") {
  auto spec = importModel(text, file);
  if (!spec) {
    ADD_FAILURE() << "unexpected error: " << llvm::toString(spec.takeError());
    return std::nullopt;
  }
  return std::move(*spec);
}

/// The error message of importing `text`, or "<no error>".
inline std::string importError(llvm::StringRef text,
                               llvm::StringRef file = "config.json") {
  auto spec = importModel(text, file);
  if (spec)
    return "<no error>";
  return llvm::toString(spec.takeError());
}

#define LOAD_FILE(var, dir, name)                                              \
  std::optional<ModelSpec> var;                                                \
  do {                                                                         \
    std::string path = (dir) + "/" + (name);                                   \
    std::optional<std::string> text = readFile(path);                          \
    if (!text)                                                                 \
      GTEST_SKIP() << "missing " << path;                                      \
    var = importOk(*text, name);                                               \
    ASSERT_TRUE(var.has_value());                                              \
  } while (false)

inline std::vector<int64_t> indicesOf(const ModelSpec &spec, LayerKind kind) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < spec.layers.size(); ++i)
    if (spec.layers[i].kind == kind)
      out.push_back(static_cast<int64_t>(i));
  return out;
}

/// A minimal HF config with the given extra fields (a JSON object body).
inline std::string hf(const std::string &modelType, const std::string &extra,
                      int layers = 4) {
  std::string text = "{\"model_type\": \"" + modelType +
                     "\", \"num_hidden_layers\": " + std::to_string(layers) +
                     ", \"hidden_size\": 512, \"num_attention_heads\": 8, "
                     "\"num_key_value_heads\": 2, \"max_position_embeddings\": "
                     "8192";
  if (!extra.empty())
    text += ", " + extra;
  return text + "}";
}

/// A config stating only what every family requires, so the family's own
/// defaults fill in the rest (head dim, KV heads, RoPE, windows).
inline std::string hfBare(const std::string &modelType, int layers = 2,
                          int heads = 8) {
  return "{\"model_type\": \"" + modelType +
         "\", \"num_hidden_layers\": " + std::to_string(layers) +
         ", \"hidden_size\": 512, \"num_attention_heads\": " +
         std::to_string(heads) + "}";
}

/// A spec document around a `layers` list and optional `defaults`.
inline std::string specDoc(const std::string &layers,
                           const std::string &defaults = "",
                           const std::string &extraTop = "") {
  std::string text = "{\"format\": \"hybrid-schedule\", \"version\": 1, "
                     "\"max_position_embeddings\": 4096";
  if (!extraTop.empty())
    text += ", " + extraTop;
  if (!defaults.empty())
    text += ", \"defaults\": " + defaults;
  return text + ", \"layers\": " + layers + "}";
}

inline const std::string kHeads = "\"num_heads\": 8, \"num_kv_heads\": 2, "
                                  "\"head_dim\": 64";

} // namespace hybrid::spec::testing

#endif // HYBRID_UNITTESTS_IMPORT_IMPORTERTESTUTIL_H
