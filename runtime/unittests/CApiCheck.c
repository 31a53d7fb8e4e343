/*===- CApiCheck.c - The C ABI from C: every misuse gets its message -----===*
 *
 * hybrid-rt-c-api-check DIR LAYER: opens DIR's artifacts and calls
 * hybrid_rt_prefill on LAYER (a layer without sinks) with correct and then
 * wrong operands, printing the status and message of each call.
 * hybrid-rt-c-api-check DIR LAYER SHARED: the session calls instead, on
 * LAYER (causal, no sinks, with a cache) and SHARED (reading LAYER's cache).
 * Written in C so that the header stays C.
 *
 *===----------------------------------------------------------------------===*/

#include "hybrid-rt/hybrid_rt.h"

#ifdef HYBRID_RT_CUDA
#include "DriverFunctions.h"
#include <cuda.h>
#endif
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report(const char *what, hybrid_rt_status status) {
  printf("%s: %d %s\n", what, (int)status,
         status == HYBRID_RT_OK ? "ok" : hybrid_rt_last_error());
}

static int checkSession(hybrid_rt_model *model, int64_t layer, int64_t shared);

#ifdef HYBRID_RT_CUDA
/* The driver entry points the checks call, from $HYBRID_CUDA_DRIVER (the
 * driver GPU models run on), with cuda.h's types so that the calls match
 * the definitions (UBSan's -fsanitize=function checks). */
typedef struct Driver {
#define DECLARE(name) __typeof__(name) *name;
  HYBRID_DRIVER_FUNCTIONS(DECLARE)
#undef DECLARE
} Driver;

/* Loads `d` for a GPU model; 0 for CPU models or without the driver. */
static int loadDriver(hybrid_rt_model *model, Driver *d) {
  const char *path = getenv("HYBRID_CUDA_DRIVER");
  void *driver = path ? dlopen(path, RTLD_NOW) : NULL;
  if (!driver || strcmp(hybrid_rt_device_name(model), "cpu") == 0)
    return 0;
#define LOAD(name)                                                             \
  if (!(d->name =                                                              \
            (__typeof__(name) *)dlsym(driver, HYBRID_DRIVER_SYMBOL(name))))    \
    return 0;
  HYBRID_DRIVER_FUNCTIONS(LOAD)
#undef LOAD
  return 1;
}

static size_t bytesOf(const hybrid_rt_tensor *t) {
  size_t bytes = sizeof(float);
  for (int i = 0; i < t->rank; ++i)
    bytes *= (size_t)t->shape[i];
  return bytes;
}

/* GPU models: v in device memory the driver allocated, whole and then 4
 * bytes short. */
static void checkDeviceOperands(hybrid_rt_model *model, int64_t layer,
                                const hybrid_rt_tensor *tq,
                                const hybrid_rt_tensor *tk,
                                const hybrid_rt_tensor *tv,
                                hybrid_rt_tensor *to) {
  Driver d;
  if (!loadDriver(model, &d))
    return;
  size_t bytes = bytesOf(tv);
  CUdeviceptr whole = 0, clipped = 0;
  if (d.cuMemAlloc(&whole, bytes) != CUDA_SUCCESS ||
      d.cuMemAlloc(&clipped, bytes - 4) != CUDA_SUCCESS)
    return;
  hybrid_rt_tensor device = *tv;
  device.memory = HYBRID_RT_DEVICE;
  device.data = (void *)(uintptr_t)whole;
  report("v on the device",
         hybrid_rt_prefill(model, layer, tq, tk, &device, NULL, to));
  device.data = (void *)(uintptr_t)clipped;
  report("v on the device, 4 bytes short",
         hybrid_rt_prefill(model, layer, tq, tk, &device, NULL, to));
  d.cuMemFree(whole);
  d.cuMemFree(clipped);
}

/* A device copy of host tensor `t` (copied on the legacy default stream,
 * and waited for). */
static hybrid_rt_tensor onDevice(const Driver *d, const hybrid_rt_tensor *t) {
  hybrid_rt_tensor device = *t;
  CUdeviceptr ptr = 0;
  d->cuMemAlloc(&ptr, bytesOf(t));
  d->cuMemcpyHtoDAsync(ptr, t->data, bytesOf(t), NULL);
  d->cuStreamSynchronize(NULL);
  device.data = (void *)(uintptr_t)ptr;
  device.memory = HYBRID_RT_DEVICE;
  return device;
}

/* Whether device tensor `device` holds what host tensor `host` does. */
static const char *compare(const Driver *d, const hybrid_rt_tensor *device,
                           const hybrid_rt_tensor *host) {
  size_t bytes = bytesOf(host);
  void *copy = malloc(bytes);
  d->cuMemcpyDtoHAsync(copy, (CUdeviceptr)(uintptr_t)device->data, bytes, NULL);
  d->cuStreamSynchronize(NULL);
  int same = memcmp(copy, host->data, bytes) == 0;
  free(copy);
  return same ? "as on the host" : "differs from the host's";
}

/* GPU models on the caller's stream: a call on device tensors returns once
 * its work is queued (the emulator, as a GPU does, runs it when the host
 * waits), and gives what the call on host tensors gives. */
static void checkStreams(hybrid_rt_model *model, int64_t layer,
                         const hybrid_rt_tensor *tq, const hybrid_rt_tensor *tk,
                         const hybrid_rt_tensor *tv, hybrid_rt_tensor *to) {
  Driver d;
  if (!loadDriver(model, &d))
    return;
  const hybrid_rt_tensor *operands[] = {tq, tk, tv};
  for (int i = 0; i < 3; ++i) {
    float *data = operands[i]->data;
    for (size_t j = 0; j < bytesOf(operands[i]) / sizeof(float); ++j)
      data[j] = (float)((int)((j * 7 + (size_t)i) % 13) - 6) * 0.05f;
  }
  report("prefill on host tensors",
         hybrid_rt_prefill(model, layer, tq, tk, tv, NULL, to));
  size_t outBytes = bytesOf(to);
  float *zeros = calloc(1, outBytes);
  hybrid_rt_tensor zeroOut = *to;
  zeroOut.data = zeros;
  hybrid_rt_tensor q = onDevice(&d, tq), k = onDevice(&d, tk),
                   v = onDevice(&d, tv), out = onDevice(&d, &zeroOut);
  CUstream stream = NULL;
  d.cuStreamCreate(&stream, 0);
  report("stream set", hybrid_rt_stream_set(model, stream));
  report("prefill on the stream",
         hybrid_rt_prefill(model, layer, &q, &k, &v, NULL, &out));
  /* The emulator's device memory is the host's: readable before the wait. */
  if (strstr(hybrid_rt_device_name(model), "emulator"))
    printf("out before the stream is waited for: %s\n",
           memcmp(out.data, zeros, outBytes) == 0 ? "not yet written"
                                                  : "written");
  d.cuStreamSynchronize(stream);
  printf("out once it is: %s\n", compare(&d, &out, to));
  report("stream set to the legacy default stream",
         hybrid_rt_stream_set(model, NULL));
  report("prefill", hybrid_rt_prefill(model, layer, &q, &k, &v, NULL, &out));
  d.cuStreamSynchronize(NULL);
  printf("out: %s\n", compare(&d, &out, to));
  report("stream reset", hybrid_rt_stream_reset(model));
  d.cuStreamDestroy(stream);
  d.cuMemcpyHtoDAsync((CUdeviceptr)(uintptr_t)out.data, zeros, outBytes, NULL);
  report("prefill on the model's stream",
         hybrid_rt_prefill(model, layer, &q, &k, &v, NULL, &out));
  printf("out: %s\n", compare(&d, &out, to));
  /* The model's own stream is a blocking one: it waits for q still being
   * written on the legacy default stream, as PyTorch's default stream
   * writes operands. */
  d.cuMemcpyHtoDAsync((CUdeviceptr)(uintptr_t)out.data, zeros, outBytes, NULL);
  CUdeviceptr late = 0;
  d.cuMemAlloc(&late, bytesOf(tq));
  d.cuMemcpyHtoDAsync(late, tq->data, bytesOf(tq), NULL);
  hybrid_rt_tensor lateQ = q;
  lateQ.data = (void *)(uintptr_t)late;
  report("prefill on q being written on the legacy default stream",
         hybrid_rt_prefill(model, layer, &lateQ, &k, &v, NULL, &out));
  printf("out: %s\n", compare(&d, &out, to));
  d.cuMemFree(late);
  /* A destroyed stream is the driver's to refuse (on a GPU, undefined). */
  if (strstr(hybrid_rt_device_name(model), "emulator"))
    report("stream set to a destroyed stream",
           hybrid_rt_stream_set(model, stream));
  hybrid_rt_tensor *devices[] = {&q, &k, &v, &out};
  for (int i = 0; i < 4; ++i)
    d.cuMemFree((CUdeviceptr)(uintptr_t)devices[i]->data);
  free(zeros);
}

/* q, k, v and out of `n` tokens of `layer` at batch 1, in host memory
 * (`t`; q, k and v drawn, out zero) and copied to the device (`dt`). */
static void makeTokens(const Driver *d, hybrid_rt_model *model, int64_t layer,
                       int64_t n, hybrid_rt_tensor t[4],
                       hybrid_rt_tensor dt[4]) {
  hybrid_rt_layer_info info;
  hybrid_rt_layer_info_get(model, layer, &info);
  const int64_t hq = info.num_heads, hkv = info.num_kv_heads,
                dk = info.head_dim, dv = info.v_head_dim;
  const int64_t shapes[4][2] = {{hq, dk}, {hkv, dk}, {hkv, dv}, {hq, dv}};
  for (int i = 0; i < 4; ++i) {
    hybrid_rt_tensor tensor = {NULL,
                               HYBRID_RT_F32,
                               4,
                               {1, n, shapes[i][0], shapes[i][1]},
                               HYBRID_RT_HOST};
    float *data = calloc(1, bytesOf(&tensor));
    for (size_t j = 0; i < 3 && j < bytesOf(&tensor) / sizeof(float); ++j)
      data[j] = (float)((int)((j * 5 + (size_t)(i + n)) % 11) - 5) * 0.1f;
    tensor.data = data;
    t[i] = tensor;
    dt[i] = onDevice(d, &t[i]);
  }
}

static void freeTokens(const Driver *d, hybrid_rt_tensor t[4],
                       hybrid_rt_tensor dt[4]) {
  for (int i = 0; i < 4; ++i) {
    free(t[i].data);
    d->cuMemFree((CUdeviceptr)(uintptr_t)dt[i].data);
  }
}

/* Ends `stream`'s capture, printing whether it stayed valid ("what:
 * valid"), and instantiates its `graph` (null: none). */
static CUgraphExec endCapture(const Driver *d, CUstream stream,
                              const char *what, CUgraph *graph) {
  printf("%s: %s\n", what,
         d->cuStreamEndCapture(stream, graph) == CUDA_SUCCESS ? "valid"
                                                              : "invalidated");
  CUgraphExec exec = NULL;
  if (*graph)
    d->cuGraphInstantiate(&exec, *graph, 0);
  return exec;
}

/* A decode step captured in a CUDA graph while `stream` (a blocking
 * stream) captures: each replay is the session's next step, as `onHost`'s
 * steps on host tensors give it, and the session's lengths are read back
 * at the next call outside the capture, which reports replays past
 * max_seq. Calls a replay cannot repeat (prompts, sessions), host tensors,
 * and the legacy default stream (which would join the capture) are refused
 * before anything is queued, so the capture ends valid. */
static void checkCapture(const Driver *d, hybrid_rt_model *model, int64_t layer,
                         hybrid_rt_session *onHost, hybrid_rt_session *session,
                         CUstream stream) {
  hybrid_rt_tensor t[4], dt[4];
  makeTokens(d, model, layer, 1, t, dt);
  hybrid_rt_session_options options = {1, 8, 1};
  hybrid_rt_session *other = NULL;
  hybrid_rt_cache_info cache;
  report("stream set", hybrid_rt_stream_set(model, stream));
  d->cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
  report("step while the stream captures",
         hybrid_rt_session_decode(session, layer, &dt[0], &dt[1], &dt[2], NULL,
                                  &dt[3]));
  report("step on host tensors while the stream captures",
         hybrid_rt_session_decode(session, layer, &t[0], &t[1], &t[2], NULL,
                                  &t[3]));
  report("prefill while the stream captures",
         hybrid_rt_prefill(model, layer, &dt[0], &dt[1], &dt[2], NULL, &dt[3]));
  report("session while the stream captures",
         hybrid_rt_session_create(model, &options, &other));
  {
    int64_t order[1] = {0};
    report("reorder while the stream captures",
           hybrid_rt_session_reorder(session, order, 1));
    report("truncate while the stream captures",
           hybrid_rt_session_truncate(session, 0));
    report("cache read while the stream captures",
           hybrid_rt_session_cache_read(session, layer, 0, &dt[1], &dt[2]));
    report("cache write while the stream captures",
           hybrid_rt_session_cache_write(session, layer, 0, &dt[1], &dt[2]));
  }
  report("stream set to the capturing stream",
         hybrid_rt_stream_set(model, stream));
  report("stream set to the legacy default stream",
         hybrid_rt_stream_set(model, NULL));
  CUgraph graph = NULL;
  CUgraphExec exec = endCapture(d, stream, "capture", &graph);
  const char *replays = exec ? "as on the host" : "no graph";
  for (int i = 0; exec && i < 2; ++i) {
    d->cuGraphLaunch(exec, stream);
    d->cuStreamSynchronize(stream);
    hybrid_rt_session_decode(onHost, layer, &t[0], &t[1], &t[2], NULL, &t[3]);
    if (strcmp(compare(d, &dt[3], &t[3]), "as on the host") != 0) {
      replays = i ? "the second differs" : "the first differs";
      break;
    }
  }
  printf("replays: %s\n", replays);
  hybrid_rt_session_cache_info(session, layer, &cache);
  printf("after two replays: %lld tokens seen\n", (long long)cache.length);
  report("step after the replays",
         hybrid_rt_session_decode(session, layer, &dt[0], &dt[1], &dt[2], NULL,
                                  &dt[3]));
  d->cuStreamSynchronize(stream);
  hybrid_rt_session_cache_info(session, layer, &cache);
  printf("after the step: %lld tokens seen\n", (long long)cache.length);
  if (exec)
    d->cuGraphLaunch(exec, stream);
  report("info after a replay past max_seq",
         hybrid_rt_session_cache_info(session, layer, &cache));
  hybrid_rt_session_reset(session);
  hybrid_rt_session_cache_info(session, layer, &cache);
  printf("after a reset: %lld tokens seen\n", (long long)cache.length);
  if (exec)
    d->cuGraphExecDestroy(exec);
  if (graph)
    d->cuGraphDestroy(graph);
  /* What the driver refuses around captures, as the runtime relies on:
   * capturing the legacy default stream, and allocating during a capture
   * (which invalidates it). */
  printf("capture on the legacy default stream: %s\n",
         d->cuStreamBeginCapture(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL) ==
                 CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
             ? "refused"
             : "begun");
  CUdeviceptr scratch = 0;
  d->cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
  CUresult allocated = d->cuMemAlloc(&scratch, 64);
  report("step in the invalidated capture",
         hybrid_rt_session_decode(session, layer, &dt[0], &dt[1], &dt[2], NULL,
                                  &dt[3]));
  graph = NULL;
  printf("allocation in a capture: %s, capture %s\n",
         allocated == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ? "refused"
                                                            : "made",
         d->cuStreamEndCapture(stream, &graph) == CUDA_SUCCESS ? "valid"
                                                               : "invalidated");
  if (allocated == CUDA_SUCCESS)
    d->cuMemFree(scratch);
  if (graph)
    d->cuGraphDestroy(graph);
  freeTokens(d, t, dt);
}

/* Entry b of a [B, ...] tensor `t`, as a tensor of batch 1. */
static hybrid_rt_tensor entryOf(const hybrid_rt_tensor *t, int64_t b) {
  hybrid_rt_tensor entry = *t;
  entry.shape[0] = 1;
  entry.data = (char *)t->data + (size_t)b * bytesOf(&entry);
  return entry;
}

/* makeTokens' tensors of one token of each of 2 batch entries ([1, 2, ...]
 * read as [2, 1, ...]). */
static void makeStepOfTwo(const Driver *d, hybrid_rt_model *model,
                          int64_t layer, hybrid_rt_tensor t[4],
                          hybrid_rt_tensor dt[4]) {
  makeTokens(d, model, layer, 2, t, dt);
  for (int i = 0; i < 4; ++i) {
    t[i].shape[0] = dt[i].shape[0] = 2;
    t[i].shape[1] = dt[i].shape[1] = 1;
  }
}

/* Whether batch entry `entry` of a replayed step's output (`dt`[3]) is
 * what `solo` (a batch-1 session of its sequence) gives stepping that
 * entry's host tokens (`t`). */
static bool stepsAsSolo(const Driver *d, int64_t layer, hybrid_rt_session *solo,
                        hybrid_rt_tensor t[4], hybrid_rt_tensor dt[4],
                        int64_t entry) {
  hybrid_rt_tensor x[4], dx = entryOf(&dt[3], entry);
  for (int j = 0; j < 4; ++j)
    x[j] = entryOf(&t[j], entry);
  hybrid_rt_session_decode(solo, layer, &x[0], &x[1], &x[2], NULL, &x[3]);
  return strcmp(compare(d, &dx, &x[3]), "as on the host") == 0;
}

/* Whether batch entry `entry` of a replayed step's output (`dt`[3]) is
 * zeros, as a padding entry's is. */
static bool isZeroEntry(const Driver *d, hybrid_rt_tensor dt[4],
                        int64_t entry) {
  hybrid_rt_tensor dx = entryOf(&dt[3], entry), zeros = dx;
  zeros.data = calloc(1, bytesOf(&dx));
  zeros.memory = HYBRID_RT_HOST;
  bool zero = strcmp(compare(d, &dx, &zeros), "as on the host") == 0;
  free(zeros.data);
  return zero;
}

/* After a graph's replays: prints each of `session`'s `count` sequences'
 * length in `layer` ("what: sequence b at n"), then frees the graph, the
 * tokens, the session and its `count` batch-1 twins, and resets the
 * model's stream. */
static void endReplays(const Driver *d, hybrid_rt_model *model, int64_t layer,
                       const char *what, hybrid_rt_session *session,
                       hybrid_rt_session **solo, int64_t count,
                       CUgraphExec exec, CUgraph graph, hybrid_rt_tensor t[4],
                       hybrid_rt_tensor dt[4]) {
  hybrid_rt_cache_info cache;
  for (int64_t b = 0; b < count; ++b) {
    hybrid_rt_session_select(session, &b, 1);
    hybrid_rt_session_cache_info(session, layer, &cache);
    printf("%s: sequence %lld at %lld\n", what, (long long)b,
           (long long)cache.length);
  }
  if (exec)
    d->cuGraphExecDestroy(exec);
  if (graph)
    d->cuGraphDestroy(graph);
  freeTokens(d, t, dt);
  hybrid_rt_stream_reset(model);
  hybrid_rt_session_destroy(session);
  for (int64_t b = 0; b < count; ++b)
    hybrid_rt_session_destroy(solo[b]);
}

/* Continuous batching in a CUDA graph: a step of a batch of 2 whose
 * sequences stand at different lengths (sequence 0 stepped twice alone
 * first, selected), captured and replayed twice: each replay steps each
 * sequence from its own device length, as a batch-1 session per sequence
 * on host tensors does. A select while the stream captures is refused (its
 * copy would join the graph). */
static void checkRaggedCapture(const Driver *d, hybrid_rt_model *model,
                               int64_t layer, CUstream stream) {
  hybrid_rt_session_options two = {2, 8, 1}, one = {1, 8, 1};
  hybrid_rt_session *session = NULL, *solo[2] = {NULL, NULL};
  hybrid_rt_session_create(model, &two, &session);
  for (int b = 0; b < 2; ++b)
    hybrid_rt_session_create(model, &one, &solo[b]);
  hybrid_rt_stream_set(model, stream);
  int64_t sequence = 0;
  hybrid_rt_session_select(session, &sequence, 1);
  for (int i = 0; i < 2; ++i) {
    hybrid_rt_tensor t[4], dt[4];
    makeTokens(d, model, layer, 1, t, dt);
    hybrid_rt_session_decode(session, layer, &dt[0], &dt[1], &dt[2], NULL,
                             &dt[3]);
    hybrid_rt_session_decode(solo[0], layer, &t[0], &t[1], &t[2], NULL, &t[3]);
    freeTokens(d, t, dt);
  }
  hybrid_rt_tensor t[4], dt[4];
  makeStepOfTwo(d, model, layer, t, dt);
  hybrid_rt_session_select(session, NULL, 0);
  d->cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
  report("ragged step while the stream captures",
         hybrid_rt_session_decode(session, layer, &dt[0], &dt[1], &dt[2], NULL,
                                  &dt[3]));
  sequence = 1;
  report("select while the stream captures",
         hybrid_rt_session_select(session, &sequence, 1));
  CUgraph graph = NULL;
  CUgraphExec exec = endCapture(d, stream, "ragged capture", &graph);
  const char *replays = exec ? "as on the host" : "no graph";
  for (int i = 0; exec && i < 2; ++i) {
    d->cuGraphLaunch(exec, stream);
    d->cuStreamSynchronize(stream);
    for (int64_t b = 0; b < 2; ++b)
      if (!stepsAsSolo(d, layer, solo[b], t, dt, b))
        replays = b ? "sequence 1 differs" : "sequence 0 differs";
  }
  printf("ragged replays: %s\n", replays);
  endReplays(d, model, layer, "after two replays", session, solo, 2, exec,
             graph, t, dt);
}

/* A step of a selection of 2 entries (sequence 2, padding) captured in a
 * CUDA graph: each replay steps the selection current when it runs, here
 * [2, -1], then [0, 1], then [-1, 2], each entry as a batch-1 session of
 * its sequence steps it on host tensors; padding steps nothing and its
 * output is zeros (the second replay left its rows nonzero). Then the
 * three replays again, queued with no wait (selections written through
 * pinned memory in stream order). Sequences start at lengths 2, 0 and 1. */
static void checkSelectedCapture(const Driver *d, hybrid_rt_model *model,
                                 int64_t layer, CUstream stream) {
  hybrid_rt_session_options three = {3, 8, 1}, one = {1, 8, 1};
  hybrid_rt_session *session = NULL, *solo[3] = {NULL, NULL, NULL};
  hybrid_rt_session_create(model, &three, &session);
  for (int b = 0; b < 3; ++b)
    hybrid_rt_session_create(model, &one, &solo[b]);
  hybrid_rt_stream_set(model, stream);
  const int64_t primed[3] = {2, 0, 1};
  for (int64_t b = 0; b < 3; ++b) {
    hybrid_rt_session_select(session, &b, 1);
    for (int64_t i = 0; i < primed[b]; ++i) {
      hybrid_rt_tensor t[4], dt[4];
      makeTokens(d, model, layer, 1, t, dt);
      hybrid_rt_session_decode(session, layer, &dt[0], &dt[1], &dt[2], NULL,
                               &dt[3]);
      hybrid_rt_session_decode(solo[b], layer, &t[0], &t[1], &t[2], NULL,
                               &t[3]);
      freeTokens(d, t, dt);
    }
  }
  hybrid_rt_tensor t[4], dt[4];
  makeStepOfTwo(d, model, layer, t, dt);
  const int64_t selections[3][2] = {{2, -1}, {0, 1}, {-1, 2}};
  hybrid_rt_session_select(session, selections[0], 2);
  d->cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
  report("selected step while the stream captures",
         hybrid_rt_session_decode(session, layer, &dt[0], &dt[1], &dt[2], NULL,
                                  &dt[3]));
  CUgraph graph = NULL;
  CUgraphExec exec = endCapture(d, stream, "selected capture", &graph);
  const char *replays = exec ? "as on the host" : "no graph";
  for (int i = 0; exec && i < 3; ++i) {
    hybrid_rt_session_select(session, selections[i], 2);
    d->cuGraphLaunch(exec, stream);
    d->cuStreamSynchronize(stream);
    for (int64_t e = 0; e < 2; ++e) {
      int64_t b = selections[i][e];
      if (b >= 0 && !stepsAsSolo(d, layer, solo[b], t, dt, e))
        replays = "an entry differs";
      if (b < 0 && !isZeroEntry(d, dt, e)) /* rows the replay before wrote */
        replays = "a padding entry's output is not zeros";
    }
  }
  printf("selected replays: %s\n", replays);
  /* The three again, queued with no wait between: each select returns
   * before the replay queued ahead of its copy has run. */
  for (int i = 0; exec && i < 3; ++i) {
    hybrid_rt_session_select(session, selections[i], 2);
    d->cuGraphLaunch(exec, stream);
  }
  d->cuStreamSynchronize(stream);
  endReplays(d, model, layer, "after six replays", session, solo, 3, exec,
             graph, t, dt);
}

/* A session on the caller's stream: a prompt of 4 and a step of 1 on
 * device tensors give what another session gives on host tensors. */
static void checkSessionStreams(hybrid_rt_model *model, int64_t layer) {
  Driver d;
  hybrid_rt_layer_info info;
  if (!loadDriver(model, &d) ||
      hybrid_rt_layer_info_get(model, layer, &info) != HYBRID_RT_OK)
    return;
  hybrid_rt_session_options options = {1, 8, 1};
  hybrid_rt_session *onHost = NULL, *onStream = NULL;
  hybrid_rt_session_create(model, &options, &onHost);
  hybrid_rt_session_create(model, &options, &onStream);
  CUstream stream = NULL;
  d.cuStreamCreate(&stream, 0);
  const char *results = "as on the host";
  for (int64_t n = 4; n >= 1; n -= 3) { /* the prompt, then a step */
    hybrid_rt_tensor t[4], dt[4];
    makeTokens(&d, model, layer, n, t, dt);
    hybrid_rt_stream_reset(model);
    hybrid_rt_status host =
        n == 4 ? hybrid_rt_session_prefill(onHost, layer, &t[0], &t[1], &t[2],
                                           NULL, &t[3])
               : hybrid_rt_session_decode(onHost, layer, &t[0], &t[1], &t[2],
                                          NULL, &t[3]);
    hybrid_rt_stream_set(model, stream);
    hybrid_rt_status device =
        n == 4 ? hybrid_rt_session_prefill(onStream, layer, &dt[0], &dt[1],
                                           &dt[2], NULL, &dt[3])
               : hybrid_rt_session_decode(onStream, layer, &dt[0], &dt[1],
                                          &dt[2], NULL, &dt[3]);
    d.cuStreamSynchronize(stream);
    if (host != HYBRID_RT_OK || device != HYBRID_RT_OK)
      results = hybrid_rt_last_error();
    else if (strcmp(compare(&d, &dt[3], &t[3]), "as on the host") != 0)
      results = n == 4 ? "the prompt's differ" : "the step's differ";
    freeTokens(&d, t, dt);
  }
  printf("session on a stream: %s\n", results);
  checkCapture(&d, model, layer, onHost, onStream, stream);
  checkRaggedCapture(&d, model, layer, stream);
  checkSelectedCapture(&d, model, layer, stream);
  hybrid_rt_stream_reset(model);
  hybrid_rt_session_destroy(onHost);
  hybrid_rt_session_destroy(onStream);
  d.cuStreamDestroy(stream);
}
#else
/* Without the CUDA backend no model runs on a GPU. */
static void checkDeviceOperands(hybrid_rt_model *model, int64_t layer,
                                const hybrid_rt_tensor *tq,
                                const hybrid_rt_tensor *tk,
                                const hybrid_rt_tensor *tv,
                                hybrid_rt_tensor *to) {
  (void)model, (void)layer, (void)tq, (void)tk, (void)tv, (void)to;
}
static void checkStreams(hybrid_rt_model *model, int64_t layer,
                         const hybrid_rt_tensor *tq, const hybrid_rt_tensor *tk,
                         const hybrid_rt_tensor *tv, hybrid_rt_tensor *to) {
  (void)model, (void)layer, (void)tq, (void)tk, (void)tv, (void)to;
}
static void checkSessionStreams(hybrid_rt_model *model, int64_t layer) {
  (void)model, (void)layer;
}
#endif

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s DIR LAYER [SHARED]\n", argv[0]);
    return 2;
  }
  hybrid_rt_model *model = NULL;
  hybrid_rt_status status = hybrid_rt_open(argv[1], 1, &model);
  report("open", status);
  if (status != HYBRID_RT_OK)
    return 1;
  int64_t layer = atoll(argv[2]);
  if (argc == 4)
    return checkSession(model, layer, atoll(argv[3])); /* closes the model */
  hybrid_rt_layer_info info;
  report("info", hybrid_rt_layer_info_get(model, layer, &info));
  report("info out of range", hybrid_rt_layer_info_get(model, 1000, &info));

  const int64_t b = 2, s = 9, hq = info.num_heads, hkv = info.num_kv_heads,
                d = info.head_dim, dv = info.v_head_dim;
  float *q = calloc(b * s * hq * d, sizeof(float));
  float *k = calloc(b * s * hkv * d, sizeof(float));
  float *v = calloc(b * s * hkv * dv, sizeof(float));
  float *o = calloc(b * s * hq * dv, sizeof(float));
  float sink[64] = {0};
  hybrid_rt_tensor tq = {q, HYBRID_RT_F32, 4, {b, s, hq, d}, HYBRID_RT_HOST};
  hybrid_rt_tensor tk = {k, HYBRID_RT_F32, 4, {b, s, hkv, d}, HYBRID_RT_HOST};
  hybrid_rt_tensor tv = {v, HYBRID_RT_F32, 4, {b, s, hkv, dv}, HYBRID_RT_HOST};
  hybrid_rt_tensor to = {o, HYBRID_RT_F32, 4, {b, s, hq, dv}, HYBRID_RT_HOST};
  hybrid_rt_tensor ts = {sink, HYBRID_RT_F32, 1, {hq, 0, 0, 0}, HYBRID_RT_HOST};
  report("prefill", hybrid_rt_prefill(model, layer, &tq, &tk, &tv, NULL, &to));

  hybrid_rt_tensor bad = tk;
  bad.shape[2] = hkv + 1;
  report("k heads", hybrid_rt_prefill(model, layer, &tq, &bad, &tv, NULL, &to));
  bad = tv;
  bad.shape[1] = s + 1;
  report("v seq", hybrid_rt_prefill(model, layer, &tq, &tk, &bad, NULL, &to));
  bad = to;
  bad.rank = 3;
  report("out rank",
         hybrid_rt_prefill(model, layer, &tq, &tk, &tv, NULL, &bad));
  bad = tq;
  bad.dtype = HYBRID_RT_BF16;
  report("q dtype", hybrid_rt_prefill(model, layer, &bad, &tk, &tv, NULL, &to));
  bad.dtype = (hybrid_rt_dtype)9;
  report("q dtype 9",
         hybrid_rt_prefill(model, layer, &bad, &tk, &tv, NULL, &to));
  bad = tv;
  bad.memory = HYBRID_RT_DEVICE;
  report("v memory",
         hybrid_rt_prefill(model, layer, &tq, &tk, &bad, NULL, &to));
  bad.memory = (hybrid_rt_memory)7;
  report("v memory 7",
         hybrid_rt_prefill(model, layer, &tq, &tk, &bad, NULL, &to));
  checkDeviceOperands(model, layer, &tq, &tk, &tv, &to);
  report("k null", hybrid_rt_prefill(model, layer, &tq, NULL, &tv, NULL, &to));
  report("sinks", hybrid_rt_prefill(model, layer, &tq, &tk, &tv, &ts, &to));
  report("layer", hybrid_rt_prefill(model, -1, &tq, &tk, &tv, NULL, &to));
  if (strcmp(hybrid_rt_device_name(model), "cpu") == 0)
    report("stream on the CPU", hybrid_rt_stream_set(model, NULL));
  report("stream on no model", hybrid_rt_stream_set(NULL, NULL));
  checkStreams(model, layer, &tq, &tk, &tv, &to);

  hybrid_rt_close(model);
  free(q);
  free(k);
  free(v);
  free(o);
  return 0;
}

/* Prompt of 4, then steps: every misuse of a session is refused. Closes
 * the model before destroying the session, which keeps it usable. */
/* Key scales: K=V layers that keep their cache take one of [head_dim]
 * f32; the others (and layers reading a K=V cache) refuse it. */
static void checkKeyScales(hybrid_rt_model *model) {
  int64_t kEqV = -1, reader = -1, other = -1;
  for (int64_t i = 0; i < hybrid_rt_num_layers(model); ++i) {
    hybrid_rt_layer_info info;
    if (hybrid_rt_layer_info_get(model, i, &info) != HYBRID_RT_OK ||
        !info.has_kernel)
      continue;
    if (!info.k_eq_v && other < 0)
      other = i;
    else if (info.k_eq_v && info.source_layer < 0 && kEqV < 0)
      kEqV = i;
    else if (info.k_eq_v && info.source_layer >= 0 && reader < 0)
      reader = i;
  }
  if (kEqV < 0 || reader < 0 || other < 0)
    return;
  hybrid_rt_layer_info info;
  hybrid_rt_layer_info_get(model, kEqV, &info);
  float scale[512];
  for (int i = 0; i < 512; ++i)
    scale[i] = 0.5f + (float)i / 512;
  hybrid_rt_tensor t = {
      scale, HYBRID_RT_F32, 1, {info.head_dim}, HYBRID_RT_HOST};
  report("key scale", hybrid_rt_key_scale_set(model, kEqV, &t));
  report("key scale of a layer reading it",
         hybrid_rt_key_scale_set(model, reader, &t));
  report("key scale of a layer without K=V",
         hybrid_rt_key_scale_set(model, other, &t));
  hybrid_rt_tensor wrong = t;
  wrong.shape[0] = 3;
  report("key scale shape", hybrid_rt_key_scale_set(model, kEqV, &wrong));
  wrong = t;
  wrong.dtype = HYBRID_RT_BF16;
  report("key scale dtype", hybrid_rt_key_scale_set(model, kEqV, &wrong));
  scale[3] = INFINITY;
  report("key scale not finite", hybrid_rt_key_scale_set(model, kEqV, &t));
  scale[3] = 1.0f;
  report("key scale of no model", hybrid_rt_key_scale_set(NULL, kEqV, &t));
  report("key scale of layer -1", hybrid_rt_key_scale_set(model, -1, &t));
  report("key scale reset", hybrid_rt_key_scale_set(model, kEqV, NULL));
}

/* Cache scales on a session of its own: f8 caches own layers keep (others
 * refuse them), read by the layers sharing them; positive and finite. */
static void checkCacheScales(hybrid_rt_model *model, int64_t layer,
                             int64_t shared) {
  hybrid_rt_session *session = NULL;
  hybrid_rt_session_options options = {1, 6, 1};
  report("cache scales session",
         hybrid_rt_session_create(model, &options, &session));
  float ks = 0, vs = 0;
  report("cache scales",
         hybrid_rt_session_cache_scales_set(session, layer, 0.5f, 0.25f));
  report("cache scales of the sharing layer",
         hybrid_rt_session_cache_scales_get(session, shared, &ks, &vs));
  printf("cache scales read: %g %g\n", ks, vs);
  report("cache scales set on the sharing layer",
         hybrid_rt_session_cache_scales_set(session, shared, 1, 1));
  report("cache scales nan",
         hybrid_rt_session_cache_scales_set(session, layer, NAN, 1));
  report("cache scales from the prompt",
         hybrid_rt_session_cache_scales_from_prompt(session, layer, 200, 100));
  report("cache scales from the prompt, target 0",
         hybrid_rt_session_cache_scales_from_prompt(session, layer, 200, 0));
  report("cache scales get null",
         hybrid_rt_session_cache_scales_get(session, layer, NULL, &vs));
  report("cache scales of no session",
         hybrid_rt_session_cache_scales_set(NULL, layer, 1, 1));
  hybrid_rt_session_destroy(session);
}

/* Cache rows written into a session's empty layer read back as they were
 * (values exact in every cache dtype); reads past what is held, of a layer
 * reading another's cache, or without v are refused. */
static void checkCacheRows(hybrid_rt_model *model,
                           const hybrid_rt_session_options *options,
                           int64_t layer, int64_t shared, int64_t hkv,
                           int64_t d, int64_t dv) {
  hybrid_rt_session *session = NULL;
  report("cache rows session",
         hybrid_rt_session_create(model, options, &session));
  const int64_t b = options->batch, n = 3;
  int64_t kn = b * n * hkv * d, vn = b * n * hkv * dv;
  float *rows = calloc(2 * (kn + vn), sizeof(float));
  for (int64_t i = 0; i < kn + vn; ++i)
    rows[i] = (float)(i % 8 - 4) * 0.5f;
  hybrid_rt_tensor wk = {
      rows, HYBRID_RT_F32, 4, {b, n, hkv, d}, HYBRID_RT_HOST};
  hybrid_rt_tensor wv = {
      rows + kn, HYBRID_RT_F32, 4, {b, n, hkv, dv}, HYBRID_RT_HOST};
  hybrid_rt_tensor rk = wk, rv = wv;
  rk.data = rows + kn + vn;
  rv.data = rows + 2 * kn + vn;
  report("cache write",
         hybrid_rt_session_cache_write(session, layer, 0, &wk, &wv));
  report("cache write at 0 again",
         hybrid_rt_session_cache_write(session, layer, 0, &wk, &wv));
  report("cache read",
         hybrid_rt_session_cache_read(session, layer, 0, &rk, &rv));
  printf("cache rows read back: %s\n",
         memcmp(rows, rows + kn + vn, (kn + vn) * sizeof(float)) == 0
             ? "as written"
             : "changed");
  report("cache read past the length",
         hybrid_rt_session_cache_read(session, layer, 1, &rk, &rv));
  report("cache read of the sharing layer",
         hybrid_rt_session_cache_read(session, shared, 0, &rk, &rv));
  report("cache read without v",
         hybrid_rt_session_cache_read(session, layer, 0, &rk, NULL));
  report("cache write of no session",
         hybrid_rt_session_cache_write(NULL, layer, 0, &wk, &wv));
  wk.shape[1] = wv.shape[1] = -1;
  report("cache write of -1 tokens",
         hybrid_rt_session_cache_write(session, layer, 3, &wk, &wv));
  report("append of -1 tokens",
         hybrid_rt_session_append(session, layer, &wk, &wv));
  hybrid_rt_session_destroy(session);
  free(rows);
}

static int checkSession(hybrid_rt_model *model, int64_t layer, int64_t shared) {
  checkKeyScales(model);
  checkCacheScales(model, layer, shared);
  checkSessionStreams(model, layer);
  hybrid_rt_layer_info info;
  report("info", hybrid_rt_layer_info_get(model, layer, &info));
  const int64_t b = 1, n = 4, hq = info.num_heads, hkv = info.num_kv_heads,
                d = info.head_dim, dv = info.v_head_dim;
  hybrid_rt_session *session = NULL;
  hybrid_rt_session_options bad = {1, 0, 1};
  report("create max_seq 0", hybrid_rt_session_create(model, &bad, &session));
  printf("host memory: %s\n",
         hybrid_rt_host_memory_bytes() > 0 ? "known" : "unknown");
  hybrid_rt_session_options huge = {1, (int64_t)1 << 50, 1};
  report("create past host memory",
         hybrid_rt_session_create(model, &huge, &session));
  hybrid_rt_session_options options = {b, 6, 2};
  report("create", hybrid_rt_session_create(model, &options, &session));
  float *q = calloc(b * n * hq * d, sizeof(float));
  float *k = calloc(b * n * hkv * d, sizeof(float));
  float *v = calloc(b * n * hkv * dv, sizeof(float));
  float *o = calloc(b * n * hq * dv, sizeof(float));
  hybrid_rt_tensor tq = {q, HYBRID_RT_F32, 4, {b, n, hq, d}, HYBRID_RT_HOST};
  hybrid_rt_tensor tk = {k, HYBRID_RT_F32, 4, {b, n, hkv, d}, HYBRID_RT_HOST};
  hybrid_rt_tensor tv = {v, HYBRID_RT_F32, 4, {b, n, hkv, dv}, HYBRID_RT_HOST};
  hybrid_rt_tensor to = {o, HYBRID_RT_F32, 4, {b, n, hq, dv}, HYBRID_RT_HOST};
  report("prefill before the source",
         hybrid_rt_session_prefill(session, shared, &tq, &tk, &tv, NULL, &to));
  {
    /* Shapes only: the call fails before reading any data. */
    hybrid_rt_tensor lq = tq, lk = tk, lv = tv, lo = to;
    lq.shape[1] = lk.shape[1] = lv.shape[1] = lo.shape[1] = 7;
    report("prompt past max_seq",
           hybrid_rt_session_prefill(session, layer, &lq, &lk, &lv, NULL, &lo));
  }
  report("prefill",
         hybrid_rt_session_prefill(session, layer, &tq, &tk, &tv, NULL, &to));
  report("prefill again",
         hybrid_rt_session_prefill(session, layer, &tq, &tk, &tv, NULL, &to));
  report("prefill shared",
         hybrid_rt_session_prefill(session, shared, &tq, &tk, &tv, NULL, &to));
  hybrid_rt_tensor sq = tq, sk = tk, sv = tv, so = to;
  sq.shape[1] = sk.shape[1] = sv.shape[1] = so.shape[1] = 3;
  report("step of 3",
         hybrid_rt_session_decode(session, layer, &sq, &sk, &sv, NULL, &so));
  sq.shape[1] = sk.shape[1] = sv.shape[1] = so.shape[1] = 2;
  report("shared first",
         hybrid_rt_session_decode(session, shared, &sq, NULL, NULL, NULL, &so));
  report("step",
         hybrid_rt_session_decode(session, layer, &sq, &sk, &sv, NULL, &so));
  report("shared with k",
         hybrid_rt_session_decode(session, shared, &sq, &sk, &sv, NULL, &so));
  report("shared step",
         hybrid_rt_session_decode(session, shared, &sq, NULL, NULL, NULL, &so));
  sq.shape[1] = sk.shape[1] = sv.shape[1] = so.shape[1] = 1;
  report("past max_seq",
         hybrid_rt_session_decode(session, layer, &sq, &sk, &sv, NULL, &so));
  report("append to shared",
         hybrid_rt_session_append(session, shared, &sk, &sv));
  report("append past max_seq",
         hybrid_rt_session_append(session, layer, &sk, &sv));
  {
    /* Beam search of one sequence, and a rejected draft forgotten. */
    int64_t order[2] = {0, 1};
    report("reorder", hybrid_rt_session_reorder(session, order, 1));
    report("reorder of 2", hybrid_rt_session_reorder(session, order, 2));
    report("reorder null", hybrid_rt_session_reorder(session, NULL, 1));
    report("truncate", hybrid_rt_session_truncate(session, 5));
    report("truncate -1", hybrid_rt_session_truncate(session, -1));
    /* Continuous batching: a selection of the batch's sequences. */
    report("select", hybrid_rt_session_select(session, order, 1));
    report("select of 2", hybrid_rt_session_select(session, order, 2));
    report("select null", hybrid_rt_session_select(session, NULL, 1));
    report("select none", hybrid_rt_session_select(session, NULL, 0));
    report("step after truncate",
           hybrid_rt_session_decode(session, layer, &sq, &sk, &sv, NULL, &so));
  }
  checkCacheRows(model, &options, layer, shared, hkv, d, dv);
  hybrid_rt_cache_info cache;
  report("cache info", hybrid_rt_session_cache_info(session, layer, &cache));
  printf("cache: %s, %lld rows, %lld tokens seen\n", cache.policy,
         (long long)cache.rows, (long long)cache.length);
  hybrid_rt_session_reset(session);
  report("cache info", hybrid_rt_session_cache_info(session, layer, &cache));
  printf("after reset: %lld tokens seen\n", (long long)cache.length);
  hybrid_rt_close(model);
  report("prefill after close",
         hybrid_rt_session_prefill(session, layer, &tq, &tk, &tv, NULL, &to));
  hybrid_rt_session_destroy(session);
  free(q);
  free(k);
  free(v);
  free(o);
  return 0;
}
