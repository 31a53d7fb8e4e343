//===- JSONUtil.h - Path-aware JSON field access ----------------*- C++ -*-===//
//
// Helpers shared by the Hugging Face and schedule-spec importers:
// exception-free parsing with line:column diagnostics, typed field getters
// whose errors name the file and the JSON field path, and the RoPE-scaling
// reader both formats use. The build has no exceptions, so nothing here may
// call a throwing nlohmann accessor: every value is type-checked before it is
// read.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_LIB_IMPORT_JSONUTIL_H
#define HYBRID_LIB_IMPORT_JSONUTIL_H

#include "hybrid/Import/ModelSpec.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

/// Unwraps an llvm::Expected into `decl`, or returns its error from the caller.
#define HYBRID_ASSIGN_OR_RETURN(decl, expr)                                    \
  HYBRID_ASSIGN_OR_RETURN_IMPL(HYBRID_CONCAT(hybridOrErr, __LINE__), decl, expr)
#define HYBRID_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr)                          \
  auto tmp = (expr);                                                           \
  if (!tmp)                                                                    \
    return tmp.takeError();                                                    \
  decl = std::move(*tmp)
#define HYBRID_CONCAT(a, b) HYBRID_CONCAT_IMPL(a, b)
#define HYBRID_CONCAT_IMPL(a, b) a##b

/// Returns the llvm::Error of `expr` from the caller when it is set.
#define HYBRID_RETURN_IF_ERROR(expr)                                           \
  do {                                                                         \
    if (llvm::Error hybridErr = (expr))                                        \
      return llvm::Error(std::move(hybridErr));                                \
  } while (false)

namespace hybrid::spec::detail {

using json = nlohmann::json;

/// Bounds that keep hostile input from exhausting memory or the stack.
inline constexpr int64_t kMaxLayers = 1 << 16;
inline constexpr int kMaxNesting = 32;
/// Largest head count or head dim we accept; real models stay far below.
inline constexpr int64_t kMaxDim = 1 << 16;

llvm::Error makeError(const llvm::Twine &message);

/// A short description of a JSON value for "got ..." messages. Containers are
/// named, never dumped, so a hostile nesting depth cannot recurse here.
std::string describe(const json &value);

/// `parent.key`, or `key` at the top level.
std::string joinPath(llvm::StringRef parent, llvm::StringRef key);
/// `parent[index]`.
std::string indexPath(llvm::StringRef parent, size_t index);

/// "<file>: field '<path>': <message>".
llvm::Error fieldError(llvm::StringRef file, llvm::StringRef path,
                       const llvm::Twine &message);

/// Parses JSON text without exceptions. A syntax error becomes
/// "<file>:<line>:<col>: malformed JSON: <what the parser says>".
llvm::Expected<json> parseJSON(llvm::StringRef text, llvm::StringRef file);

/// Product of non-negative factors, or nullopt when it overflows int64.
std::optional<int64_t> checkedProduct(std::initializer_list<int64_t> factors);

// Conversions of one JSON value; `path` names it in errors.
llvm::Expected<int64_t> toInt(const json &value, llvm::StringRef file,
                              llvm::StringRef path);
llvm::Expected<double> toNumber(const json &value, llvm::StringRef file,
                                llvm::StringRef path);
llvm::Expected<std::string> toString(const json &value, llvm::StringRef file,
                                     llvm::StringRef path);

/// A JSON object together with where it sits, so that every getter can name
/// the field path in its error. Getters named opt* give std::nullopt when the
/// field is absent or null; get* report a missing field.
class ObjectView {
public:
  ObjectView(const json &object, llvm::StringRef file, std::string path)
      : object(&object), fileName(file.str()), objectPath(std::move(path)) {}

  const json &raw() const { return *object; }
  llvm::StringRef file() const { return fileName; }
  llvm::StringRef path() const { return objectPath; }
  std::string fieldPath(llvm::StringRef key) const {
    return joinPath(objectPath, key);
  }

  /// The value of `key` (JSON null included), or nullptr when absent.
  const json *find(llvm::StringRef key) const;
  /// Present and not null.
  bool has(llvm::StringRef key) const;

  llvm::Error error(llvm::StringRef key, const llvm::Twine &message) const {
    return fieldError(fileName, fieldPath(key), message);
  }
  llvm::Error missing(llvm::StringRef key) const {
    return error(key, "missing required field");
  }

  llvm::Expected<std::optional<int64_t>> optInt(llvm::StringRef key) const;
  llvm::Expected<std::optional<int64_t>>
  optPositiveInt(llvm::StringRef key) const;
  llvm::Expected<std::optional<int64_t>>
  optNonNegativeInt(llvm::StringRef key) const;
  llvm::Expected<int64_t> getPositiveInt(llvm::StringRef key) const;
  /// The positive integer at `key`, or `fallback` when absent or null.
  llvm::Expected<int64_t> positiveIntOr(llvm::StringRef key,
                                        int64_t fallback) const;
  llvm::Expected<std::optional<double>> optNumber(llvm::StringRef key) const;
  llvm::Expected<std::optional<double>>
  optPositiveNumber(llvm::StringRef key) const;
  /// The positive number at `key`, or `fallback` when absent or null.
  llvm::Expected<double> positiveNumberOr(llvm::StringRef key,
                                          double fallback) const;
  llvm::Expected<std::optional<bool>> optBool(llvm::StringRef key) const;
  llvm::Expected<std::optional<std::string>>
  optString(llvm::StringRef key) const;
  llvm::Expected<std::string> getString(llvm::StringRef key) const;
  llvm::Expected<std::optional<ObjectView>>
  optObject(llvm::StringRef key) const;
  /// The array at `key`, or nullptr when absent or null.
  llvm::Expected<const json *> optArray(llvm::StringRef key) const;

  /// Rejects keys outside `known`: typos in the project's own format must not
  /// pass silently.
  llvm::Error checkKnownKeys(llvm::ArrayRef<llvm::StringRef> known) const;

private:
  const json *object;
  std::string fileName;
  std::string objectPath;
};

/// YaRN's attention temperature `0.1 * mscale * ln(scale) + 1` (1 for
/// scale <= 1; transformers' get_mscale).
double yarnMscale(double scale, double mscale);

/// Reads the parameters of a linear, llama3 or yarn RoPE scaling from `params`
/// (transformers' field names). `maxPositionEmbeddings` (0 when unknown) is
/// yarn's fallback for `original_max_position_embeddings`, as in transformers.
llvm::Expected<RopeScaling> readRopeScaling(const ObjectView &params,
                                            RopeScalingKind kind,
                                            int64_t maxPositionEmbeddings);

/// Checks a partial rotary width against the head dim: even, positive and
/// below the head dim. `path` names the field that set it.
llvm::Error checkRotaryDim(llvm::StringRef file, llvm::StringRef path,
                           int64_t rotaryDim, int64_t headDim);

} // namespace hybrid::spec::detail

#endif // HYBRID_LIB_IMPORT_JSONUTIL_H
