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
#include <cuda.h>
#endif
#include <dlfcn.h>
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
/* GPU models, with $HYBRID_CUDA_DRIVER the driver they run on: v in device
 * memory the driver allocated, whole and then 4 bytes short. cuda.h gives
 * the entry points' exact types, so that the calls through dlsym'd pointers
 * match the definitions (UBSan's -fsanitize=function checks). */
static void checkDeviceOperands(hybrid_rt_model *model, int64_t layer,
                                const hybrid_rt_tensor *tq,
                                const hybrid_rt_tensor *tk,
                                const hybrid_rt_tensor *tv,
                                hybrid_rt_tensor *to) {
  typedef CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  typedef CUresult (*MemFree)(CUdeviceptr);
  const char *path = getenv("HYBRID_CUDA_DRIVER");
  void *driver = path ? dlopen(path, RTLD_NOW) : NULL;
  MemAlloc memAlloc = driver ? (MemAlloc)dlsym(driver, "cuMemAlloc_v2") : NULL;
  MemFree memFree = driver ? (MemFree)dlsym(driver, "cuMemFree_v2") : NULL;
  if (!memAlloc || !memFree || strcmp(hybrid_rt_device_name(model), "cpu") == 0)
    return;
  size_t bytes = sizeof(float);
  for (int i = 0; i < tv->rank; ++i)
    bytes *= (size_t)tv->shape[i];
  CUdeviceptr whole = 0, clipped = 0;
  if (memAlloc(&whole, bytes) != CUDA_SUCCESS ||
      memAlloc(&clipped, bytes - 4) != CUDA_SUCCESS)
    return;
  hybrid_rt_tensor device = *tv;
  device.memory = HYBRID_RT_DEVICE;
  device.data = (void *)(uintptr_t)whole;
  report("v on the device",
         hybrid_rt_prefill(model, layer, tq, tk, &device, NULL, to));
  device.data = (void *)(uintptr_t)clipped;
  report("v on the device, 4 bytes short",
         hybrid_rt_prefill(model, layer, tq, tk, &device, NULL, to));
  memFree(whole);
  memFree(clipped);
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

  hybrid_rt_close(model);
  free(q);
  free(k);
  free(v);
  free(o);
  return 0;
}

/* Prompt of 4, then steps: every misuse of a session is refused. Closes
 * the model before destroying the session, which keeps it usable. */
static int checkSession(hybrid_rt_model *model, int64_t layer, int64_t shared) {
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
