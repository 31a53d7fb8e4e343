// RUN: hybrid-opt %s -split-input-file -verify-diagnostics

// One case for every attribute verifier message.

// expected-error @+1 {{sliding_window mask needs a positive window, got 0}}
module attributes {test.attr = #hybrid.mask<kind = sliding_window, window = 0>} {}

// -----

// expected-error @+1 {{sliding_window mask needs a positive window, got -4}}
module attributes {test.attr = #hybrid.mask<kind = sliding_window, window = -4>} {}

// -----

// expected-error @+1 {{window is only meaningful for a sliding_window mask}}
module attributes {test.attr = #hybrid.mask<kind = full, window = 4>} {}

// -----

// expected-error @+1 {{chunked mask needs a positive chunk, got 0}}
module attributes {test.attr = #hybrid.mask<kind = chunked>} {}

// -----

// expected-error @+1 {{chunk is only meaningful for a chunked mask}}
module attributes {test.attr = #hybrid.mask<kind = full, chunk = 4>} {}

// -----

// expected-error @+2 {{expected 'true' or 'false'}}
// expected-error @+1 {{failed to parse Hybrid_MaskAttr parameter 'causal'}}
module attributes {test.attr = #hybrid.mask<kind = full, causal = maybe>} {}

// -----

// expected-error @+1 {{rope scaling factor must be positive, got 0}}
module attributes {test.attr = #hybrid.rope_scaling<kind = linear, factor = 0.0>} {}

// -----

// expected-error @+1 {{original_max_position must not be negative}}
module attributes {test.attr = #hybrid.rope_scaling<kind = linear, factor = 2.0, original_max_position = -1>} {}

// -----

// expected-error @+1 {{llama3 rope scaling needs original_max_position}}
module attributes {test.attr = #hybrid.rope_scaling<kind = llama3, factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0>} {}

// -----

// expected-error @+1 {{llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor}}
module attributes {test.attr = #hybrid.rope_scaling<kind = llama3, factor = 8.0, original_max_position = 8192, low_freq_factor = 4.0, high_freq_factor = 1.0>} {}

// -----

// expected-error @+1 {{yarn rope scaling needs original_max_position}}
module attributes {test.attr = #hybrid.rope_scaling<kind = yarn, factor = 4.0>} {}

// -----

// expected-error @+1 {{low_freq_factor and high_freq_factor belong to llama3 rope scaling}}
module attributes {test.attr = #hybrid.rope_scaling<kind = linear, factor = 4.0, low_freq_factor = 1.0>} {}

// -----

// expected-error @+1 {{beta_fast, beta_slow and attention_factor belong to yarn}}
module attributes {test.attr = #hybrid.rope_scaling<kind = linear, factor = 4.0, beta_fast = 32.0>} {}

// -----

// expected-error @+1 {{positional kind none takes no parameters}}
module attributes {test.attr = #hybrid.positional<kind = none, theta = 10000.0>} {}

// -----

// expected-error @+1 {{positional kind none takes no parameters}}
module attributes {test.attr = #hybrid.positional<kind = none, interleaved = true>} {}

// -----

// expected-error @+1 {{temperature offset must be 0 or 1, got 2}}
module attributes {test.attr = #hybrid.temperature_tuning<floor_scale = 4.0, attn_scale = 0.1, offset = 2>} {}

// -----

// expected-error @+1 {{rotary positional encoding needs a positive theta}}
module attributes {test.attr = #hybrid.positional<kind = rope>} {}

// -----

// expected-error @+1 {{partial rotary encoding needs a positive even rotary_dim, got 3}}
module attributes {test.attr = #hybrid.positional<kind = partial, theta = 10000.0, rotary_dim = 3>} {}

// -----

// expected-error @+1 {{rotary_dim is only meaningful for partial rotary}}
module attributes {test.attr = #hybrid.positional<kind = rope, theta = 10000.0, rotary_dim = 32>} {}

// -----

// expected-error @+1 {{proportional rotary encoding needs a fraction in (0, 1], got 1.5}}
module attributes {test.attr = #hybrid.positional<kind = proportional, theta = 10000.0, fraction = 1.5>} {}

// -----

// expected-error @+1 {{fraction is only meaningful for proportional rotary}}
module attributes {test.attr = #hybrid.positional<kind = rope, theta = 10000.0, fraction = 0.5>} {}

// -----

// expected-error @+1 {{temperature floor_scale must be positive}}
module attributes {test.attr = #hybrid.temperature_tuning<floor_scale = 0.0, attn_scale = 0.1>} {}

// -----

// expected-error @+1 {{temperature attn_scale must not be negative}}
module attributes {test.attr = #hybrid.temperature_tuning<floor_scale = 8192.0, attn_scale = -0.1>} {}

// -----

// expected-error @+1 {{score scale must be positive and finite, got 0}}
module attributes {test.attr = #hybrid.score<scale = 0.0>} {}

// -----

// expected-error @+1 {{softcap must be positive when set, got -1}}
module attributes {test.attr = #hybrid.score<scale = 0.125, softcap = -1.0>} {}

// -----

// expected-error @+1 {{ring cache needs a positive window, got 0}}
module attributes {test.attr = #hybrid.cache<policy = ring>} {}

// -----

// expected-error @+1 {{window is only meaningful for a ring cache}}
module attributes {test.attr = #hybrid.cache<policy = full, window = 8>} {}

// -----

// expected-error @+1 {{chunk cache needs a positive chunk, got 0}}
module attributes {test.attr = #hybrid.cache<policy = chunk>} {}

// -----

// expected-error @+1 {{chunk is only meaningful for a chunk cache}}
module attributes {test.attr = #hybrid.cache<policy = full, chunk = 8>} {}

// -----

// expected-error @+1 {{shared cache needs a source_layer}}
module attributes {test.attr = #hybrid.cache<policy = shared>} {}

// -----

// expected-error @+1 {{source_layer is only meaningful for a shared cache}}
module attributes {test.attr = #hybrid.cache<policy = full, source_layer = 2>} {}

// -----

// expected-error @+1 {{k_eq_v needs a cache to store}}
module attributes {test.attr = #hybrid.cache<policy = none, k_eq_v = true>} {}

// -----

// expected-error @+1 {{state sizes must not be negative}}
module attributes {test.attr = #hybrid.state<recurrent = -1>} {}

// -----

// expected-error @+1 {{cache plan sizes must not be negative}}
module attributes {test.attr = #hybrid.cache_plan<bytes_per_token = -1>} {}

// -----

// expected-error @+1 {{cache plan bytes must equal bytes_per_token * tokens + state_bytes}}
module attributes {test.attr = #hybrid.cache_plan<bytes_per_token = 4, tokens = 2, bytes = 9>} {}

// -----

// expected-error @+1 {{cache summary needs a positive max_seq}}
module attributes {test.attr = #hybrid.cache_summary<max_seq = 0, storage = bf16>} {}

// -----

// expected-error @+1 {{cache summary sizes must not be negative}}
module attributes {test.attr = #hybrid.cache_summary<max_seq = 8, storage = bf16, total = -1>} {}

// -----

// expected-error @+1 {{truncate belongs to yarn}}
module attributes {test.attr = #hybrid.rope_scaling<kind = linear, factor = 4.0, truncate = false>} {}

// -----

// expected-error @+1 {{warps must be 4 or 8 (warps per flash CTA), got 6}}
module attributes {test.attr = #hybrid.gpu_kernel<warps = 6>} {}

// -----

// expected-error @+1 {{warp_rows must be 16 or 32 (one or two mma tiles per warp), got 8}}
module attributes {test.attr = #hybrid.gpu_kernel<warp_rows = 8>} {}

// -----

// expected-error @+1 {{tensor_cores = wgmma takes warp_rows 16 (each four warps are one 64-row warpgroup), got 32}}
module attributes {test.attr = #hybrid.gpu_kernel<tensor_cores = wgmma, warp_rows = 32>} {}

// -----

// expected-error @+1 {{tma: TMA writes the swizzled tiles only the wgmma kernels read; needs tensor_cores = wgmma}}
module attributes {test.attr = #hybrid.gpu_kernel<tma = true>} {}

// -----

// expected-error @+1 {{stages must be 1 to 4, got 0}}
module attributes {test.attr = #hybrid.gpu_kernel<stages = 0>} {}

// -----

// expected-error @+1 {{stages = 3: tiles ahead of the current one are loaded by TMA; needs tma}}
module attributes {test.attr = #hybrid.gpu_kernel<tensor_cores = wgmma, stages = 3>} {}

// -----

// expected-error @+1 {{softmax_overlap: the tiles of two key tiles are in use at once; needs tma and stages >= 2}}
module attributes {test.attr = #hybrid.gpu_kernel<tensor_cores = wgmma, tma = true, softmax_overlap = true>} {}

// -----

// expected-error @+1 {{warp_specialized: the producer warp loads tiles ahead into stages the compute warps free; needs tma and stages >= 2}}
module attributes {test.attr = #hybrid.gpu_kernel<tensor_cores = wgmma, tma = true, warp_specialized = true>} {}

// -----

// expected-error @+1 {{ping_pong: two warpgroups take turns issuing their overlapped products, with no CTA barrier between them; needs warps = 8, softmax_overlap and warp_specialized}}
module attributes {test.attr = #hybrid.gpu_kernel<tensor_cores = wgmma, tma = true, stages = 2, softmax_overlap = true, warp_specialized = true, ping_pong = true>} {}

// -----

// expected-error @+1 {{rescale_threshold must be 0 to 32 (powers of two), got 40}}
module attributes {test.attr = #hybrid.gpu_kernel<rescale_threshold = 40.0>} {}

// -----

// expected-error @+1 {{min_ctas_per_sm must be 0 (none) or more, got -1}}
module attributes {test.attr = #hybrid.gpu_kernel<min_ctas_per_sm = -1>} {}

// -----

// expected-error @+1 {{value_slice must be a multiple of 16 from 16 to 256, got 512}}
module attributes {test.attr = #hybrid.gpu_kernel<value_slice = 512>} {}

// -----

// expected-error @+1 {{value_slice must be a multiple of 64 from 64 to 256 with tensor_cores = wgmma, got 32}}
module attributes {test.attr = #hybrid.gpu_kernel<tensor_cores = wgmma, value_slice = 32>} {}

// -----

// expected-error @+2 {{expected ::hybrid::TensorCores to be one of: mma_sync, wgmma}}
// expected-error @+1 {{failed to parse Hybrid_GPUKernelAttr parameter 'tensor_cores'}}
module attributes {test.attr = #hybrid.gpu_kernel<tensor_cores = wmma>} {}

// -----

// expected-error @+1 {{partial rotary encoding needs a non-negative even rotary_offset, got 3}}
module attributes {test.attr = #hybrid.positional<kind = partial, theta = 10000.0, rotary_dim = 4, rotary_offset = 3>} {}

// -----

// expected-error @+1 {{rotary_offset is only meaningful for partial rotary}}
module attributes {test.attr = #hybrid.positional<kind = rope, theta = 10000.0, rotary_offset = 32>} {}

// -----

// expected-error @+1 {{positional kind none takes no parameters}}
module attributes {test.attr = #hybrid.positional<kind = none, rotary_offset = 32>} {}

// -----

// expected-error @+1 {{k_eq_v (values only) and latent (keys only) exclude each other}}
module attributes {test.attr = #hybrid.cache<policy = full, k_eq_v = true, latent = true>} {}

// -----

// expected-error @+1 {{latent needs a cache to store}}
module attributes {test.attr = #hybrid.cache<policy = none, latent = true>} {}
