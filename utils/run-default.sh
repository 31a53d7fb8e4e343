#!/usr/bin/env bash
#===- run-default.sh - The main job on the bundled default model ----------===#
# Imports the bundled Gemma 3 1B config.json, prints its schedule in the hybrid
# dialect (interleaving written as hybrid.repeat, caches planned) and its
# KV-cache plan against an all-full-attention model of the same size; then
# compiles every attention layer for this CPU and serves a batch through the
# runtime: prefill, then decode steps over the caches the plan sized (checked
# at every position against the float64 reference), the memory those caches
# take against an all-full model, and per-layer prefill and decode timings.
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
