//===- hybrid-rt-check.cpp - Check and time compiled kernels, no MLIR ----===//
//
// hybrid-rt-check DIR [--batch B] [--seq S[,S...]] [--tolerance T]
//                     [--repeat N] [--no-check] [--decode-steps N
//                     [--step-tokens T] [--graph]] [--json] [--bf16]
//                     [--probe]
//
// Runs every distinct attention kernel of the artifacts in DIR (CPU or GPU)
// on seeded random inputs through the C ABI, compares each output with the
// float64 reference (normwise: max|out - ref| / max|ref|; GPU queries are
// drawn so that bf16 scores stay moderate, see queryRange) and, with
// --repeat, reports the median time and useful TFLOP/s (visible query-key
// pairs only; device time on GPUs). With --decode-steps, every layer instead
// runs in a session: the prompt, then N steps of T tokens through its KV
// cache (each cache policy, shared layers after their source), all positions
// checked; with --graph (GPU artifacts) the steps are one decode step of
// every layer captured in a CUDA graph and replayed, checked the same way
// (GraphReplay.h; with --bf16, of bf16 device tensors). --json prints one
// JSON object per line instead; --dump DIR keeps the operands, output and
// reference of failed prefill checks as .npy; --bf16 (GPU artifacts) passes
// every operand and the output as bf16 tensors, against the reference on the
// bf16-rounded inputs. --probe checks which keys each row attends to, exactly
// (see drawInputs). K=V layers get a key scale drawn in [0.5, 1.5)
// (setKeyScales), which the reference applies to their keys. Built with the
// runtime alone, so it runs on GPU machines that have no MLIR. Exit status 1
// if any check fails.
//
//===----------------------------------------------------------------------===//

#include "hybrid-rt/Manifest.h"
#include "hybrid-rt/Reference.h"
#include "hybrid-rt/Runtime.h"
#ifdef HYBRID_RT_CUDA
#include "GraphReplay.h"
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace hybrid::rt;
using json = nlohmann::ordered_json;

namespace {

struct Options {
  std::string dir;
  int64_t batch = 1;
  std::vector<int64_t> seqs = {1, 7, 64, 203, 1000};
  double tolerance = -1; // per target unless given
  int repeat = 0;
  bool check = true;
  int64_t decodeSteps = 0, stepTokens = 1;
  bool jsonLines = false;
  bool bf16 = false;  // bf16 operands and outputs at the C ABI
  bool probe = false; // zero queries, 0/1 keys and values (drawInputs)
  bool graph = false; // decode steps replayed from a CUDA graph
  std::string dump;   // directory for the .npy of failed checks
};

[[noreturn]] void usage(const std::string &error) {
  std::fprintf(stderr,
               "hybrid-rt-check: %s\nusage: hybrid-rt-check DIR [--batch B] "
               "[--seq S[,S...]] [--tolerance T] [--repeat N] [--no-check] "
               "[--decode-steps N [--step-tokens T] [--graph]] [--json] "
               "[--dump DIR] [--bf16] [--probe]\n",
               error.c_str());
  std::exit(2);
}

int64_t parsePositive(const std::string &flag, const std::string &text) {
  char *end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || value <= 0)
    usage(flag + ": expected a positive integer, got '" + text + "'");
  return value;
}

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--batch") {
      o.batch = parsePositive(arg, value());
    } else if (arg == "--seq") {
      o.seqs.clear();
      std::stringstream list(value());
      for (std::string item; std::getline(list, item, ',');)
        o.seqs.push_back(parsePositive(arg, item));
    } else if (arg == "--tolerance") {
      std::string text = value();
      char *end = nullptr;
      o.tolerance = std::strtod(text.c_str(), &end);
      if (text.empty() || *end || !(o.tolerance > 0))
        usage("--tolerance: expected a positive number, got '" + text + "'");
    } else if (arg == "--repeat") {
      o.repeat = int(parsePositive(arg, value()));
    } else if (arg == "--decode-steps") {
      o.decodeSteps = parsePositive(arg, value());
    } else if (arg == "--step-tokens") {
      o.stepTokens = parsePositive(arg, value());
    } else if (arg == "--dump") {
      o.dump = value();
    } else if (arg == "--json") {
      o.jsonLines = true;
    } else if (arg == "--bf16") {
      o.bf16 = true;
    } else if (arg == "--probe") {
      o.probe = true;
    } else if (arg == "--graph") {
      o.graph = true;
    } else if (arg == "--no-check") {
      o.check = false;
    } else if (!arg.empty() && arg[0] == '-') {
      usage("unknown option " + arg);
    } else if (o.dir.empty()) {
      o.dir = arg;
    } else {
      usage("more than one DIR");
    }
  }
  if (o.dir.empty())
    usage("missing DIR");
  if (o.graph && o.decodeSteps == 0)
    usage("--graph replays decode steps: it needs --decode-steps");
  return o;
}

/// A seeded stream of uniform floats: splitmix64, about ten times faster
/// than std::mt19937 with a distribution, which matters for the GPU
/// benchmark's inputs (billions of values at 128K tokens).
struct Random {
  uint64_t state;
  explicit Random(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

/// Uniform in [-limit, limit).
std::vector<float> random(Random &rng, size_t count, float limit = 1) {
  std::vector<float> data(count);
  for (float &x : data)
    x = limit * (float(rng.next() >> 40) * 0x1p-23f - 1.f);
  return data;
}

/// bf16 tensors at the C ABI (--bf16): the f32 values are rounded to bf16
/// in place (to nearest even), so the reference sees what the kernels see,
/// and `bits` holds them for the tensor.
uint16_t toBF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
float fromBF16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
void narrow(std::vector<float> &values, std::vector<uint16_t> &bits,
            hybrid_rt_tensor &tensor) {
  bits.resize(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = toBF16(values[i]);
    values[i] = fromBF16(bits[i]);
  }
  tensor.data = bits.data();
  tensor.dtype = HYBRID_RT_BF16;
}
/// Operands of one call, as bf16 tensors when `enabled`: narrow() the
/// inputs, point the output at bf16 storage, widen() it after the call.
struct BF16Operands {
  bool enabled = false;
  std::vector<uint16_t> q, k, v, sinks, out;
  void inputs(std::vector<float> &qf, std::vector<float> &kf,
              std::vector<float> &vf, std::vector<float> &sinksf,
              hybrid_rt_tensor &tq, hybrid_rt_tensor &tk, hybrid_rt_tensor &tv,
              hybrid_rt_tensor &ts, hybrid_rt_tensor &to, size_t outCount) {
    if (!enabled)
      return;
    narrow(qf, q, tq);
    narrow(kf, k, tk);
    narrow(vf, v, tv);
    narrow(sinksf, sinks, ts);
    out.assign(outCount, 0);
    to.data = out.data();
    to.dtype = HYBRID_RT_BF16;
  }
  void widen(std::vector<float> &outf) const {
    if (enabled)
      for (size_t i = 0; i < out.size(); ++i)
        outf[i] = fromBF16(out[i]);
  }
};

/// ": error E ok|FAILED[ (worst at ...)]" for `out` against `ref`, both
/// [B, S, H, Dv], also recorded in `record`; sets `failed` on a failure.
std::string compare(const std::vector<float> &out,
                    const std::vector<double> &ref, int64_t seq, int64_t heads,
                    int64_t vHeadDim, double tolerance, bool &failed,
                    json &record) {
  double diff = -1, scale = 0;
  size_t worst = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    double d =
        std::isnan(out[i]) ? HUGE_VAL : std::abs(double(out[i]) - ref[i]);
    if (d > diff)
      diff = d, worst = i;
    scale = std::max(scale, std::abs(ref[i]));
  }
  double relative = diff / std::max(scale, 1e-30);
  bool ok = relative <= tolerance;
  failed |= !ok;
  record["error"] = relative;
  record["ok"] = ok;
  char text[256];
  std::snprintf(text, sizeof(text), ": error %.3g %s", relative,
                ok ? "ok" : "FAILED");
  std::string line = text;
  if (!ok) {
    // Where it is worst: kernel layout bugs show as patterns in these
    // coordinates (a row of 16, a column block of 8, a tile edge).
    int64_t e = worst % vHeadDim, h = worst / vHeadDim % heads,
            s = worst / (vHeadDim * heads) % seq,
            b = worst / (vHeadDim * heads * seq);
    std::snprintf(text, sizeof(text),
                  " (worst at [b %lld, s %lld, h %lld, e %lld]: %g, expected "
                  "%g)",
                  (long long)b, (long long)s, (long long)h, (long long)e,
                  double(out[worst]), ref[worst]);
    line += text;
    record["worst"] = {b, s, h, e};
  }
  return line;
}

/// Writes `data` with `shape` to `path` in NumPy's .npy format (1.0; f32 or
/// f64 by T).
template <typename T>
bool writeNpy(const std::string &path, const std::vector<T> &data,
              const std::vector<int64_t> &shape) {
  std::string dims;
  for (int64_t d : shape)
    dims += std::to_string(d) + ", ";
  std::string header = std::string("{'descr': '<") +
                       (sizeof(T) == 4 ? "f4" : "f8") +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic, version, header length, header padded to 64 bytes with '\n'.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return false;
  uint16_t length = uint16_t(header.size());
  std::fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  std::fwrite(&length, 2, 1, f);
  std::fwrite(header.data(), 1, header.size(), f);
  std::fwrite(data.data(), sizeof(T), data.size(), f);
  return std::fclose(f) == 0;
}

/// What a text line says about `l`, as JSON.
json describe(const LayerSpec &l) {
  json record = {{"layer", l.index},
                 {"kernel", l.kernel},
                 {"kind", l.kind},
                 {"window", l.window ? json(l.window) : json(nullptr)},
                 {"chunk", l.chunk ? json(l.chunk) : json(nullptr)},
                 {"heads", l.numHeads},
                 {"kv_heads", l.numKvHeads},
                 {"head_dim", l.headDim}};
  if (l.kEqV) // one tensor cached: the values, from which keys are derived
    record["k_eq_v"] = true;
  if (l.latent) // one tensor cached: the keys, whose first dims are values
    record["latent"] = true;
  return record;
}

/// The range of random queries for `l`: 1, except for bf16 kernels (GPU
/// ones), whose scores get at most a standard
/// deviation of 2: with q, k uniform in [-1, 1] it is scale * sqrt(D) / 3,
/// which at scale 1 and D = 512 (Gemma 4) is 7.5, and bf16 rounding of such
/// scores alone moves the output by about 3e-2 (a NumPy model of the
/// rounding), past any tolerance that still catches kernel bugs.
float queryRange(const LayerSpec &l, bool bf16) {
  double std = std::abs(l.scale) * std::sqrt(double(l.headDim)) / 3;
  return bf16 && std > 2 ? float(2 / std) : 1.f;
}

/// A layer's operands for `positions` positions of each of `batch`
/// sequences.
struct Inputs {
  std::vector<float> q, k, v, sinks;
};

/// Random operands (queries in queryRange), or with `probe` zero queries
/// and keys and values of random 0s and 1s: every visible key then scores
/// 0 whatever the positional encoding, scale or soft-cap, so each output row
/// is the mean of its visible keys' value rows (less the sink's share),
/// which a kernel computes exactly but for f32 rounding (bf16 holds 0, 1
/// and the probabilities, powers of 2). A key attended that the mask hides,
/// or one missed, moves a row by about 1/n of a value; rows read from the
/// wrong cache row, head or batch by more. So mask ranges, tile skipping,
/// key splits, ring and mirror rows and GQA mapping are checked at a
/// tolerance far below bf16 rounding, where random inputs hide a one-key
/// error past a few dozen keys.
Inputs drawInputs(Random &rng, const LayerSpec &l, int64_t batch,
                  int64_t positions, bool rounds, bool probe, bool bf16) {
  Inputs in;
  size_t rows = size_t(batch * positions);
  in.q = random(rng, rows * l.numHeads * l.headDim, queryRange(l, rounds));
  in.k = random(rng, rows * l.numKvHeads * l.headDim);
  in.v = random(rng, rows * l.numKvHeads * l.vHeadDim);
  in.sinks = random(rng, l.numHeads);
  if (probe) {
    std::fill(in.q.begin(), in.q.end(), 0.f);
    for (std::vector<float> *values : {&in.k, &in.v})
      for (float &x : *values)
        x = x < 0 ? 0.f : 1.f;
    // Sink logits of k ln 2 (k = -2 .. 2), so that whichever of 0 and the
    // sink is the running max, the probabilities are powers of 2, which bf16
    // holds; bf16 sinks (which cannot hold ln 2) are 0.
    for (float &x : in.sinks)
      x = bf16 ? 0.f : float(std::nearbyint(2 * x) * std::log(2.0));
  }
  if (l.kEqV) // the values, passed as k
    in.v = in.k;
  if (l.latent) { // the keys' first v_head_dim dims
    in.v.clear();
    for (size_t row = 0; row < in.k.size() / size_t(l.headDim); ++row)
      in.v.insert(in.v.end(), in.k.begin() + row * l.headDim,
                  in.k.begin() + row * l.headDim + l.vHeadDim);
  }
  return in;
}

/// Positions [begin, begin + count) of `all` [B, total, width].
std::vector<float> slice(const std::vector<float> &all, int64_t batch,
                         int64_t total, int64_t width, int64_t begin,
                         int64_t count) {
  std::vector<float> part(batch * count * width);
  for (int64_t b = 0; b < batch; ++b)
    std::copy_n(all.begin() + (b * total + begin) * width, count * width,
                part.begin() + b * count * width);
  return part;
}

/// K=V layers' key scales, by layer (hybrid_rt_key_scale_set).
using KeyScales = std::map<int64_t, std::vector<float>>;

/// Gives every K=V layer that keeps its cache a key scale drawn in
/// [0.5, 1.5) (ones would hide a runtime that ignores it); false, saying
/// why, if the runtime refuses one.
bool setKeyScales(Model &model, const Manifest &manifest, KeyScales &scales) {
  for (const LayerSpec &l : manifest.layers) {
    if (!l.hasKernel() || !l.kEqV || l.cacheOwner() != l.index)
      continue;
    Random rng(uint64_t(l.index) * 104729 + 17);
    std::vector<float> &scale = scales[l.index];
    scale = random(rng, l.headDim, 0.5f);
    for (float &x : scale)
      x += 1.f;
    hybrid_rt_tensor t = view(scale.data(), l.headDim);
    if (Status s = model.setKeyScale(l.index, &t); !s) {
      std::printf("layer %lld: key scale: FAILED: %s\n", (long long)l.index,
                  s.message.c_str());
      return false;
    }
  }
  return true;
}

/// The key scale ([D]) of the layer whose cache `l` reads (its own), which
/// its keys are multiplied by; empty if it has none.
std::vector<float> keyScaleOf(const LayerSpec &l, const KeyScales &scales) {
  auto it = scales.find(l.cacheOwner());
  return it == scales.end() ? std::vector<float>() : it->second;
}

/// One layer's inputs over the whole sequence, and its output assembled
/// from the session's calls.
struct LayerRun {
  std::vector<float> q, k, v, sinks, out;
  std::vector<double> stepMs; // decode steps (device time on GPUs)
};

#ifdef HYBRID_RT_CUDA
/// --graph: a step of `o.stepTokens` tokens at `begin` through every causal
/// layer, from `graph`, which the first call captures (each layer's step
/// operands in device buffers, `tensors`: q, k, v, sinks, out): the step's
/// inputs are copied in, the graph replayed, and the outputs copied into
/// the runs' `out`. Returns false, saying why, if a call fails.
bool replayStep(GraphReplay &graph, Model &model, Session &session,
                const Manifest &manifest, const Options &o,
                std::map<int64_t, LayerRun> &runs,
                std::map<int64_t, std::vector<hybrid_rt_tensor>> &tensors,
                int64_t total, int64_t begin) {
  int64_t b = o.batch, count = o.stepTokens;
  auto failed = [](const std::string &why) {
    std::printf("graph: FAILED: %s\n", why.c_str());
    return false;
  };
  std::vector<const LayerSpec *> layers;
  for (const LayerSpec &l : manifest.layers)
    if (l.hasKernel() && l.causal)
      layers.push_back(&l);
  if (tensors.empty()) {
    if (std::string e = graph.open(); !e.empty())
      return failed(e);
    for (const LayerSpec *l : layers) {
      std::vector<hybrid_rt_tensor> &t = tensors[l->index];
      t.resize(5);
      std::vector<std::vector<int64_t>> shapes = {
          {b, count, l->numHeads, l->headDim},
          {b, count, l->numKvHeads, l->headDim},
          {b, count, l->numKvHeads, l->vHeadDim},
          {l->numHeads},
          {b, count, l->numHeads, l->vHeadDim}};
      for (size_t i = 0; i < t.size(); ++i)
        if (std::string e = graph.allocate(shapes[i], o.bf16, t[i]); !e.empty())
          return failed(e);
    }
    if (Status s = model.setStream(graph.getStream()); !s)
      return failed(s.message);
    if (std::string e = graph.beginCapture(); !e.empty())
      return failed(e);
    for (const LayerSpec *l : layers) {
      std::vector<hybrid_rt_tensor> &t = tensors[l->index];
      bool shared = l->cachePolicy == "shared";
      // K=V layers' values are their k, latent ones' its first dims: v null.
      if (Status s =
              session.decode(l->index, t[0], shared ? nullptr : &t[1],
                             shared || l->kEqV || l->latent ? nullptr : &t[2],
                             l->sinks ? &t[3] : nullptr, t[4]);
          !s) {
        graph.endCapture();
        return failed("layer " + std::to_string(l->index) + ": " + s.message);
      }
    }
    if (std::string e = graph.endCapture(); !e.empty())
      return failed(e);
    // What a step costs the GPU's front end: a model's decode step at
    // batch 1 is bound by its launches.
    size_t nodes = 0;
    if (std::string e = graph.countNodes(nodes); !e.empty())
      return failed(e);
    std::printf("# graph of a step: %zu nodes for %zu layers\n", nodes,
                layers.size());
  }
  // --bf16: the operands as bf16 bits (the runs' values are already
  // bf16-rounded), the outputs read back as bits and widened.
  auto upload = [&](const hybrid_rt_tensor &t, std::vector<float> values) {
    if (!o.bf16)
      return graph.upload(t, values);
    std::vector<uint16_t> bits;
    hybrid_rt_tensor ignored{};
    narrow(values, bits, ignored);
    return graph.upload(t, bits);
  };
  std::map<int64_t, std::vector<float>> outs;
  std::map<int64_t, std::vector<uint16_t>> outBits;
  for (const LayerSpec *l : layers) {
    LayerRun &r = runs[l->index];
    std::vector<hybrid_rt_tensor> &t = tensors[l->index];
    for (std::string e :
         {upload(t[0],
                 slice(r.q, b, total, l->numHeads * l->headDim, begin, count)),
          upload(t[1], slice(r.k, b, total, l->numKvHeads * l->headDim, begin,
                             count)),
          upload(t[2], slice(r.v, b, total, l->numKvHeads * l->vHeadDim, begin,
                             count)),
          upload(t[3],
                 r.sinks.empty() ? std::vector<float>(l->numHeads) : r.sinks)})
      if (!e.empty())
        return failed(e);
  }
  if (std::string e = graph.replay(); !e.empty())
    return failed(e);
  for (const LayerSpec *l : layers) {
    size_t size = b * count * l->numHeads * l->vHeadDim;
    std::vector<float> &out = outs[l->index];
    out.resize(size);
    std::string e =
        o.bf16 ? graph.download(outBits[l->index] = std::vector<uint16_t>(size),
                                tensors[l->index][4])
               : graph.download(out, tensors[l->index][4]);
    if (!e.empty())
      return failed(e);
  }
  if (std::string e = graph.synchronize(); !e.empty())
    return failed(e);
  for (auto &[index, bits] : outBits)
    for (size_t i = 0; i < bits.size(); ++i)
      outs[index][i] = fromBF16(bits[i]);
  for (const LayerSpec *l : layers) {
    int64_t width = l->numHeads * l->vHeadDim;
    for (int64_t bb = 0; bb < b; ++bb)
      std::copy_n(outs[l->index].begin() + bb * count * width, count * width,
                  runs[l->index].out.begin() + (bb * total + begin) * width);
  }
  return true;
}
#endif

/// Every layer in a session: the prompt, then the decode steps; returns
/// false if a call fails or an output differs from the reference.
bool checkSession(Model &model, const Manifest &manifest, const Options &o,
                  const KeyScales &scales, int64_t prompt, double tolerance) {
  int64_t b = o.batch, total = prompt + o.decodeSteps * o.stepTokens;
  Session session;
  if (Status s = session.create(model, b, total, o.stepTokens); !s) {
    std::printf("session: FAILED: %s\n", s.message.c_str());
    return false;
  }
  std::map<int64_t, LayerRun> runs;
  for (const LayerSpec &l : manifest.layers) {
    if (!l.hasKernel())
      continue;
    Random rng(uint64_t(l.index) * 7919 + uint64_t(total));
    LayerRun &r = runs[l.index];
    Inputs in =
        drawInputs(rng, l, b, total, manifest.roundsToBF16(), o.probe, o.bf16);
    r.q = std::move(in.q);
    r.k = std::move(in.k);
    r.v = std::move(in.v);
    r.sinks = std::move(in.sinks);
    // A shared layer attends over its source's keys and values.
    if (l.cachePolicy == "shared" && runs.count(l.sourceLayer)) {
      r.k = runs[l.sourceLayer].k;
      r.v = runs[l.sourceLayer].v;
    }
    r.out.assign(b * total * l.numHeads * l.vHeadDim, 0.f);
    if (o.bf16) { // the reference sees the bf16-rounded inputs
      std::vector<uint16_t> bits;
      hybrid_rt_tensor ignored{};
      for (std::vector<float> *values : {&r.q, &r.k, &r.v, &r.sinks})
        narrow(*values, bits, ignored);
    }
  }
  // Prompt, then each step through every layer, in model order.
  bool failed = false;
#ifdef HYBRID_RT_CUDA
  GraphReplay graph;
  std::map<int64_t, std::vector<hybrid_rt_tensor>> graphTensors;
  // The model back on its own stream before the graph's is destroyed.
  struct StreamReset {
    Model &model;
    ~StreamReset() { model.resetStream(); }
  } streamReset{model};
#endif
  for (int64_t begin = 0; begin < total;
       begin += begin ? o.stepTokens : prompt) {
    int64_t count = begin ? o.stepTokens : prompt;
    if (begin && o.graph) {
#ifdef HYBRID_RT_CUDA
      if (!replayStep(graph, model, session, manifest, o, runs, graphTensors,
                      total, begin))
        return false;
      continue;
#else
      std::printf("graph: FAILED: hybrid-rt-check was built without CUDA\n");
      return false;
#endif
    }
    for (const LayerSpec &l : manifest.layers) {
      if (!l.hasKernel() || (begin && !l.causal))
        continue;
      LayerRun &r = runs[l.index];
      std::vector<float> q = slice(r.q, b, total, l.numHeads * l.headDim, begin,
                                   count),
                         k = slice(r.k, b, total, l.numKvHeads * l.headDim,
                                   begin, count),
                         v = slice(r.v, b, total, l.numKvHeads * l.vHeadDim,
                                   begin, count),
                         out(b * count * l.numHeads * l.vHeadDim);
      hybrid_rt_tensor tq = view(q.data(), {b, count, l.numHeads, l.headDim});
      hybrid_rt_tensor tk = view(k.data(), {b, count, l.numKvHeads, l.headDim});
      hybrid_rt_tensor tv =
          view(v.data(), {b, count, l.numKvHeads, l.vHeadDim});
      hybrid_rt_tensor ts = view(r.sinks.data(), l.numHeads);
      hybrid_rt_tensor to =
          view(out.data(), {b, count, l.numHeads, l.vHeadDim});
      std::vector<float> sinks = r.sinks;
      BF16Operands wide;
      wide.enabled = o.bf16;
      wide.inputs(q, k, v, sinks, tq, tk, tv, ts, to, out.size());
      bool shared = l.cachePolicy == "shared";
      if (l.kEqV || l.latent) // the values are k itself, or its first dims
        tv = tk;
      auto start = std::chrono::steady_clock::now();
      Status s = begin == 0
                     ? session.prefill(l.index, tq, tk, tv,
                                       l.sinks ? &ts : nullptr, to)
                     : session.decode(l.index, tq, shared ? nullptr : &tk,
                                      shared ? nullptr : &tv,
                                      l.sinks ? &ts : nullptr, to);
      if (!s) {
        std::printf("layer %lld (%s) at %lld: FAILED: %s\n", (long long)l.index,
                    l.kernel.c_str(), (long long)begin, s.message.c_str());
        return false;
      }
      wide.widen(out);
      if (begin) {
        hybrid_rt_device_time device;
        r.stepMs.push_back(hybrid_rt_device_time_get(model.get(), &device) ==
                                   HYBRID_RT_OK
                               ? device.attention_ms
                               : std::chrono::duration<double, std::milli>(
                                     std::chrono::steady_clock::now() - start)
                                     .count());
      }
      int64_t width = l.numHeads * l.vHeadDim;
      for (int64_t bb = 0; bb < b; ++bb)
        std::copy_n(out.begin() + bb * count * width, count * width,
                    r.out.begin() + (bb * total + begin) * width);
    }
  }
  for (const LayerSpec &l : manifest.layers) {
    if (!l.hasKernel())
      continue;
    LayerRun &r = runs[l.index];
    hybrid_rt_cache_info info;
    session.cacheInfo(l.index, info);
    std::string line = "layer " + std::to_string(l.index) + " (" + l.kernel +
                       ", cache " + info.policy + ", " +
                       std::to_string(info.rows) + " rows) prompt " +
                       std::to_string(prompt) + " + " +
                       std::to_string(l.causal ? o.decodeSteps : 0) + " x " +
                       std::to_string(o.stepTokens);
    json record = describe(l);
    record.update({{"cache", info.policy},
                   {"rows", info.rows},
                   {"batch", b},
                   {"prompt", prompt},
                   {"steps", l.causal ? o.decodeSteps : 0},
                   {"step_tokens", o.stepTokens}});
    if (o.check) {
      // Bidirectional layers ran the prompt only.
      int64_t length = l.causal ? total : prompt;
      int64_t qw = l.numHeads * l.headDim, kw = l.numKvHeads * l.headDim,
              vw = l.numKvHeads * l.vHeadDim, ow = l.numHeads * l.vHeadDim;
      std::vector<float> q = slice(r.q, b, total, qw, 0, length),
                         k = slice(r.k, b, total, kw, 0, length),
                         v = slice(r.v, b, total, vw, 0, length),
                         out = slice(r.out, b, total, ow, 0, length);
      // Steps attend over the cache: rounded where it is narrower than f32.
      std::vector<double> ref = reference::sessionAttention(
          l, b, length, prompt, {manifest.getHostCacheDtype(l.kernel)},
          q.data(), k.data(), v.data(), l.sinks ? r.sinks.data() : nullptr,
          keyScaleOf(l, scales));
      line += compare(out, ref, length, l.numHeads, l.vHeadDim, tolerance,
                      failed, record);
    }
    if (o.repeat > 0 && !r.stepMs.empty()) {
      // A step reads the visible keys and values of its last query once:
      // bf16 on GPUs, f32 or bf16 on CPUs (K=V caches: the values only,
      // from which the keys are derived).
      std::vector<double> ms = r.stepMs;
      std::sort(ms.begin(), ms.end());
      double median = ms[ms.size() / 2];
      int64_t visible = total;
      if (l.window)
        visible = std::min(total, l.window);
      if (l.chunk)
        visible = (total - 1) % l.chunk + 1;
      double element = double(manifest.getCacheElementBytes(l.kernel));
      double bytes = double(b) * double(visible) * double(l.numKvHeads) *
                     double(l.kEqV     ? l.vHeadDim
                            : l.latent ? l.headDim
                                       : l.headDim + l.vHeadDim) *
                     element;
      char text[128];
      double rate = bytes / (median * 1e-3) / 1e9;
      std::snprintf(text, sizeof(text), ": decode %.4f ms, %.1f GB/s", median,
                    rate);
      line += text;
      record["context"] = total;
      record["decode_ms"] = median;
      record["decode_gbytes_per_s"] = rate;
      if (o.stepTokens > 1) {
        // Steps of many tokens (chunked prefill) are rated as prefill is:
        // useful FLOP/s of the last step's visible (query, key) pairs.
        double flops = double(l.countVisiblePairs(o.stepTokens, total)) *
                       l.getFlopsPerVisiblePair() * double(b);
        double tflops = flops / (median * 1e-3) / 1e12;
        std::snprintf(text, sizeof(text), ", %.2f TFLOP/s", tflops);
        line += text;
        record["decode_tflops"] = tflops;
      }
    }
    std::printf("%s\n", o.jsonLines ? record.dump().c_str() : line.c_str());
  }
  return !failed;
}

} // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  Manifest manifest;
  std::string error;
  if (!loadManifest(o.dir, manifest, error)) {
    std::fprintf(stderr, "hybrid-rt-check: %s\n", error.c_str());
    return 1;
  }
  Model model;
  if (Status s = model.open(o.dir); !s) {
    std::fprintf(stderr, "hybrid-rt-check: %s\n", s.message.c_str());
    return 1;
  }
  bool rounds = manifest.roundsToBF16();
  // bf16 tensor-core inputs (GPU) versus f32 throughout (CPU steps over
  // bf16 or f8 caches are compared with the reference over the caches'
  // rounded keys and values); probes are exact but for f32 rounding, or
  // bf16 outputs' (a relative 2^-9).
  double tolerance =
      o.tolerance > 0 ? o.tolerance
      : o.probe       ? (o.bf16 ? 4e-3 : 1e-5)
      : rounds        ? 2e-2
               : reference::getSessionTolerance(manifest.getCacheDtype());
  if (!o.jsonLines)
    std::printf("# %s on %s, batch %lld, tolerance %g%s%s\n",
                manifest.name.c_str(), hybrid_rt_device_name(model.get()),
                (long long)o.batch, tolerance, o.bf16 ? ", bf16 operands" : "",
                o.probe ? ", probe inputs" : "");

  KeyScales scales;
  if (!setKeyScales(model, manifest, scales))
    return 1;
  bool failed = false;
  if (o.decodeSteps > 0) {
    for (int64_t seq : o.seqs)
      failed |= !checkSession(model, manifest, o, scales, seq, tolerance);
    return failed ? 1 : 0;
  }
  std::set<std::string> seen;
  for (const LayerSpec &l : manifest.layers) {
    if (!l.hasKernel() || !seen.insert(l.kernel).second)
      continue;
    for (int64_t seq : o.seqs) {
      Random rng(uint64_t(l.index) * 7919 + uint64_t(seq));
      int64_t b = o.batch;
      auto [q, k, v, sinks] =
          drawInputs(rng, l, b, seq, rounds, o.probe, o.bf16);
      std::vector<float> out(b * seq * l.numHeads * l.vHeadDim);
      hybrid_rt_tensor tq = view(q.data(), {b, seq, l.numHeads, l.headDim});
      hybrid_rt_tensor tk = view(k.data(), {b, seq, l.numKvHeads, l.headDim});
      hybrid_rt_tensor tv = view(v.data(), {b, seq, l.numKvHeads, l.vHeadDim});
      hybrid_rt_tensor ts = view(sinks.data(), l.numHeads);
      hybrid_rt_tensor to = view(out.data(), {b, seq, l.numHeads, l.vHeadDim});
      BF16Operands wide;
      wide.enabled = o.bf16;
      wide.inputs(q, k, v, sinks, tq, tk, tv, ts, to, out.size());
      if (l.kEqV || l.latent) // the values are k itself, or its first dims
        tv = tk;
      auto run = [&] {
        return model.prefill(l.index, tq, tk, tv, l.sinks ? &ts : nullptr, to);
      };
      if (Status s = run(); !s) {
        std::printf("layer %lld (%s) seq %lld: FAILED: %s\n",
                    (long long)l.index, l.kernel.c_str(), (long long)seq,
                    s.message.c_str());
        failed = true;
        continue;
      }
      wide.widen(out);
      std::string line = "layer " + std::to_string(l.index) + " (" + l.kernel +
                         ") seq " + std::to_string(seq);
      json record = describe(l);
      record.update({{"batch", b}, {"seq", seq}});
      if (o.check) {
        std::vector<double> ref = reference::sessionAttention(
            l, b, seq, seq, {}, q.data(), k.data(), v.data(),
            l.sinks ? sinks.data() : nullptr, keyScaleOf(l, scales));
        line += compare(out, ref, seq, l.numHeads, l.vHeadDim, tolerance,
                        failed, record);
        // Failed checks leave their operands for NumPy or torch to inspect.
        if (!o.dump.empty() && !record["ok"].get<bool>()) {
          std::string dir = o.dump + "/layer" + std::to_string(l.index) +
                            "-seq" + std::to_string(seq);
          std::filesystem::create_directories(dir);
          bool written =
              writeNpy(dir + "/q.npy", q, {b, seq, l.numHeads, l.headDim}) &&
              writeNpy(dir + "/k.npy", k, {b, seq, l.numKvHeads, l.headDim}) &&
              writeNpy(dir + "/v.npy", v, {b, seq, l.numKvHeads, l.vHeadDim}) &&
              writeNpy(dir + "/sinks.npy", sinks, {l.numHeads}) &&
              writeNpy(dir + "/out.npy", out,
                       {b, seq, l.numHeads, l.vHeadDim}) &&
              writeNpy(dir + "/ref.npy", ref, {b, seq, l.numHeads, l.vHeadDim});
          line += written ? " (dumped to " + dir + ")" : " (dump failed)";
        }
      }
      if (o.repeat > 0) {
        std::vector<double> times;
        for (int r = 0; r < o.repeat + 1; ++r) {
          auto start = std::chrono::steady_clock::now();
          if (Status s = run(); !s) {
            std::printf("%s: FAILED: %s\n", line.c_str(), s.message.c_str());
            return 1;
          }
          double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start)
                          .count();
          hybrid_rt_device_time device;
          if (hybrid_rt_device_time_get(model.get(), &device) == HYBRID_RT_OK)
            ms = device.attention_ms;
          if (r > 0) // the first run warms up
            times.push_back(ms);
        }
        std::sort(times.begin(), times.end());
        double median = times[times.size() / 2];
        double flops = double(l.countVisiblePairs(seq, seq)) *
                       l.getFlopsPerVisiblePair() * double(b);
        double tflops = flops / (median * 1e-3) / 1e12;
        char text[128];
        std::snprintf(text, sizeof(text), ": %.4f ms, %.2f TFLOP/s", median,
                      tflops);
        line += text;
        record["ms"] = median;
        record["tflops"] = tflops;
      }
      std::printf("%s\n", o.jsonLines ? record.dump().c_str() : line.c_str());
    }
  }
  return failed ? 1 : 0;
}
