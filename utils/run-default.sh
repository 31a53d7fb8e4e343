#!/usr/bin/env bash
#===- run-default.sh - The main job on the bundled default model ----------===#
# Imports the bundled Gemma 3 1B config.json, prints its schedule in the hybrid
# dialect (interleaving written as hybrid.repeat, caches planned) and its
# KV-cache plan against an all-full-attention model of the same size.
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
