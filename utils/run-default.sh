#!/usr/bin/env bash
#===- run-default.sh - The main job on the bundled default model ----------===#
# Imports the bundled Gemma-3-style schedule, prints its IR after pattern
# expansion and cache planning, and its cache plan against all-full layers.
set -euo pipefail
cd "$(dirname "$0")/.."
utils/build.sh >/dev/null
bin=${BUILD_DIR:-build}/bin
model=examples/gemma3-1b.mlir
echo "== $model: schedule after expansion, verification and cache planning"
"$bin/hybrid-opt" "$model" --hybrid-expand-patterns --hybrid-verify-schedule \
  --hybrid-plan-caches
echo "== cache plan"
"$bin/hybrid-opt" "$model" --hybrid-plan-caches |
  grep -o 'cache_summary = #hybrid.cache_summary<[^>]*>'
