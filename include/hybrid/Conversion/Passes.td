//===- Passes.td - Conversions out of the hybrid dialect ---*- tablegen -*-===//

#ifndef HYBRID_CONVERSION_PASSES_TD
#define HYBRID_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertHybridAttentionToCPU
    : Pass<"convert-hybrid-attention-to-cpu", "::mlir::ModuleOp"> {
  let summary = "Lower hybrid.attention kernels to fused flash loops for CPUs";
  let description = [{
    Rewrites every function that `hybrid-extract-attention` created (one
    `hybrid.attention` on tensors) into CPU kernels on memrefs, with the C
    interface the runtime calls (`llvm.emit_c_interface`):

    - `@K_prepare_q(q, q_out, first_position, work_begin, work_end)`: rotates
      query rows (RoPE of any kind), multiplies them by the score scale and
      the Llama 4 temperature; one work item per (batch, position).
    - `@K_prepare_k(k, k_out, first_position, work_begin, work_end)`: rotates
      key rows; only for rotary encodings.
    - `@K(q, k, v, [sinks,] out, q_tile, work_begin, work_end)`: flash
      attention over prepared queries and keys. One work item is a tile of
      `q_tile` query positions (the caller's choice, at most the pass's
      `q-tile` rows over the GQA group) for all query heads of one kv head (GQA: each key is loaded
      once for the whole group). The key tiles a work item visits are the
      mask's range for its first and last query (sliding window: O(W),
      chunked: O(C)); per key tile only the blocks of 32 rows that see one of
      its keys compute, and only rows that do not see all of them evaluate
      the mask per element.
      Scores and `P * V` are register-blocked FMA micro-kernels on
      `vector<16xf32>`; softmax is online (running max and sum per row).
    - `@K_decode(q, k_cache, v_cache, [sinks,] [key_scale,] partial_out,
      partial_max, partial_sum, position, num_splits, work_begin,
      work_end)` (causal layers): a decode step of up to a few query
      positions per work item over a KV cache of `cache-type` elements,
      split over the key range; `@K_decode_combine` merges the splits.
    - `@K_steps(q, k_cache, v_cache, ...)` (bf16, f16 or f8 caches; causal
      layers whose keys are stored): `@K` reading the cache's keys and
      values, converted as each key tile is copied, for steps of many tokens
      over the cache.

    f8 caches hold OCP FP8 E4M3FN (`f8E4M3FN`: no infinities, finite values
    up to 448, subnormals down to 2^-9) without a scale; the kernels widen
    it through f16 (exact).

    Queries sit at positions `Skv - Sq + i`, keys at `0 .. Skv-1`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
    "::mlir::LLVM::LLVMDialect"
  ];
  let options = [
    Option<"qTile", "q-tile", "int64_t", /*default=*/"0",
           "Query rows (positions times the GQA group) per work item at "
           "most, rounded up to whole blocks of 32 (0: 256)">,
    Option<"kTile", "k-tile", "int64_t", /*default=*/"64",
           "Keys per tile (a multiple of 32)">,
    Option<"cacheType", "cache-type", "std::string", /*default=*/"\"f32\"",
           "Element type of the KV caches the decode kernels read: f32, "
           "bf16, f16 or f8 (E4M3FN); all but f32: causal layers also get "
           "`@K_steps`, the flash kernel over such keys and values, for "
           "steps of many tokens">
  ];
}

def ConvertHybridAttentionToGPU
    : Pass<"convert-hybrid-attention-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Lower hybrid.attention kernels to tensor-core flash kernels "
                "for NVIDIA GPUs";
  let description = [{
    Rewrites every function that `hybrid-extract-attention` created into
    kernels of one `gpu.module @kernels` (bf16 inputs, f32 accumulation;
    sm_80 and newer):

    - `@K_prepare_q(q, q_out, first_position)`, `@K_prepare_k(k, k_out,
      length)`: f32 rows to bf16 rows from position `length[0]` on (a
      `memref<1xi64>` in device memory), rotated by the layer's RoPE;
      queries also carry the score scale and the Llama 4 temperature. One
      CTA per (batch, position) row.
    - `@K_prepare_v(v, v_out)`: f32 value rows to bf16.
    - `@K(q, k, v, [sinks,] out)`: flash attention, one CTA of 4 (or 8)
      warps per (query tile, GQA group, batch); the group's query heads
      share each K and V tile.
      Each warp owns 16 query rows: `Q K^T` and `P V` are
      `mma.sync.m16n8k16` (bf16 in, f32 accumulate) with Q and P in
      registers (the scores' accumulator layout is P's operand layout), the
      online softmax stays in registers (quad shuffles for row maxima). Key
      and value tiles are staged in shared memory with `cp.async`: V(j)
      loads while `Q K(j)^T` runs, K(j+1) while softmax and `P V(j)` run.
      The key tiles visited are the mask's range for the tile's first and
      last query; only boundary tiles evaluate the mask per element. With
      `tensor-cores=wgmma` (sm_90a) both products are `wgmma.mma_async` on
      128-byte-swizzled tiles, and with `tma` those tiles arrive by TMA
      (the kernel then also takes the K and V tensor maps). The tiles are
      dynamic shared memory (`hybrid.shared_bytes` on the kernel).
    - `@K_out_bf16(q, k, v, [sinks,] out)`: the same kernel writing `out` as
      bf16 rows (bf16 outputs without an f32 round trip).
    - `@K_split(q, k, v, [sinks,] partial_out, partial_max, partial_sum)`
      (causal layers): the same kernel split over each query tile's key
      tiles (grid y: split, kv head, value slice), writing unnormalized
      partials that `@K_decode_combine` merges, for launches of few query
      tiles.
    - `@K_decode(q, k_cache, v_cache, [sinks,] partial_out, partial_max,
      partial_sum, length, rows)` (causal layers): a decode step from
      position `length[0]` over a bf16 KV cache (position p in row
      p % rows), one CTA per (split, query and kv
      head, batch), 128 keys per tile (one per thread), split over the key
      range; `@K_decode_combine(partial_out, partial_max, partial_sum,
      out, length, count)` merges the splits by log-sum-exp and adds
      `count` to `length[0]` (one thread; the decode kernel, the last to
      read it, has finished), and `@K_decode_combine_bf16` writes bf16
      rows.
    - `@K_prepare_step(q, q_out, k, v, k_cache, v_cache, length, rows)`
      (causal layers; `@K_prepare_step_bf16` reads bf16 rows): a session
      step's queries prepared as `@K_prepare_q` does (an append passes
      none) and its keys and values prepared straight into the cache rows
      of their positions, as `@hybrid_store_cache_rows` stores them: with
      the decode and combine kernels, a decode step is three launches.
    - `@hybrid_convert_bf16_to_f32(in, out)`,
      `@hybrid_convert_f32_to_bf16(in, out)`: flat elementwise conversions
      for bf16 tensors at the runtime's API (named in the module's
      `hybrid.conversions` and the manifest).
    - `@hybrid_store_cache_rows(new_k, k_cache, new_v, v_cache, length,
      rows)`: a step's prepared rows into the cache rows of their positions
      from `length[0]` on (and their mirror rows), one CTA per (token,
      batch); `@hybrid_advance_length(length, count)` then adds the step's
      tokens (prompts and appends; the combine kernel does it for decode
      steps). Kernels that read the length from device memory let a CUDA
      graph replay a decode step (named in `hybrid.cache_kernels` and the
      manifest).

    Every kernel but the flash kernel runs 128 threads; memrefs use the
    default (descriptor) calling convention. docs/GPUCodegen.md has the
    details.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::nvgpu::NVGPUDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
    "::mlir::LLVM::LLVMDialect",
    // The options' #hybrid.gpu_kernel, made even for a module without
    // hybrid ops.
    "::hybrid::HybridDialect"
  ];
  let options = [
    Option<"kTile", "k-tile", "int64_t", /*default=*/"64",
           "Keys per tile (a multiple of 16; halved until K and V tiles fit "
           "shared-memory)">,
    Option<"sharedMemory", "shared-memory", "int64_t", /*default=*/"49152",
           "Bytes of shared memory a flash CTA may use per stage, within "
           "chip-shared-memory (its tiles are dynamic shared memory; past 48 "
           "KiB the runtime opts the kernel in)">,
    Option<"chipSharedMemory", "chip-shared-memory", "int64_t",
           /*default=*/"0",
           "Bytes of shared memory a CTA may opt into on the chip (0: "
           "shared-memory), which hybrid-cuda-pipeline sets: the budget of "
           "ops with a k_tile of their own (halved only until the chip holds "
           "it) and the bound of the others'">,
    Option<"warpRows", "warp-rows", "int64_t", /*default=*/"16",
           "Query rows per warp in the flash kernel: 16 or 32 (every K and V "
           "fragment feeds two mma tiles; more registers)">,
    Option<"warps", "warps", "int64_t", /*default=*/"4",
           "Warps per flash CTA: 4 or 8 (8: twice the rows share each K and V "
           "tile, halving the bytes loaded per row; with wgmma, two "
           "warpgroups)">,
    Option<"tensorCores", "tensor-cores", "std::string",
           /*default=*/"\"mma.sync\"",
           "Flash kernels' tensor-core instructions: mma.sync (sm_80 and "
           "later) or wgmma (sm_90a: each 4 warps one warpgroup, K and V "
           "tiles 128-byte swizzled; needs warp-rows 16 and head dims that "
           "are multiples of 64)">,
    Option<"tma", "tma", "bool", /*default=*/"false",
           "With tensor-cores=wgmma: K and V tiles by TMA (one thread "
           "issues cp.async.bulk.tensor, consumers wait on mbarriers); the "
           "flash kernels take the tiles' tensor maps as two trailing "
           "pointer arguments">,
    Option<"stages", "stages", "int64_t", /*default=*/"1",
           "With tma: buffers per tile kind, 1 to 4 (S > 1: the K and V "
           "tiles of the next S - 1 key tiles load while this one is "
           "computed; S times the shared memory, one CTA barrier per tile "
           "instead of two)">,
    Option<"rescaleThreshold", "rescale-threshold", "double",
           /*default=*/"8.0",
           "Flash kernels' lazy rescaling: a warp moves its rows' running "
           "max (rescaling O and l) only when some score passes it by more "
           "than this many powers of two, 0 to 32 (0: whenever a max grows; "
           "probabilities stay below 2^threshold)">,
    Option<"softmaxOverlap", "softmax-overlap", "bool", /*default=*/"false",
           "With tma and stages >= 2: each warpgroup issues S(j + 1) = "
           "Q K^T and O += P(j) V without waiting and computes tile "
           "j + 1's softmax while P V runs (FlashAttention-3's "
           "intra-warpgroup overlap; registers for two tiles' "
           "probabilities)">,
    Option<"warpSpecialized", "warp-specialized", "bool",
           /*default=*/"false",
           "With tma and stages >= 2: one more warp per CTA issues every "
           "TMA load, and the compute warps free each stage with an "
           "mbarrier arrival instead of a CTA barrier per tile (producer / "
           "consumer warp specialization)">,
    Option<"pingPong", "ping-pong", "bool", /*default=*/"false",
           "With warps=8, softmax-overlap and warp-specialized: the two "
           "warpgroups take turns issuing their products (named barriers), "
           "so that one's softmax runs while the other's wgmmas do "
           "(FlashAttention-3's ping-pong)">,
    Option<"minCtasPerSM", "min-ctas-per-sm", "int64_t", /*default=*/"0",
           "Flash kernels: CTAs each multiprocessor must hold at once "
           "(.minnctapersm: ptxas caps registers to fit, spilling if it must; "
           "0: no bound)">,
    Option<"valueSlice", "value-slice", "int64_t", /*default=*/"256",
           "Flash kernels: value dims one CTA accumulates at most (the "
           "largest divisor of the V head dim up to it that is a multiple "
           "of 16, of 64 with wgmma; each slice computes Q K^T again)">,
    Option<"chip", "chip", "std::string", /*default=*/"\"\"",
           "The chip the kernels are for (sm_80, sm_90a), which "
           "hybrid-cuda-pipeline sets: a wgmma variant, the options' or an "
           "op's own, is an error on any but sm_90a (empty: not checked)">
  ];
}

def HybridExternDynamicSharedMemory
    : Pass<"hybrid-extern-dynamic-shared-memory", "::mlir::gpu::GPUModuleOp"> {
  let summary = "Make the LLVM globals of gpu.dynamic_shared_memory extern "
                "shared arrays";
  let description = [{
    `convert-gpu-to-nvvm` lowers `gpu.dynamic_shared_memory` to an internal
    zero-length `llvm.mlir.global` in address space 3, which LLVM 22's NVPTX
    backend demotes into a one-byte static `.shared` variable of the kernel
    (accesses past it then land beyond the CTA's static shared memory).
    Runs after that lowering: gives such globals external linkage, so that
    they become `.extern .shared .b8 name[]` (the launch's dynamic shared
    memory), and raises their alignment to `alignment`.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
  let options = [
    Option<"alignment", "alignment", "int64_t", /*default=*/"1024",
           "Alignment of the dynamic shared memory (1024: the 128-byte "
           "swizzle's atom, which TMA and wgmma tiles start on)">
  ];
}

def HybridTensorMapParams
    : Pass<"hybrid-tensor-map-params", "::mlir::gpu::GPUModuleOp"> {
  let summary = "Pass a kernel's tensor maps by value, as grid-constant "
                "parameters";
  let description = [{
    TMA loads name their tensor map (a 128-byte, 64-byte-aligned
    `CUtensorMap`) by address. As a kernel parameter (CUDA's
    `__grid_constant__ const CUtensorMap`) it needs no device memory, no
    per-launch host-to-device copy and no tensormap proxy fence, and a
    launch holds it by value (a CUDA graph may capture it). `gpu.func`
    cannot say so (its lowering drops `llvm.byval`, and the NVVM verifier
    only accepts `nvvm.grid_constant` on an `llvm.func`), so the flash
    kernels mark themselves with `hybrid.tensor_map_args = N`: their last
    N arguments are `!llvm.ptr`s standing for tensor maps. Runs after
    `convert-gpu-to-nvvm`: makes those arguments
    `byval(!llvm.array<128 x i8>)`, 64-byte aligned and
    `nvvm.grid_constant` (NVPTX then declares
    `.param .align 64 .b8 name[128]` and takes the argument's address with
    `cvta.param`), and drops the mark.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

def HybridApproximateMath : Pass<"hybrid-approximate-math"> {
  let summary = "Replace f32 math (exp2, exp, tanh) by polynomial approximations";
  let description = [{
    Vector `math.exp2`, `math.exp` and `math.tanh` would otherwise become one
    libm call per lane. Polynomial approximations keep them in vector
    registers (relative error about 1e-7): upstream's for `math.exp` and
    `math.tanh`, and ours for `math.exp2`, the CPU kernels' softmax
    exponential (14 instructions: `x` clamped to [-126, 128] by compare and
    select, which keeps NaN; `k = round(x)` by adding 1.5 * 2^23, no
    float-to-int conversion; a degree-5 polynomial of `x - k`; `2^k` built in
    the exponent field). `2^x` is +inf from `x = 128` and 0 for
    `x <= -125.5` (subnormal results flush). f64 math (RoPE angles) is left
    to libm.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::x86vector::X86VectorDialect"];
}

#endif // HYBRID_CONVERSION_PASSES_TD
