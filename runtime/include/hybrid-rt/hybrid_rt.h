/*===- hybrid_rt.h - C ABI of the hybrid attention runtime --------*- C -*-===*
 *
 * Loads the artifacts `hybrid-compile --emit artifacts -o DIR` writes
 * (DIR/manifest.json and the kernel library it names) and runs attention
 * layers on [batch, seq, heads, head_dim] row-major float32 tensors (GPU
 * models: float32 or bfloat16), on a pool of CPU threads or an NVIDIA GPU.
 * No MLIR dependency.
 *
 * Every call that can fail returns a hybrid_rt_status; the message of the
 * last failure on the calling thread is hybrid_rt_last_error(). Calls on
 * one model and its sessions may come from several threads: they run one
 * at a time (each parallelises internally).
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
  HYBRID_RT_UNSUPPORTED = 3,      /* valid, but not implemented yet */
  HYBRID_RT_OUT_OF_MEMORY = 4,    /* caches or scratch cannot be allocated */
  HYBRID_RT_INTERNAL_ERROR = 5    /* a bug in the runtime (an exception it
                                     did not expect): the message names it */
} hybrid_rt_status;

typedef enum hybrid_rt_dtype {
  HYBRID_RT_F32 = 0,
  HYBRID_RT_F16 = 1,
  HYBRID_RT_BF16 = 2
} hybrid_rt_dtype;

/* Where a tensor's data lives. */
typedef enum hybrid_rt_memory {
  HYBRID_RT_HOST = 0,  /* host memory (the default of a zeroed tensor) */
  HYBRID_RT_DEVICE = 1 /* CUDA device memory: GPU models only, no copies */
} hybrid_rt_memory;
/* Device tensors are used on the model's own stream, which waits for the
 * work queued on the legacy default stream (stream 0) before it reads
 * them; work queued on other streams that writes them must be complete
 * (cuStreamSynchronize) before the call. A call returns once its outputs
 * are written. On the caller's stream instead (hybrid_rt_stream_set),
 * calls are ordered with the caller's work on that stream. A device tensor
 * the kernels could not read in place is INVALID_ARGUMENT before anything
 * runs: memory CUDA neither allocated nor registered (unless the GPU reads
 * pageable memory), an allocation that ends before the tensor does, or
 * memory of another GPU. */

/* A dense row-major tensor the caller owns. */
typedef struct hybrid_rt_tensor {
  void *data;
  hybrid_rt_dtype dtype;
  int32_t rank;
  int64_t shape[4];
  hybrid_rt_memory memory;
} hybrid_rt_tensor;

/* What a layer computes, as the manifest describes it. */
typedef struct hybrid_rt_layer_info {
  int64_t index;
  const char *kind;   /* the schedule's layer kind: full, sliding, ... */
  int32_t has_kernel; /* 0: not an attention layer the runtime can run */
  int64_t num_heads, num_kv_heads, head_dim, v_head_dim;
  int64_t window, chunk; /* 0 when not used */
  int32_t causal, sinks, k_eq_v;
  int64_t source_layer; /* -1 unless the layer reads another's cache */
} hybrid_rt_layer_info;

typedef struct hybrid_rt_model hybrid_rt_model;

/* Opens DIR/manifest.json and its kernel library. `num_threads` <= 0 takes
 * $HYBRID_NUM_THREADS, else the number of hardware threads. A cuda:<chip>
 * manifest runs on GPU $HYBRID_CUDA_DEVICE (default 0) through libcuda.so.1,
 * loaded at this call: HYBRID_RT_UNSUPPORTED if the runtime was built
 * without CUDA, HYBRID_RT_LOAD_ERROR if there is no driver or GPU. */
hybrid_rt_status hybrid_rt_open(const char *dir, int32_t num_threads,
                                hybrid_rt_model **model);
/* Closes the model once no call on it is running; a model that still has
 * sessions is freed when the last of them is destroyed (their caches are
 * the model's on GPUs), so the two may be released in either order. */
void hybrid_rt_close(hybrid_rt_model *model);

const char *hybrid_rt_last_error(void);

/* The host memory CPU sessions must fit in (their caches are refused with
 * HYBRID_RT_OUT_OF_MEMORY beyond it): physical memory, or a smaller cgroup
 * limit (a container's); 0 if unknown. */
int64_t hybrid_rt_host_memory_bytes(void);

int64_t hybrid_rt_num_layers(const hybrid_rt_model *model);
int32_t hybrid_rt_num_threads(const hybrid_rt_model *model);
hybrid_rt_status hybrid_rt_layer_info_get(const hybrid_rt_model *model,
                                          int64_t layer,
                                          hybrid_rt_layer_info *info);

/* Attention of layer `layer` over one prompt: q [B, S, Hq, D],
 * k [B, S, Hkv, D], v [B, S, Hkv, Dv] at positions 0..S-1, sinks [Hq] when
 * the layer has sinks (else NULL), out [B, S, Hq, Dv]. Positional encoding,
 * scale and score modifiers are applied inside; q, k and v are not
 * modified. K=V layers' values are k: their v is NULL or k itself (the
 * same tensor), in this call and every session call. Latent layers' values
 * are the first Dv dims of k (MLA's absorbed form): their v is NULL or k
 * itself too. */
hybrid_rt_status hybrid_rt_prefill(hybrid_rt_model *model, int64_t layer,
                                   const hybrid_rt_tensor *q,
                                   const hybrid_rt_tensor *k,
                                   const hybrid_rt_tensor *v,
                                   const hybrid_rt_tensor *sinks,
                                   hybrid_rt_tensor *out);

/* K=V layers' key scale: scale [head_dim] f32 (host memory, or device
 * memory on GPU models) multiplies the keys per dim before RoPE. A K=V
 * layer's values are what its calls pass as k (and as v, or v NULL), and
 * its keys are derived from them: where the model's key norm has
 * a learned weight and its value norm none (Gemma 4: k_norm and v_norm of
 * one projection), pass the value-normed projection and set the weight
 * here. NULL restores ones, the default. Set it before the layer's first
 * call: it applies in every session, to the layer and to the layers reading
 * its cache (a later change applies to every cached token: caches keep
 * the values, and kernels derive keys at each use). CUDA graph replays read it
 * where it is. Other layers take their keys as they are: INVALID_ARGUMENT. */
hybrid_rt_status hybrid_rt_key_scale_set(hybrid_rt_model *model, int64_t layer,
                                         const hybrid_rt_tensor *scale);

/* Where a model runs: "cpu", or the GPU's name. */
const char *hybrid_rt_device_name(const hybrid_rt_model *model);

/* GPU models: queue the model's work on the caller's CUDA stream `stream`
 * (a CUstream; NULL is the legacy default stream) instead of the model's
 * own. A call whose tensors are all device tensors then returns once its
 * work is queued: its outputs are ready in that stream's order, and errors
 * of its kernels surface at the caller's synchronization or a later call.
 * Calls with a host tensor still return once done. The model's work stays
 * in call order across streams (a new stream first waits for the earlier
 * calls' work). The stream must outlive its use: reset or set another
 * before destroying it. CPU models: HYBRID_RT_UNSUPPORTED. Decode steps
 * and appends on device tensors can be captured in a CUDA graph on the
 * caller's stream: the kernels read each layer's length from device
 * memory and advance it, so each replay is the next step. Once a call was
 * captured, calls outside a capture read the lengths back first (waiting
 * for the stream) and report replays past max_seq. Prompts, sessions and
 * host tensors in a capture, and calls on the legacy default stream while
 * a blocking stream captures, return HYBRID_RT_UNSUPPORTED before queueing
 * anything. runtime/README.md has an example. */
hybrid_rt_status hybrid_rt_stream_set(hybrid_rt_model *model, void *stream);
/* Back to the model's own stream, each call returning once done. */
hybrid_rt_status hybrid_rt_stream_reset(hybrid_rt_model *model);

/* GPU models: device milliseconds of the last prefill's kernels, measured
 * with CUDA events (host copies excluded). */
typedef struct hybrid_rt_device_time {
  double prepare_ms;   /* RoPE, scale and bf16 conversion of q, k, v */
  double attention_ms; /* the flash-attention kernel */
} hybrid_rt_device_time;
hybrid_rt_status hybrid_rt_device_time_get(const hybrid_rt_model *model,
                                           hybrid_rt_device_time *time);

/*===----------------------------------------------------------------------===*
 * Sessions: per-layer KV caches, prefill then decode
 *===----------------------------------------------------------------------===*/

/* A batch of sequences, with every attention layer's cache allocated by the
 * policy the schedule planned:
 *   full    max_seq tokens;
 *   ring    sliding window W: the last W-1 tokens plus the current ones
 *           (W + max_step_tokens - 1 rows), whatever the context length;
 *   chunk   chunk C: the current chunk (C + max_step_tokens - 1 rows);
 *   shared  no storage: the layer reads its source layer's cache;
 * K=V layers' caches hold their values only, from which the kernels derive
 * the keys (hybrid_rt_key_scale_set) as they read them; latent layers'
 * (CPU models) their keys only, whose first Dv dims the kernels read as the
 * values. CPU caches hold f32
 * (the kernels' type), or bf16, f16 or f8 (OCP E4M3FN, saturating at +-448;
 * scaled by hybrid_rt_session_cache_scales_set) for artifacts compiled with
 * --kv-dtype (the manifest's cache_dtype), rounded to nearest even as they are
 * stored; on GPUs they live in device memory as bf16. Each layer advances on
 * its own: call every layer once per step, a shared layer after its source. */
typedef struct hybrid_rt_session hybrid_rt_session;

typedef struct hybrid_rt_session_options {
  int64_t batch;           /* sequences */
  int64_t max_seq;         /* tokens per sequence, prompt and generated */
  int64_t max_step_tokens; /* most tokens one decode call brings; >= 1 */
} hybrid_rt_session_options;

typedef struct hybrid_rt_cache_info {
  const char *policy;   /* full, ring, chunk, shared, none */
  int64_t rows;         /* token rows per sequence (0: no storage) */
  int64_t bytes;        /* for the whole batch */
  int64_t length;       /* tokens the layer has seen (of the first
                           selected sequence: hybrid_rt_session_select) */
  int64_t source_layer; /* shared: whose cache it reads; else -1 */
  int32_t k_eq_v;       /* values are k; keys derived from them */
  int64_t mirror_rows;  /* GPU rings: rows past `rows` repeating their first
                           (the flash kernel's key tiles); in `bytes` */
  int64_t first_held;   /* the oldest position the cache (its source's, for
                           shared layers) holds: it holds first_held to
                           length - 1 (hybrid_rt_session_cache_read) */
  const char *dtype;    /* what its rows hold: f32, bf16, f16 or f8 (its
                           source's, for shared layers; "" for none) */
  int32_t latent;       /* keys only: its values are their first v_head_dim
                           dims (pass v = NULL) */
} hybrid_rt_cache_info;

hybrid_rt_status
hybrid_rt_session_create(hybrid_rt_model *model,
                         const hybrid_rt_session_options *options,
                         hybrid_rt_session **session);
/* Frees the session's caches (and its model, if that was closed and this
 * was its last session). */
void hybrid_rt_session_destroy(hybrid_rt_session *session);
/* Empties every cache, of every sequence (allocations are kept; the
 * selection stays). */
void hybrid_rt_session_reset(hybrid_rt_session *session);
/* Continuous batching: the calls that follow (prefill, decode, append,
 * truncate, cache_read, cache_write; cache_info's length and first_held)
 * act on sequences sequences[0..count) of the batch, distinct and in
 * [0, batch), in that order: their tensors' batch dim is count, entry i
 * holding sequence sequences[i]; an entry -1 is padding, which the calls
 * skip (its rows of out are zeros, on GPUs too, where a step's padding
 * reads no key; no other tensor's are read or written). Every sequence
 * keeps its own length in each layer, so a server prefills a new request
 * into a free sequence while the others are mid-generation, steps those
 * still generating together, and truncates a finished one to 0 to free
 * it (f8 scales stay the layer's: a prompt sets them only while every
 * sequence of the layer is empty). A decode step runs every selected sequence
 * at once, each at its own length; prompts and cache copies run once per run of
 * sequences consecutive in the batch and in the selection (on CPUs, at one
 * length); each check passes for all before any runs. count 0 (sequences may be
 * NULL), or every sequence in order, selects the whole batch again: the
 * default. Reorder and reset act on the whole batch whatever the selection. The
 * selection is the session's: threads sharing a session select and call under a
 * lock of their own. GPU models step a selection in one launch per kernel too
 * (each sequence's length lives in device memory, the selection too, copied
 * here in the model's stream order without waiting for the stream, unless the
 * previous select's copy has not run yet): a CUDA graph that captured a step of
 * count entries steps, at each replay, the first count entries of the selection
 * current when it runs (padding past the selection's end), so a server captures
 * a graph per batch size once and selects its live sequences, padded with -1,
 * before each replay. Selecting while the stream is capturing is
 * HYBRID_RT_UNSUPPORTED. */
hybrid_rt_status hybrid_rt_session_select(hybrid_rt_session *session,
                                          const int64_t *sequences,
                                          int64_t count);
/* Beam search and parallel sampling: sequence i of every layer's cache
 * takes what sequence order[i] holds (count = batch entries in [0, batch);
 * they may repeat, as beams that continue the same prefix do: transformers'
 * reorder_cache). Copies the rows that hold tokens of each sequence that
 * changes (a full cache's first `length`): dense caches make a reordering
 * cost a copy of those sequences' caches. */
hybrid_rt_status hybrid_rt_session_reorder(hybrid_rt_session *session,
                                           const int64_t *order, int64_t count);
/* Speculative decoding: forgets the tokens at positions `length` and later
 * (the rejected drafts of a verifying step), so that every layer holding
 * more tokens holds its first `length` and steps on from there. A ring or
 * chunk cache has overwritten its oldest rows: it goes back as far as they
 * still hold every key the next step of each layer reading it sees, at
 * least max_step_tokens tokens from the most it held (a layer reading
 * another's cache that lags behind it may step over the last
 * max_step_tokens tokens its source holds, and holds truncation back
 * further). Else INVALID_ARGUMENT, naming the layer and how far it can go,
 * before any layer changes. Truncating to 0 empties the caches, as
 * hybrid_rt_session_reset does. */
hybrid_rt_status hybrid_rt_session_truncate(hybrid_rt_session *session,
                                            int64_t length);
hybrid_rt_status hybrid_rt_session_cache_info(const hybrid_rt_session *session,
                                              int64_t layer,
                                              hybrid_rt_cache_info *info);
/* Bytes of every layer's cache together. */
int64_t hybrid_rt_session_cache_bytes(const hybrid_rt_session *session);

/* f8 caches' scales (vLLM's k_scale and v_scale: a calibrated checkpoint's,
 * or the largest magnitude of representative keys and values over 448):
 * layer `layer`'s cache stores keys / k_scale and values / v_scale rounded
 * to E4M3FN (keys as the cache holds them: rotated), and its steps attend
 * over the stored elements times the scales (their queries times k_scale,
 * outputs times v_scale: one f32 rounding more). 1 and 1, the default,
 * store keys and values as they are: magnitudes past 448 saturate, and
 * below 2^-6 (E4M3FN's subnormals) keep fewer than 4 significant bits.
 * Set them while the layer's cache is empty (after create or reset; they
 * stay through resets), or to the scales it holds (a restore into one
 * sequence while others hold tokens: hybrid_rt_session_select). K=V layers keep
 * one tensor, the values, from which keys are derived, and latent layers
 * one, the keys: k_scale must equal v_scale. Layers that read another layer's
 * cache read it at that layer's scales. Other caches (f32, bf16, f16, GPU
 * caches): INVALID_ARGUMENT. */
hybrid_rt_status hybrid_rt_session_cache_scales_set(hybrid_rt_session *session,
                                                    int64_t layer,
                                                    float k_scale,
                                                    float v_scale);
/* f8 caches: scales from each prompt instead. Whenever tokens enter the
 * layer's empty cache (its prompt, an append or a step after create or
 * reset), k_scale becomes their largest finite key magnitude (rotated, as
 * the cache holds keys) over k_target, and v_scale their largest value
 * magnitude over v_target (K=V layers: the values', over v_target), so that
 * the prompt's keys and values reach k_target and v_target and later
 * tokens have room up to 448 (vLLM's calculate_kv_scales: 200 and 100); 1
 * where a tensor has no finite magnitude above 0. Targets lie in (0, 448].
 * The same conditions as hybrid_rt_session_cache_scales_set, which ends it. */
hybrid_rt_status hybrid_rt_session_cache_scales_from_prompt(
    hybrid_rt_session *session, int64_t layer, float k_target, float v_target);
/* The scales layer `layer`'s steps read its cache at (its source's, for a
 * layer reading another's cache); 1 and 1 unless set. */
hybrid_rt_status
hybrid_rt_session_cache_scales_get(const hybrid_rt_session *session,
                                   int64_t layer, float *k_scale,
                                   float *v_scale);

/* Prompt of S tokens into an empty layer: as hybrid_rt_prefill, and the
 * layer's cache keeps what its policy holds. A shared layer takes its
 * source's k and v (and stores nothing); its source goes first. */
hybrid_rt_status
hybrid_rt_session_prefill(hybrid_rt_session *session, int64_t layer,
                          const hybrid_rt_tensor *q, const hybrid_rt_tensor *k,
                          const hybrid_rt_tensor *v,
                          const hybrid_rt_tensor *sinks, hybrid_rt_tensor *out);

/* T new tokens per sequence (1 <= T <= max_step_tokens): q [B, T, Hq, D],
 * k [B, T, Hkv, D], v [B, T, Hkv, Dv] at positions length..length+T-1 are
 * appended to the cache and attend to it; out [B, T, Hq, Dv]. Shared
 * layers pass k = v = NULL and run after their source's step: theirs are
 * the last T tokens the source holds, so they may skip tokens (a prompt
 * whose last queries alone matter), never repeat one. Steps of
 * many tokens are chunked prefill: they run the flash kernel over the
 * cache (on GPUs from 16 rows per kv head, tokens times query heads per kv
 * head: its split-K twin spreads the keys over the multiprocessors). */
hybrid_rt_status
hybrid_rt_session_decode(hybrid_rt_session *session, int64_t layer,
                         const hybrid_rt_tensor *q, const hybrid_rt_tensor *k,
                         const hybrid_rt_tensor *v,
                         const hybrid_rt_tensor *sinks, hybrid_rt_tensor *out);

/* Appends T tokens' k [B, T, Hkv, D] and v [B, T, Hkv, Dv] to a layer's
 * cache without attending: keys before RoPE, as prefill and decode take
 * them (hybrid_rt_session_cache_write takes them as the cache holds
 * them). */
hybrid_rt_status hybrid_rt_session_append(hybrid_rt_session *session,
                                          int64_t layer,
                                          const hybrid_rt_tensor *k,
                                          const hybrid_rt_tensor *v);

/* Saving and restoring caches (a prompt prefix many requests share, a
 * session to resume later) and inspecting them. A layer's cache rows in the
 * form its steps attend over: keys k [B, T, Hkv, D] as the layer's RoPE
 * rotated them (as transformers' caches hold them), values v [B, T, Hkv,
 * Dv], f32 (bf16 too for GPU models that take it), host or device memory.
 * K=V layers keep values only: their k is NULL; latent layers keep keys
 * only: their v is NULL. Neither call may be captured in a CUDA graph. */

/* Copies positions first..first+T-1 of layer `layer`'s own cache into k
 * and v (T = their seq dim), each element as the cache holds it (bf16, f16
 * or f8 widened; f8 times the cache scales). The positions must be held:
 * hybrid_rt_cache_info's first_held to length - 1 (a ring or chunk cache
 * holds its last rows only). A layer reading another's cache has none:
 * read its source's. */
hybrid_rt_status hybrid_rt_session_cache_read(const hybrid_rt_session *session,
                                              int64_t layer, int64_t first,
                                              hybrid_rt_tensor *k,
                                              hybrid_rt_tensor *v);
/* Stores T tokens as hybrid_rt_session_cache_read gives them (keys rotated,
 * unlike hybrid_rt_session_append's) at positions first..first+T-1, so that
 * what was read is held again exactly (set f8 scales first:
 * hybrid_rt_session_cache_scales_set with hybrid_rt_session_cache_scales_get's
 * values). `first` is the layer's length, or, into an empty cache, any
 * position from which the layer's next step sees no earlier key: a ring or
 * chunk cache restored from what it held (positions first_held on). Layers
 * reading the cache (shared) keep their length (0 after a reset): their
 * next step reads the last T tokens it holds, as always, and is refused
 * where it would see a key before `first`. */
hybrid_rt_status hybrid_rt_session_cache_write(hybrid_rt_session *session,
                                               int64_t layer, int64_t first,
                                               const hybrid_rt_tensor *k,
                                               const hybrid_rt_tensor *v);

#ifdef __cplusplus
}
#endif

#endif /* HYBRID_RT_HYBRID_RT_H */
