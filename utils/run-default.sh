#!/usr/bin/env bash
#===- run-default.sh - The main job on the bundled default model ----------===#
# Imports the bundled Gemma 3 1B config.json, prints its schedule in the hybrid
# dialect (interleaving written as hybrid.repeat, caches planned) and its
# KV-cache plan against an all-full-attention model of the same size; then
# compiles every attention layer for this CPU and serves a batch through the
# runtime: prefill, then decode steps over the caches the plan sized (checked
# at every position against the float64 reference), the memory those caches
# take against an all-full model, and per-layer prefill and decode timings;
# last, the same layers compiled for NVIDIA GPUs and run on the GPU, where one
# is, else under the PTX emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
utils/build.sh >/dev/null
bin=${BUILD_DIR:-build}/bin
model=${1:-examples/configs/gemma-3-1b-it.json}
# MAX_SEQ: context to plan for (default: the model's max_position_embeddings).
max_seq_flag=()
[ -z "${MAX_SEQ:-}" ] || max_seq_flag=(--max-seq "$MAX_SEQ")

echo "== $model: schedule in the hybrid dialect, caches planned"
"$bin/hybrid-compile" "$model" --emit mlir "${max_seq_flag[@]}"
echo
echo "== KV-cache plan per sequence (bf16)"
"$bin/hybrid-compile" "$model" --emit summary "${max_seq_flag[@]}" |
  python3 utils/cache-table.py
echo
seq=${SEQ_LEN:-512}
steps=${DECODE_STEPS:-64}
echo "== Every layer compiled for this CPU: batch 2, prefill of $seq tokens and $steps decode steps, checked against the float64 reference at every position"
"$bin/hybrid-run" "$model" --batch 2 --seq-len "$seq" --decode-steps "$steps" --check
echo
bench_seq=${BENCH_SEQ_LEN:-4096}
echo "== Timings per layer, batch 1: prefill of $bench_seq tokens, then decode steps at that context (medians)"
"$bin/hybrid-bench" "$model" --seq-len "$bench_seq" --decode-steps 16 --repeat 3
echo
echo "== Decode steps of a sliding and a full layer over bf16 caches (--kv-dtype bf16: half the bytes a step reads, keys and values rounded to bf16)"
"$bin/hybrid-bench" "$model" --seq-len "$bench_seq" --decode-steps 16 --decode-only --kv-dtype bf16 --layers 0,5 --repeat 3
echo "== The same over f8 caches (--kv-dtype f8: OCP E4M3FN, a quarter of f32's bytes)"
"$bin/hybrid-bench" "$model" --seq-len "$bench_seq" --decode-steps 16 --decode-only --kv-dtype f8 --layers 0,5 --repeat 3
echo
echo "== The same layers compiled for NVIDIA GPUs (cuda:sm_90a): PTX with tensor-core mma.sync, cubin"
toolkit=${CUDA_HOME:-/usr/local/cuda}
if [ ! -e "$toolkit/nvvm/libdevice/libdevice.10.bc" ]; then
  echo "(no CUDA toolkit at $toolkit: set CUDA_HOME to compile for GPUs)"
  exit 0
fi
gpu_dir=$(mktemp -d)
trap 'rm -rf "$gpu_dir"' EXIT
"$bin/hybrid-compile" "$model" --target cuda:sm_90a --emit artifacts -o "$gpu_dir" "${max_seq_flag[@]}"
grep -c "mma.sync.aligned.m16n8k16" "$gpu_dir/kernels.ptx" |
  xargs -I{} echo "kernels.ptx: {} tensor-core mma.sync instructions, $(du -h "$gpu_dir/kernels.ptx" | cut -f1); cubin: $(du -h "$gpu_dir/kernels.cubin" 2>/dev/null | cut -f1 || echo 'none (no ptxas)')"
if [ -e /dev/nvidiactl ]; then
  echo "== ... run on this machine's GPU: prompt of $seq tokens and $steps decode steps through device caches, against the reference"
  "$bin/hybrid-rt-check" "$gpu_dir" --batch 2 --seq "$seq" --decode-steps "$steps"
elif [ -e "${BUILD_DIR:-build}/lib/libhybrid-cuda-emulator.so" ]; then
  emu_seq=${EMULATED_SEQ_LEN:-70}
  echo "== ... no GPU here: run under the PTX emulator instead (slow; the same kernels and CUDA backend), prompt of $emu_seq tokens and 4 decode steps, against the reference"
  HYBRID_CUDA_DRIVER="${BUILD_DIR:-build}/lib/libhybrid-cuda-emulator.so" \
    "$bin/hybrid-rt-check" "$gpu_dir" --seq "$emu_seq" --decode-steps 4
  echo "(utils/gpu-suite.sh runs them, and the GPU benchmark, on an NVIDIA GPU)"
else
  echo "(no NVIDIA GPU here: utils/gpu-suite.sh runs them on one)"
fi
