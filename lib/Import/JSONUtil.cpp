//===- JSONUtil.cpp - Path-aware JSON field access ------------------------===//
//
// See JSONUtil.h. Messages follow the project rule: lowercase, no trailing
// period, one message naming the file and the field path.
//
//===----------------------------------------------------------------------===//

#include "JSONUtil.h"

#include "llvm/ADT/STLExtras.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

using namespace hybrid::spec;
using namespace hybrid::spec::detail;

llvm::Error detail::makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

llvm::Error detail::fieldError(llvm::StringRef file, llvm::StringRef path,
                               const llvm::Twine &message) {
  return makeError(file + ": field '" + path + "': " + message);
}

std::string detail::joinPath(llvm::StringRef parent, llvm::StringRef key) {
  if (parent.empty())
    return key.str();
  return (parent + "." + key).str();
}

std::string detail::indexPath(llvm::StringRef parent, size_t index) {
  return (parent + "[" + llvm::Twine(index) + "]").str();
}

/// Quotes a string for a message: printable ASCII kept, the rest escaped, and
/// long strings cut so that a hostile input cannot flood the terminal.
static std::string quote(llvm::StringRef text) {
  constexpr size_t kMaxShown = 40;
  std::string out = "'";
  for (char c : text.take_front(kMaxShown)) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\'' && c != '\\') {
      out += c;
      continue;
    }
    char buffer[8];
    std::snprintf(buffer, sizeof(buffer), "\\x%02x", byte);
    out += buffer;
  }
  if (text.size() > kMaxShown)
    out += "...";
  return out + "'";
}

std::string detail::describe(const json &value) {
  switch (value.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return value.get<bool>() ? "true" : "false";
  case json::value_t::number_integer:
    return std::to_string(value.get<int64_t>());
  case json::value_t::number_unsigned:
    return std::to_string(value.get<uint64_t>());
  case json::value_t::number_float: {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.10g", value.get<double>());
    return buffer;
  }
  case json::value_t::string:
    return quote(value.get_ref<const std::string &>());
  case json::value_t::array:
    return "an array";
  case json::value_t::object:
    return "an object";
  default:
    return "an unsupported value";
  }
}

namespace {
/// Records where nlohmann's SAX parser stopped; every other event is accepted.
class SyntaxErrorRecorder {
public:
  size_t position = 0;
  std::string message;

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const std::string &) { return true; }
  bool string(std::string &) { return true; }
  bool binary(json::binary_t &) { return true; }
  bool start_object(std::size_t) { return true; }
  bool key(std::string &) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t pos, const std::string &,
                   const nlohmann::detail::exception &ex) {
    position = pos;
    message = ex.what();
    return false;
  }
};
} // namespace

/// Keeps what nlohmann says after its "[json.exception...] parse error at
/// line L, column C: " prefix (we print our own position) and drops the
/// "last read" echo of the input, which can hold arbitrary bytes.
static std::string shortenParserMessage(llvm::StringRef what) {
  size_t start = what.find("syntax error");
  llvm::StringRef text =
      start == llvm::StringRef::npos ? what : what.substr(start);
  size_t lastRead = text.find("; last read:");
  if (lastRead == llvm::StringRef::npos)
    return text.str();
  std::string out = text.take_front(lastRead).str();
  size_t expected = text.rfind("; expected ");
  if (expected != llvm::StringRef::npos && expected > lastRead)
    out += text.substr(expected).str();
  return out;
}

llvm::Expected<json> detail::parseJSON(llvm::StringRef text,
                                       llvm::StringRef file) {
  json result = json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                            /*allow_exceptions=*/false);
  if (!result.is_discarded())
    return result;

  // Parse again through SAX only to learn where and why it failed.
  SyntaxErrorRecorder recorder;
  json::sax_parse(text.begin(), text.end(), &recorder);
  // The parser reports how many bytes it consumed, the bad one included.
  size_t offset = recorder.position > 0 ? recorder.position - 1 : 0;
  offset = std::min(offset, text.size());
  llvm::StringRef before = text.take_front(offset);
  size_t line = 1 + before.count('\n');
  size_t lineStart = before.rfind('\n');
  size_t column =
      lineStart == llvm::StringRef::npos ? offset + 1 : offset - lineStart;
  std::string reason = recorder.message.empty()
                           ? std::string("invalid document")
                           : shortenParserMessage(recorder.message);
  return makeError(file + ":" + llvm::Twine(line) + ":" + llvm::Twine(column) +
                   ": malformed JSON: " + reason);
}

std::optional<int64_t>
detail::checkedProduct(std::initializer_list<int64_t> factors) {
  int64_t product = 1;
  for (int64_t factor : factors) {
    if (factor < 0 || __builtin_mul_overflow(product, factor, &product))
      return std::nullopt;
  }
  return product;
}

llvm::Expected<int64_t> detail::toInt(const json &value, llvm::StringRef file,
                                      llvm::StringRef path) {
  if (value.is_number_unsigned()) {
    auto u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return fieldError(file, path, "is out of range, got " + describe(value));
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer())
    return value.get<int64_t>();
  if (value.is_number_float()) {
    // Python writes some integers as 4096.0; accept them when exact.
    double d = value.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
      return static_cast<int64_t>(d);
  }
  return fieldError(file, path, "must be an integer, got " + describe(value));
}

llvm::Expected<double> detail::toNumber(const json &value, llvm::StringRef file,
                                        llvm::StringRef path) {
  if (value.is_number()) {
    double d = value.get<double>();
    if (std::isfinite(d))
      return d;
  }
  return fieldError(file, path, "must be a number, got " + describe(value));
}

llvm::Expected<std::string> detail::toString(const json &value,
                                             llvm::StringRef file,
                                             llvm::StringRef path) {
  if (value.is_string())
    return value.get<std::string>();
  return fieldError(file, path, "must be a string, got " + describe(value));
}

const json *ObjectView::find(llvm::StringRef key) const {
  if (!object->is_object())
    return nullptr;
  auto it = object->find(key.str());
  return it == object->end() ? nullptr : &*it;
}

bool ObjectView::has(llvm::StringRef key) const {
  const json *value = find(key);
  return value && !value->is_null();
}

llvm::Expected<std::optional<int64_t>>
ObjectView::optInt(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  HYBRID_ASSIGN_OR_RETURN(int64_t v,
                          toInt(*find(key), fileName, fieldPath(key)));
  return v;
}

llvm::Expected<std::optional<int64_t>>
ObjectView::optPositiveInt(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  const json &value = *find(key);
  auto v = toInt(value, fileName, fieldPath(key));
  if (!v || *v <= 0) {
    llvm::consumeError(v.takeError());
    return error(key, "must be a positive integer, got " + describe(value));
  }
  return *v;
}

llvm::Expected<std::optional<int64_t>>
ObjectView::optNonNegativeInt(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  const json &value = *find(key);
  auto v = toInt(value, fileName, fieldPath(key));
  if (!v || *v < 0) {
    llvm::consumeError(v.takeError());
    return error(key, "must be a non-negative integer, got " + describe(value));
  }
  return *v;
}

llvm::Expected<int64_t> ObjectView::getPositiveInt(llvm::StringRef key) const {
  if (!find(key))
    return missing(key);
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> v, optPositiveInt(key));
  if (!v) // Present but null.
    return error(key, "must be a positive integer, got null");
  return *v;
}

llvm::Expected<int64_t> ObjectView::positiveIntOr(llvm::StringRef key,
                                                  int64_t fallback) const {
  HYBRID_ASSIGN_OR_RETURN(std::optional<int64_t> v, optPositiveInt(key));
  return v.value_or(fallback);
}

llvm::Expected<std::optional<double>>
ObjectView::optNumber(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  HYBRID_ASSIGN_OR_RETURN(double v,
                          toNumber(*find(key), fileName, fieldPath(key)));
  return v;
}

llvm::Expected<std::optional<double>>
ObjectView::optPositiveNumber(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  const json &value = *find(key);
  auto v = toNumber(value, fileName, fieldPath(key));
  if (!v || *v <= 0) {
    llvm::consumeError(v.takeError());
    return error(key, "must be a positive number, got " + describe(value));
  }
  return *v;
}

llvm::Expected<double> ObjectView::positiveNumberOr(llvm::StringRef key,
                                                    double fallback) const {
  HYBRID_ASSIGN_OR_RETURN(std::optional<double> v, optPositiveNumber(key));
  return v.value_or(fallback);
}

llvm::Expected<std::optional<bool>>
ObjectView::optBool(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  const json &value = *find(key);
  if (!value.is_boolean())
    return error(key, "must be true or false, got " + describe(value));
  return value.get<bool>();
}

llvm::Expected<std::optional<std::string>>
ObjectView::optString(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  HYBRID_ASSIGN_OR_RETURN(std::string v,
                          toString(*find(key), fileName, fieldPath(key)));
  return v;
}

llvm::Expected<std::string> ObjectView::getString(llvm::StringRef key) const {
  if (!find(key))
    return missing(key);
  return toString(*find(key), fileName, fieldPath(key));
}

llvm::Expected<std::optional<ObjectView>>
ObjectView::optObject(llvm::StringRef key) const {
  if (!has(key))
    return std::nullopt;
  const json &value = *find(key);
  if (!value.is_object())
    return error(key, "must be an object, got " + describe(value));
  return ObjectView(value, fileName, fieldPath(key));
}

llvm::Expected<const json *> ObjectView::optArray(llvm::StringRef key) const {
  if (!has(key))
    return nullptr;
  const json &value = *find(key);
  if (!value.is_array())
    return error(key, "must be an array, got " + describe(value));
  return &value;
}

llvm::Error
ObjectView::checkKnownKeys(llvm::ArrayRef<llvm::StringRef> known) const {
  if (!object->is_object())
    return llvm::Error::success();
  for (const auto &item : object->items()) {
    if (!llvm::is_contained(known, llvm::StringRef(item.key())))
      return error(item.key(), "unknown field");
  }
  return llvm::Error::success();
}

double detail::yarnMscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

llvm::Expected<RopeScaling>
detail::readRopeScaling(const ObjectView &params, RopeScalingKind kind,
                        int64_t maxPositionEmbeddings) {
  RopeScaling scaling;
  scaling.kind = kind;
  HYBRID_ASSIGN_OR_RETURN(std::optional<double> factor,
                          params.optPositiveNumber("factor"));
  if (!factor)
    return params.missing("factor");
  scaling.factor = *factor;

  if (kind == RopeScalingKind::Llama3) {
    HYBRID_ASSIGN_OR_RETURN(scaling.lowFreqFactor,
                            params.optPositiveNumber("low_freq_factor"));
    if (!scaling.lowFreqFactor)
      return params.missing("low_freq_factor");
    HYBRID_ASSIGN_OR_RETURN(scaling.highFreqFactor,
                            params.optPositiveNumber("high_freq_factor"));
    if (!scaling.highFreqFactor)
      return params.missing("high_freq_factor");
    HYBRID_ASSIGN_OR_RETURN(
        scaling.originalMaxPosition,
        params.optPositiveInt("original_max_position_embeddings"));
    if (!scaling.originalMaxPosition)
      return params.missing("original_max_position_embeddings");
  }

  if (kind == RopeScalingKind::Yarn) {
    HYBRID_ASSIGN_OR_RETURN(
        scaling.originalMaxPosition,
        params.optPositiveInt("original_max_position_embeddings"));
    if (!scaling.originalMaxPosition && maxPositionEmbeddings > 0)
      scaling.originalMaxPosition = maxPositionEmbeddings;
    if (!scaling.originalMaxPosition)
      return params.missing("original_max_position_embeddings");
    HYBRID_ASSIGN_OR_RETURN(std::optional<double> betaFast,
                            params.optPositiveNumber("beta_fast"));
    HYBRID_ASSIGN_OR_RETURN(std::optional<double> betaSlow,
                            params.optPositiveNumber("beta_slow"));
    scaling.betaFast = betaFast.value_or(32.0);
    scaling.betaSlow = betaSlow.value_or(1.0);
    HYBRID_ASSIGN_OR_RETURN(scaling.attentionFactor,
                            params.optPositiveNumber("attention_factor"));
    // DeepSeek-style configs state the temperature through mscale pairs.
    HYBRID_ASSIGN_OR_RETURN(std::optional<double> mscale,
                            params.optNumber("mscale"));
    HYBRID_ASSIGN_OR_RETURN(std::optional<double> mscaleAllDim,
                            params.optNumber("mscale_all_dim"));
    if (!scaling.attentionFactor && mscale && mscaleAllDim && *mscale != 0 &&
        *mscaleAllDim != 0)
      scaling.attentionFactor = yarnMscale(scaling.factor, *mscale) /
                                yarnMscale(scaling.factor, *mscaleAllDim);
    HYBRID_ASSIGN_OR_RETURN(std::optional<bool> truncate,
                            params.optBool("truncate"));
    scaling.truncate = truncate.value_or(true);
  }
  return scaling;
}

llvm::Error detail::checkRotaryDim(llvm::StringRef file, llvm::StringRef path,
                                   int64_t rotaryDim, int64_t headDim) {
  if (rotaryDim <= 0 || rotaryDim % 2 != 0 || rotaryDim >= headDim)
    return fieldError(file, path,
                      "gives " + llvm::Twine(rotaryDim) +
                          " rotary dims; partial rotation needs an even "
                          "count between 2 and head_dim (" +
                          llvm::Twine(headDim) + ") - 2");
  return llvm::Error::success();
}
