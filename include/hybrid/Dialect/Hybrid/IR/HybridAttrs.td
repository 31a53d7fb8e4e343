//===- HybridAttrs.td - Parameterised hybrid attributes ----*- tablegen -*-===//
//
// Struct-style attributes: `#hybrid.mask<kind = sliding_window, window = 512>`.
// Optional numeric parameters default to 0 ("not set") and are then omitted
// when printed; each attribute's verifier says which ones its kind needs.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_DIALECT_HYBRID_IR_HYBRIDATTRS_TD
#define HYBRID_DIALECT_HYBRID_IR_HYBRIDATTRS_TD

include "hybrid/Dialect/Hybrid/IR/HybridEnums.td"
include "mlir/IR/AttrTypeBase.td"

//===----------------------------------------------------------------------===//
// Parameter helpers
//===----------------------------------------------------------------------===//

class Hybrid_IntParameter<string value, string desc>
    : DefaultValuedParameter<"int64_t", value, desc>;

// A real number, parsed from an integer or float literal.
class Hybrid_RealParameter<string desc = "">
    : AttrOrTypeParameter<"::hybrid::Real", desc> {
  let printer = "::hybrid::printReal($_printer, $_self)";
}

// A real number with a default, left out when printed at it; an optional
// one (Hybrid_FloatParameter) defaults to 0, "not set".
class Hybrid_DefaultRealParameter<string value, string desc>
    : DefaultValuedParameter<"::hybrid::Real", value, desc> {
  let printer = "::hybrid::printReal($_printer, $_self)";
}
class Hybrid_FloatParameter<string desc>
    : Hybrid_DefaultRealParameter<"0.0", desc>;

class Hybrid_BoolParameter<string value, string desc>
    : DefaultValuedParameter<"bool", value, desc> {
  let parser = "::hybrid::parseBoolParameter($_parser)";
  let printer = "$_printer << ($_self ? \"true\" : \"false\")";
}

// An enum with a default, left out when printed at it.
class Hybrid_EnumParameter<EnumAttrInfo info, string value>
    : EnumParameter<info> {
  let defaultValue = value;
}

class Hybrid_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Hybrid_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// Masks
//===----------------------------------------------------------------------===//

def Hybrid_MaskAttr : Hybrid_Attr<"Mask", "mask"> {
  let summary = "which keys a query sees";
  let description = [{
    Key at position `pk` is visible to the query at `pq` when:
    - `full`: `pk <= pq` (causal) or always (`causal = false`);
    - `sliding_window`: `pq - window < pk <= pq`, i.e. `window` keys including
      the query itself; non-causal: `|pq - pk| < window`;
    - `chunked`: `pk <= pq` and `pk / chunk == pq / chunk`; non-causal: the
      same chunk.

    ```mlir
    #hybrid.mask<kind = full>
    #hybrid.mask<kind = sliding_window, window = 4096>
    #hybrid.mask<kind = chunked, chunk = 8192>
    #hybrid.mask<kind = full, causal = false>
    ```
  }];
  let parameters = (ins
    EnumParameter<Hybrid_MaskKind>:$kind,
    Hybrid_IntParameter<"0", "keys visible including self">:$window,
    Hybrid_IntParameter<"0", "chunk length">:$chunk,
    Hybrid_BoolParameter<"true", "keys after the query are hidden">:$causal
  );
  let extraClassDeclaration = [{
    /// True if the key at `keyPos` is visible to the query at `queryPos`.
    bool isVisible(int64_t queryPos, int64_t keyPos) const;
    /// Half-open range [begin, end) of key positions visible to `queryPos`,
    /// clamped to [0, numKeys).
    std::pair<int64_t, int64_t> getKeyRange(int64_t queryPos,
                                            int64_t numKeys) const;
  }];
}

//===----------------------------------------------------------------------===//
// Positional encodings
//===----------------------------------------------------------------------===//

def Hybrid_RopeScalingAttr : Hybrid_Attr<"RopeScaling", "rope_scaling"> {
  let summary = "RoPE frequency scaling (linear, llama3, yarn)";
  let description = [{
    Follows transformers' `ROPE_INIT_FUNCTIONS`. `linear` divides positions by
    `factor`; `llama3` needs `original_max_position`, `low_freq_factor` and
    `high_freq_factor`; `yarn` needs `original_max_position` and uses
    `beta_fast`, `beta_slow`, `attention_factor` (0: transformers' default)
    and `truncate` (false for GPT-OSS).

    ```mlir
    #hybrid.rope_scaling<kind = linear, factor = 8.0>
    #hybrid.rope_scaling<kind = llama3, factor = 8.0, original_max_position = 8192,
                         low_freq_factor = 1.0, high_freq_factor = 4.0>
    ```
  }];
  let parameters = (ins
    EnumParameter<Hybrid_RopeScalingKind>:$kind,
    Hybrid_RealParameter<"scaling factor">:$factor,
    Hybrid_IntParameter<"0", "pre-scaling context length">:$original_max_position,
    Hybrid_FloatParameter<"llama3 low frequency factor">:$low_freq_factor,
    Hybrid_FloatParameter<"llama3 high frequency factor">:$high_freq_factor,
    Hybrid_FloatParameter<"yarn beta_fast">:$beta_fast,
    Hybrid_FloatParameter<"yarn beta_slow">:$beta_slow,
    Hybrid_FloatParameter<"yarn attention factor">:$attention_factor,
    Hybrid_BoolParameter<"true", "yarn: round the correction range to whole dims">:$truncate
  );
}

def Hybrid_PositionalAttr : Hybrid_Attr<"Positional", "positional"> {
  let summary = "positional encoding of queries and keys";
  let description = [{
    RoPE applied to q and k, never v. Pair `i` rotates by `p * theta^(-2i/R)`
    at position `p`; it is dims `(i, i + R/2)` (rotate-half, NeoX: most
    models), or dims `(2i, 2i + 1)` with `interleaved` (GPT-J style, or
    complex multiplication: Llama 4, Cohere 2).
    - `rope`: every pair rotates, `R = D`;
    - `partial`: `rotary_dim` dims rotate, `R = rotary_dim`: the first ones,
      or those from `rotary_offset` on (MLA's decoupled RoPE rotates the
      last `qk_rope_head_dim` dims of its heads);
    - `proportional`: `floor(fraction * D / 2)` pairs rotate with `R = D`, the
      others pass through (Gemma 4 "p-RoPE");
    - `none`: NoPE.

    ```mlir
    #hybrid.positional<kind = rope, theta = 10000.0>
    #hybrid.positional<kind = rope, theta = 500000.0, interleaved = true>
    #hybrid.positional<kind = partial, theta = 10000000.0, rotary_dim = 64>
    #hybrid.positional<kind = partial, theta = 10000.0, rotary_dim = 64,
                       rotary_offset = 128, interleaved = true>
    #hybrid.positional<kind = proportional, theta = 1000000.0, fraction = 0.25>
    #hybrid.positional<kind = none>
    ```
  }];
  let parameters = (ins
    EnumParameter<Hybrid_PositionalKind>:$kind,
    Hybrid_FloatParameter<"RoPE base">:$theta,
    Hybrid_IntParameter<"0", "rotating dims (partial)">:$rotary_dim,
    Hybrid_FloatParameter<"rotating fraction of pairs (proportional)">:$fraction,
    OptionalParameter<"RopeScalingAttr", "frequency scaling">:$scaling,
    Hybrid_BoolParameter<"false", "pairs of adjacent dims">:$interleaved,
    Hybrid_IntParameter<"0", "first rotating dim (partial)">:$rotary_offset
  );
}

//===----------------------------------------------------------------------===//
// Score modifiers
//===----------------------------------------------------------------------===//

def Hybrid_TemperatureTuningAttr
    : Hybrid_Attr<"TemperatureTuning", "temperature_tuning"> {
  let summary = "position-dependent query scaling (Llama 4, Mistral 3)";
  let description = [{
    Queries at position `p` are scaled by
    `log(floor((p + offset) / floor_scale) + 1) * attn_scale + 1`: Llama 4's
    NoPE layers with `offset` 1, Mistral 3's (Ministral 3) every layer with 0.

    ```mlir
    #hybrid.temperature_tuning<floor_scale = 8192.0, attn_scale = 0.1>
    #hybrid.temperature_tuning<floor_scale = 16384.0, attn_scale = 0.1, offset = 0>
    ```
  }];
  let parameters = (ins Hybrid_RealParameter<"position bucket">:$floor_scale,
                        Hybrid_RealParameter<"log factor">:$attn_scale,
                        Hybrid_IntParameter<"1", "added to the position">:$offset);
}

def Hybrid_ScoreAttr : Hybrid_Attr<"Score", "score"> {
  let summary = "how raw scores become logits";
  let description = [{
    `s = scale * q.k`, then `s = softcap * tanh(s / softcap)` when `softcap` is
    set. With `sinks`, a learned per-head logit joins the softmax denominator
    (GPT-OSS). `temperature` scales queries by position (Llama 4 NoPE layers).

    ```mlir
    #hybrid.score<scale = 0.0625, softcap = 50.0>
    #hybrid.score<scale = 0.125, sinks = true>
    ```
  }];
  let parameters = (ins
    Hybrid_RealParameter<"score multiplier">:$scale,
    Hybrid_FloatParameter<"logit soft-cap">:$softcap,
    Hybrid_BoolParameter<"false", "per-head sink logits">:$sinks,
    OptionalParameter<"TemperatureTuningAttr", "query temperature">:$temperature
  );
}

//===----------------------------------------------------------------------===//
// Kernel variants
//===----------------------------------------------------------------------===//

def Hybrid_GPUKernelAttr : Hybrid_Attr<"GPUKernel", "gpu_kernel"> {
  let summary = "how the GPU lowering builds an attention op's flash kernel";
  let description = [{
    The flash kernel's variant: its tensor-core instructions, whether TMA
    loads its K and V tiles and into how many buffers (`stages`), warps per
    CTA, query rows per warp, whether the softmax overlaps the tensor cores
    (FlashAttention-3's intra-warpgroup pipelining), whether a producer
    warp of its own issues the TMA loads (`warp_specialized`: the compute
    warps and the producer synchronize through mbarriers alone, no CTA
    barrier per tile), whether its two warpgroups take turns issuing their
    products (`ping_pong`: named barriers, so that one's softmax runs under
    the other's wgmmas), how lazily it rescales
    (a row's running max moves only for scores more than
    2^`rescale_threshold` above it), the CTAs per SM ptxas must fit
    (`.minnctapersm`; 0: none) and how many value dims one CTA accumulates
    at most (`value_slice`: the largest divisor of the V head dim up to it
    that is a multiple of 16, of 64 with wgmma; grid y runs over heads x
    slices, each slice computing Q K^T again, so narrower slices trade
    tensor-core work for accumulator registers). On a `hybrid.attention` it overrides the
    pass options; `hybrid-tune --target cuda:...` writes it, and the GPU
    lowering puts the one it built on each flash kernel (`hybrid.gpu_kernel`,
    the manifest's `gpu_kernel`). Parameters left out take fixed defaults,
    the pass options' own, whatever the options are set to (mma_sync, no
    TMA, 4 warps, 16 rows per warp, one stage, no overlap, no producer
    warp, no ping-pong, threshold 8, no CTA bound, slices up to 256).
    `tensor_cores` is spelled `mma_sync` here, `mma.sync` in flags and
    tuning databases.

    ```mlir
    #hybrid.gpu_kernel<warps = 8>
    #hybrid.gpu_kernel<tensor_cores = wgmma, tma = true, stages = 2,
                       softmax_overlap = true, warp_specialized = true>
    #hybrid.gpu_kernel<tensor_cores = wgmma, value_slice = 128>
    ```
  }];
  let parameters = (ins
    Hybrid_EnumParameter<Hybrid_TensorCores,
        "::hybrid::TensorCores::MmaSync">:$tensor_cores,
    Hybrid_BoolParameter<"false", "K and V tiles by TMA">:$tma,
    Hybrid_IntParameter<"4", "warps per CTA: 4 or 8">:$warps,
    Hybrid_IntParameter<"16", "query rows per warp: 16 or 32">:$warp_rows,
    Hybrid_IntParameter<"1", "buffers per tile kind: 1 to 4">:$stages,
    Hybrid_BoolParameter<"false", "softmax during P V">:$softmax_overlap,
    Hybrid_BoolParameter<"false", "a producer warp issues the TMA loads">:$warp_specialized,
    Hybrid_BoolParameter<"false", "warpgroups take turns issuing wgmma">:$ping_pong,
    Hybrid_DefaultRealParameter<"8.0", "lazy rescaling, powers of two: 0 to 32">:$rescale_threshold,
    Hybrid_IntParameter<"0", "CTAs per SM ptxas must fit">:$min_ctas_per_sm,
    Hybrid_IntParameter<"256", "value dims per CTA at most: 16 to 256">:$value_slice
  );
  let extraClassDeclaration = [{
    /// The value dims one flash CTA accumulates at V head dim `vHeadDim`
    /// (getFlashValueSlice with this variant's bound and instructions).
    int64_t getValueSliceOf(int64_t vHeadDim) const;
  }];
}

//===----------------------------------------------------------------------===//
// Caches and states
//===----------------------------------------------------------------------===//

def Hybrid_CacheAttr : Hybrid_Attr<"Cache", "cache"> {
  let summary = "KV-cache policy of a layer";
  let description = [{
    - `full`: every token up to the maximum length;
    - `ring`: the last `window - 1` tokens plus the current one;
    - `chunk`: the tokens of the current chunk of length `chunk`;
    - `shared`: no storage, reads the cache of `source_layer`, an earlier
      layer with the same kind, KV shape, mask, positional encoding and
      `k_eq_v` (the schedule's verifier checks);
    - `none`: no KV cache (non-attention mixers).
    `k_eq_v`: one projection serves as the values and, times a per-dim key
    scale and rotated, as the keys (caches keep it alone, their kernels
    deriving keys as they read it).
    `latent`: the first `v_head_dim` dims of each key are its values (caches
    keep the keys alone, their kernels reading values from them): MLA's
    latent cache, attended in the absorbed form (one KV head of
    `kv_lora_rank + qk_rope_head_dim` dims, values the `kv_lora_rank`
    before the rotating ones).

    ```mlir
    #hybrid.cache<policy = ring, window = 512>
    #hybrid.cache<policy = shared, source_layer = 23>
    #hybrid.cache<policy = full, k_eq_v = true>
    #hybrid.cache<policy = full, latent = true>
    ```
  }];
  let parameters = (ins
    EnumParameter<Hybrid_CachePolicy>:$policy,
    Hybrid_IntParameter<"0", "ring size in tokens">:$window,
    Hybrid_IntParameter<"0", "chunk size in tokens">:$chunk,
    Hybrid_IntParameter<"-1", "layer whose cache is read">:$source_layer,
    Hybrid_BoolParameter<"false", "keys derived from the values">:$k_eq_v,
    Hybrid_BoolParameter<"false", "values are the keys' first dims">:$latent
  );
}

def Hybrid_StateAttr : Hybrid_Attr<"State", "state"> {
  let summary = "fixed per-sequence state of a non-attention mixer";
  let description = [{
    Elements per sequence of the recurrent (SSM or delta-rule) state and of the
    short convolution's state. Their size does not grow with the context.

    ```mlir
    #hybrid.state<recurrent = 1048576, conv = 24576>
    ```
  }];
  let parameters = (ins
    Hybrid_IntParameter<"0", "recurrent state elements">:$recurrent,
    Hybrid_IntParameter<"0", "convolution state elements">:$conv
  );
}

def Hybrid_CachePlanAttr : Hybrid_Attr<"CachePlan", "cache_plan"> {
  let summary = "planned per-sequence cache of a layer";
  let description = [{
    Written by `hybrid-plan-caches`: bytes per cached token, how many tokens
    the cache holds at the planned maximum length, the fixed state bytes, and
    the layer's total `tokens * bytes_per_token + state_bytes`.

    ```mlir
    #hybrid.cache_plan<bytes_per_token = 1024, tokens = 512, bytes = 524288>
    ```
  }];
  let parameters = (ins
    Hybrid_IntParameter<"0", "bytes per cached token">:$bytes_per_token,
    Hybrid_IntParameter<"0", "tokens held at the maximum length">:$tokens,
    Hybrid_IntParameter<"0", "fixed state bytes">:$state_bytes,
    Hybrid_IntParameter<"0", "total bytes">:$bytes
  );
}

def Hybrid_CacheSummaryAttr : Hybrid_Attr<"CacheSummary", "cache_summary"> {
  let summary = "per-sequence cache bytes of a whole schedule";
  let description = [{
    Written by `hybrid-plan-caches` on the schedule: the total against a
    baseline where every attention layer keeps its own full K and V cache.

    ```mlir
    #hybrid.cache_summary<max_seq = 131072, storage = bf16, total = 1000,
                          all_full_baseline = 6000>
    ```
  }];
  let parameters = (ins
    Hybrid_IntParameter<"0", "planned context length">:$max_seq,
    EnumParameter<Hybrid_StorageType>:$storage,
    Hybrid_IntParameter<"0", "planned bytes">:$total,
    Hybrid_IntParameter<"0", "bytes if every attention layer were full">:$all_full_baseline
  );
}

#endif // HYBRID_DIALECT_HYBRID_IR_HYBRIDATTRS_TD
