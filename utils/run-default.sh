#!/usr/bin/env bash
#===- run-default.sh - The main job on the bundled default model ----------===#
# Imports the bundled Gemma 3 1B config.json, prints its schedule in the hybrid
# dialect (interleaving written as hybrid.repeat, caches planned) and its
# KV-cache plan against an all-full-attention model of the same size; then
# compiles every attention layer for this CPU, runs a prefill through the
# runtime against the float64 reference, and times every layer.
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
echo "== Every layer compiled for this CPU: prefill of $seq tokens, checked against the float64 reference"
"$bin/hybrid-run" "$model" --seq-len "$seq" --check
echo
echo "== Prefill time per layer at ${BENCH_SEQ_LEN:=4096} tokens (median of 3, useful GFLOP/s)"
"$bin/hybrid-bench" "$model" --seq-len "$BENCH_SEQ_LEN" --repeat 3
