/*===- hybrid_rt.h - C ABI of the hybrid attention runtime --------*- C -*-===*
 *
 * Loads the artifacts `hybrid-compile --emit artifacts -o DIR` writes
 * (DIR/manifest.json and the kernel library it names) and runs attention
 * layers on [batch, seq, heads, head_dim] row-major float32 tensors, on a
 * pool of CPU threads. No MLIR dependency.
 *
 * Every call that can fail returns a hybrid_rt_status; the message of the
 * last failure on the calling thread is hybrid_rt_last_error(). A model is
 * not thread-safe: call it from one thread at a time (it parallelises each
 * call internally).
 *
 *===----------------------------------------------------------------------===*/

#ifndef HYBRID_RT_HYBRID_RT_H
#define HYBRID_RT_HYBRID_RT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hybrid_rt_status {
  HYBRID_RT_OK = 0,
  HYBRID_RT_INVALID_ARGUMENT = 1, /* shapes, dtypes, layer index, null */
  HYBRID_RT_LOAD_ERROR = 2,       /* manifest or kernel library */
  HYBRID_RT_UNSUPPORTED = 3       /* valid, but not implemented yet */
} hybrid_rt_status;

typedef enum hybrid_rt_dtype {
  HYBRID_RT_F32 = 0,
  HYBRID_RT_F16 = 1,
  HYBRID_RT_BF16 = 2
} hybrid_rt_dtype;

/* A dense row-major tensor the caller owns. */
typedef struct hybrid_rt_tensor {
  void *data;
  hybrid_rt_dtype dtype;
  int32_t rank;
  int64_t shape[4];
} hybrid_rt_tensor;

/* What a layer computes, as the manifest describes it. */
typedef struct hybrid_rt_layer_info {
  int64_t index;
  const char *kind;   /* full, sliding, chunked, linear, mamba, hybrid */
  int32_t has_kernel; /* 0: not an attention layer the runtime can run */
  int64_t num_heads, num_kv_heads, head_dim, v_head_dim;
  int64_t window, chunk; /* 0 when not used */
  int32_t causal, sinks, k_eq_v;
  int64_t source_layer; /* -1 unless the layer reads another's cache */
} hybrid_rt_layer_info;

typedef struct hybrid_rt_model hybrid_rt_model;

/* Opens DIR/manifest.json and its kernel library. `num_threads` <= 0 takes
 * $HYBRID_NUM_THREADS, else the number of hardware threads. */
hybrid_rt_status hybrid_rt_open(const char *dir, int32_t num_threads,
                                hybrid_rt_model **model);
void hybrid_rt_close(hybrid_rt_model *model);

const char *hybrid_rt_last_error(void);

int64_t hybrid_rt_num_layers(const hybrid_rt_model *model);
int32_t hybrid_rt_num_threads(const hybrid_rt_model *model);
hybrid_rt_status hybrid_rt_layer_info_get(const hybrid_rt_model *model,
                                          int64_t layer,
                                          hybrid_rt_layer_info *info);

/* Attention of layer `layer` over one prompt: q [B, S, Hq, D],
 * k [B, S, Hkv, D], v [B, S, Hkv, Dv] at positions 0..S-1, sinks [Hq] when
 * the layer has sinks (else NULL), out [B, S, Hq, Dv]. Positional encoding,
 * scale and score modifiers are applied inside; q, k and v are not
 * modified. */
hybrid_rt_status hybrid_rt_prefill(hybrid_rt_model *model, int64_t layer,
                                   const hybrid_rt_tensor *q,
                                   const hybrid_rt_tensor *k,
                                   const hybrid_rt_tensor *v,
                                   const hybrid_rt_tensor *sinks,
                                   hybrid_rt_tensor *out);

#ifdef __cplusplus
}
#endif

#endif /* HYBRID_RT_HYBRID_RT_H */
