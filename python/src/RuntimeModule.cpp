//===- RuntimeModule.cpp - hybrid_attn._runtime: the runtime in Python ----===//
//
// Binds the MLIR-free runtime's C++ wrapper: models and sessions taking
// C-contiguous [B, S, H, D] arrays from NumPy or any DLPack producer
// (PyTorch) without copies, float32 or (GPU schedules) bfloat16, writing
// outputs into arrays the caller provides. Failures raise RuntimeError with
// the runtime's message (OutOfMemoryError, a MemoryError, where memory ran
// out); an operand of another dtype raises TypeError.
//
//===----------------------------------------------------------------------===//

#include "hybrid-rt/Runtime.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace nb = nanobind;
using namespace hybrid;

namespace {
// Host arrays, or CUDA device arrays (torch, CuPy) for GPU schedules: the
// runtime reads and writes those in place, in their dtype (view()). Outputs
// are never converted (a copy would take the results).
using Input = nb::ndarray<nb::ro, nb::c_contig>;
using Output = nb::ndarray<nb::c_contig>;

/// The runtime's OUT_OF_MEMORY: caches or scratch that host or device
/// memory cannot hold (a caller may retry smaller).
struct OutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(const rt::Status &status) {
  if (status.code == HYBRID_RT_OUT_OF_MEMORY)
    throw OutOfMemory(status.message);
  if (!status)
    throw std::runtime_error(status.message);
}

/// The runtime's dtype of `a`'s elements: float32, bfloat16 or float16 (the
/// runtime says which it takes where); others are a TypeError naming `name`.
template <typename Array>
hybrid_rt_dtype getDtype(const Array &a, const char *name) {
  nb::dlpack::dtype dtype = a.dtype();
  if (dtype == nb::dtype<float>())
    return HYBRID_RT_F32;
  if (dtype.code == uint8_t(nb::dlpack::dtype_code::Bfloat) &&
      dtype.bits == 16 && dtype.lanes == 1)
    return HYBRID_RT_BF16;
  if (dtype.code == uint8_t(nb::dlpack::dtype_code::Float) &&
      dtype.bits == 16 && dtype.lanes == 1)
    return HYBRID_RT_F16;
  throw nb::type_error(
      (std::string(name) +
       ": elements must be float32, bfloat16 or float16 (code " +
       std::to_string(dtype.code) + ", " + std::to_string(dtype.bits) +
       " bits)")
          .c_str());
}

/// A runtime view of `a` (no copy); rank 1 or 4 as the array has.
template <typename Array>
hybrid_rt_tensor view(const Array &a, const char *name) {
  if (a.device_type() != nb::device::cpu::value &&
      a.device_type() != nb::device::cuda::value)
    throw std::invalid_argument(std::string(name) +
                                ": arrays must be in host or CUDA memory");
  hybrid_rt_tensor t{const_cast<void *>(static_cast<const void *>(a.data())),
                     getDtype(a, name),
                     int32_t(a.ndim()),
                     {0, 0, 0, 0},
                     a.device_type() == nb::device::cuda::value
                         ? HYBRID_RT_DEVICE
                         : HYBRID_RT_HOST};
  for (size_t i = 0; i < a.ndim() && i < 4; ++i)
    t.shape[i] = a.shape(i);
  return t;
}

struct Model {
  explicit Model(rt::Model opened) : model(std::move(opened)) {}
  rt::Model model;
  // A call and the stream it runs on (the caller's, or none: the model's
  // own) are set together: another thread's call comes before or after.
  std::mutex calls;
  std::optional<uintptr_t> stream;
};

struct Session {
  // Declared first, so destroyed last: the session's destruction frees its
  // GPU caches through the model (the last reference to the model may be
  // this one).
  nb::object owner; // keeps the Model alive
  rt::Session session;
};

/// A runtime view of an optional array; null for None.
template <typename Array>
std::optional<hybrid_rt_tensor> viewIf(const std::optional<Array> &a,
                                       const char *name) {
  if (!a)
    return std::nullopt;
  return view(*a, name);
}

hybrid_rt_tensor *getIf(std::optional<hybrid_rt_tensor> &t) {
  return t ? &*t : nullptr;
}

/// Runs `call` on session `s` without the GIL, its work queued on `stream`
/// (a CUstream; none: the model's own).
template <typename Call>
void callOn(Session &s, std::optional<uintptr_t> stream, Call call) {
  Model &model = nb::cast<Model &>(s.owner);
  rt::Status status;
  {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> turn(model.calls);
    if (stream != model.stream) {
      status = stream ? model.model.setStream(reinterpret_cast<void *>(*stream))
                      : model.model.resetStream();
      if (status)
        model.stream = stream;
    }
    if (status)
      status = call();
  }
  check(status);
}

void run(Session &s, int64_t layer, bool decode, const Input &q,
         const std::optional<Input> &k, const std::optional<Input> &v,
         const std::optional<Input> &sinks, Output &out,
         std::optional<uintptr_t> stream) {
  hybrid_rt_tensor tq = view(q, "q"), to = view(out, "out");
  std::optional<hybrid_rt_tensor> tk = viewIf(k, "k"), tv = viewIf(v, "v"),
                                  ts = viewIf(sinks, "sinks");
  callOn(s, stream, [&]() -> rt::Status {
    if (decode)
      return s.session.decode(layer, tq, getIf(tk), getIf(tv), getIf(ts), to);
    // k is required (the binding's); v may be None where the runtime
    // takes null (K=V layers).
    return rt::Status::fromCode(hybrid_rt_session_prefill(
        s.session.get(), layer, &tq, &*tk, getIf(tv), getIf(ts), &to));
  });
}
} // namespace

NB_MODULE(_runtime, m) {
  m.doc() = "The hybrid attention runtime (no MLIR): models and sessions.";
  nb::exception<OutOfMemory>(m, "OutOfMemoryError", PyExc_MemoryError);

  nb::class_<Model>(m, "Model")
      .def(
          "__init__",
          [](Model *self, const std::string &dir, int threads) {
            // Opened before `self` is constructed: nanobind runs no
            // destructor for an __init__ that throws.
            rt::Model model;
            check(model.open(dir, threads));
            new (self) Model(std::move(model));
          },
          nb::arg("artifacts_dir"), nb::arg("threads") = 0,
          "Opens the artifacts hybrid-compile wrote into `artifacts_dir`.")
      .def(
          "set_key_scale",
          [](Model &m, int64_t layer, const std::optional<Input> &scale) {
            std::optional<hybrid_rt_tensor> t;
            if (scale)
              t = view(*scale, "scale");
            rt::Status status;
            {
              nb::gil_scoped_release release;
              std::lock_guard<std::mutex> turn(m.calls);
              status = m.model.setKeyScale(layer, t ? &*t : nullptr);
            }
            check(status);
          },
          nb::arg("layer"), nb::arg("scale").none(),
          "K=V layer `layer`'s key scale [head_dim] (None: ones).")
      .def_prop_ro("num_layers",
                   [](const Model &m) { return m.model.numLayers(); })
      .def_prop_ro("num_threads",
                   [](const Model &m) { return m.model.numThreads(); });

  nb::class_<Session>(m, "Session")
      .def(
          "__init__",
          [](Session *self, nb::handle model, int64_t batch, int64_t maxSeq,
             int64_t maxStepTokens) {
            // Created before `self` is constructed, as the Model is: a
            // failed create would leak the reference to `model`.
            rt::Session session;
            check(session.create(nb::cast<Model &>(model).model, batch, maxSeq,
                                 maxStepTokens));
            new (self) Session{nb::borrow(model), std::move(session)};
          },
          nb::arg("model"), nb::arg("batch"), nb::arg("max_seq"),
          nb::arg("max_step_tokens") = 1)
      .def(
          "prefill",
          [](Session &s, int64_t layer, const Input &q, const Input &k,
             const std::optional<Input> &v, const std::optional<Input> &sinks,
             Output out, std::optional<uintptr_t> stream) {
            run(s, layer, /*decode=*/false, q, k, v, sinks, out, stream);
          },
          nb::arg("layer"), nb::arg("q"), nb::arg("k"), nb::arg("v").none(),
          nb::arg("sinks").none(), nb::arg("out").noconvert(),
          nb::arg("stream").none() = nb::none(),
          "`stream`: a CUstream (an integer, 0 the legacy default stream) "
          "to queue the call's work on, returning before it runs when every "
          "array is on the device; None: the model's own, waiting for it.")
      .def(
          "decode",
          [](Session &s, int64_t layer, const Input &q,
             const std::optional<Input> &k, const std::optional<Input> &v,
             const std::optional<Input> &sinks, Output out,
             std::optional<uintptr_t> stream) {
            run(s, layer, /*decode=*/true, q, k, v, sinks, out, stream);
          },
          nb::arg("layer"), nb::arg("q"), nb::arg("k").none(),
          nb::arg("v").none(), nb::arg("sinks").none(),
          nb::arg("out").noconvert(), nb::arg("stream").none() = nb::none(),
          "`stream`: as prefill's.")
      .def(
          "append",
          [](Session &s, int64_t layer, const Input &k,
             const std::optional<Input> &v, std::optional<uintptr_t> stream) {
            hybrid_rt_tensor tk = view(k, "k");
            std::optional<hybrid_rt_tensor> tv = viewIf(v, "v");
            callOn(s, stream, [&] {
              return rt::Status::fromCode(hybrid_rt_session_append(
                  s.session.get(), layer, &tk, getIf(tv)));
            });
          },
          nb::arg("layer"), nb::arg("k"), nb::arg("v").none(),
          nb::arg("stream").none() = nb::none())
      .def(
          "read_cache",
          [](Session &s, int64_t layer, int64_t first, std::optional<Output> k,
             std::optional<Output> v, std::optional<uintptr_t> stream) {
            std::optional<hybrid_rt_tensor> tk = viewIf(k, "k");
            std::optional<hybrid_rt_tensor> tv = viewIf(v, "v");
            callOn(s, stream, [&] {
              return s.session.readCache(layer, first, getIf(tk), getIf(tv));
            });
          },
          nb::arg("layer"), nb::arg("first"), nb::arg("k").none(),
          nb::arg("v").noconvert().none(),
          nb::arg("stream").none() = nb::none())
      .def(
          "write_cache",
          [](Session &s, int64_t layer, int64_t first,
             const std::optional<Input> &k, const std::optional<Input> &v,
             std::optional<uintptr_t> stream) {
            std::optional<hybrid_rt_tensor> tk = viewIf(k, "k");
            std::optional<hybrid_rt_tensor> tv = viewIf(v, "v");
            callOn(s, stream, [&] {
              return s.session.writeCache(layer, first, getIf(tk), getIf(tv));
            });
          },
          nb::arg("layer"), nb::arg("first"), nb::arg("k").none(),
          nb::arg("v").none(), nb::arg("stream").none() = nb::none())
      .def("reset", [](Session &s) { s.session.reset(); })
      .def(
          "select",
          [](Session &s, const std::vector<int64_t> &sequences,
             std::optional<uintptr_t> stream) {
            callOn(s, stream, [&] { return s.session.select(sequences); });
          },
          nb::arg("sequences"), nb::arg("stream").none() = nb::none(),
          "`stream`: as prefill's (GPU models copy the selection to the "
          "device there).")
      .def("reorder",
           [](Session &s, const std::vector<int64_t> &order) {
             check(s.session.reorder(order));
           })
      .def(
          "truncate",
          [](Session &s, int64_t length) { check(s.session.truncate(length)); })
      .def("cache_bytes",
           [](const Session &s) { return s.session.cacheBytes(); })
      .def("cache_info",
           [](const Session &s, int64_t layer) {
             hybrid_rt_cache_info info;
             check(s.session.cacheInfo(layer, info));
             nb::dict d;
             d["policy"] = std::string(info.policy);
             d["rows"] = info.rows;
             d["bytes"] = info.bytes;
             d["length"] = info.length;
             d["source_layer"] = info.source_layer;
             d["k_eq_v"] = bool(info.k_eq_v);
             d["latent"] = bool(info.latent);
             d["mirror_rows"] = info.mirror_rows;
             d["first_held"] = info.first_held;
             d["dtype"] = std::string(info.dtype);
             return d;
           })
      .def("set_cache_scales",
           [](Session &s, int64_t layer, float kScale, float vScale) {
             check(s.session.setCacheScales(layer, kScale, vScale));
           })
      .def("cache_scales_from_prompt",
           [](Session &s, int64_t layer, float kTarget, float vTarget) {
             check(s.session.setCacheScalesFromPrompt(layer, kTarget, vTarget));
           })
      .def("cache_scales", [](const Session &s, int64_t layer) {
        float kScale = 1, vScale = 1;
        check(s.session.cacheScales(layer, kScale, vScale));
        return nb::make_tuple(kScale, vScale);
      });
}
