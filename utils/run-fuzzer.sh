#!/usr/bin/env bash
#===- run-fuzzer.sh - Build and run the importer fuzzer ------------------===#
#
# Builds tools/hybrid-import-fuzzer standalone (no CMake) with libFuzzer and
# ASan/UBSan against the installed LLVM 22, seeds a corpus with every config
# and example in the tree, and fuzzes importModel.
#
#   utils/run-fuzzer.sh [SECONDS]        default 60
#
# Environment: HYBRID_FUZZ_DIR (work dir, default $TMPDIR/hybrid-import-fuzz),
# HYBRID_SHARED_CONFIGS (extra seeds, default /work/shared/configs),
# CXX (default clang++-22). Findings land in $HYBRID_FUZZ_DIR/artifacts.
#
#===----------------------------------------------------------------------===#
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
LLVM="${LLVM_PREFIX:-/usr/lib/llvm-22}"
CXX="${CXX:-clang++-22}"
WORK="${HYBRID_FUZZ_DIR:-${TMPDIR:-/tmp}/hybrid-import-fuzz}"
SHARED="${HYBRID_SHARED_CONFIGS:-/work/shared/configs}"

mkdir -p "$WORK/corpus" "$WORK/artifacts"

echo "building $WORK/hybrid-import-fuzzer"
"$CXX" -std=c++17 -g -O1 -fno-exceptions \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$ROOT/include" -I"$LLVM/include" \
  "$ROOT/lib/Import/JSONUtil.cpp" "$ROOT/lib/Import/HFFamilies.cpp" \
  "$ROOT/lib/Import/HFConfig.cpp" "$ROOT/lib/Import/ScheduleSpec.cpp" \
  "$ROOT/tools/hybrid-import-fuzzer/hybrid-import-fuzzer.cpp" \
  -L"$LLVM/lib" -lLLVM -Wl,-rpath,"$LLVM/lib" \
  -o "$WORK/hybrid-import-fuzzer"

# Seeds: every real config and spec example we have.
SEEDS=("$ROOT"/test/Import/configs/*.json "$ROOT"/examples/*.json)
if [ -d "$SHARED" ]; then
  SEEDS+=("$SHARED"/*.json)
fi
cp "${SEEDS[@]}" "$WORK/corpus/"

# A dictionary of the field names and values the seeds use lets the fuzzer
# build structurally valid documents instead of guessing spellings.
grep -ohE '"[A-Za-z0-9_.-]+"' "${SEEDS[@]}" | sort -u > "$WORK/json.dict"

echo "fuzzing for ${SECONDS_TO_RUN}s (corpus: $WORK/corpus)"
"$WORK/hybrid-import-fuzzer" "$WORK/corpus" \
  -dict="$WORK/json.dict" \
  -max_total_time="$SECONDS_TO_RUN" \
  -max_len=65536 \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -print_final_stats=1 \
  -artifact_prefix="$WORK/artifacts/"
