#!/usr/bin/env bash
#===- sanitize-runtime.sh - The runtime under ASan and UBSan -------------===#
#
# Builds the runtime alone (runtime/CMakeLists.txt: no MLIR) with
# -fsanitize=address,undefined, the PTX emulator included, and runs what
# drives it: the runtime's unit tests, the C API check on CPU and emulated
# GPU artifacts, and hybrid-rt-check (prefill and decode) on CPU, sm_80 and
# sm_90a (wgmma, TMA, warp specialization, ping-pong) artifacts. The
# artifacts come from the main build's hybrid-compile (utils/build.sh
# first). Any sanitizer report fails the run.
#
#   utils/sanitize-runtime.sh            about 5 minutes on 2 cores
#
# Environment: HYBRID_SANITIZE_DIR (default $TMPDIR/hybrid-runtime-sanitized),
# HYBRID_BUILD (the main build, default build), CC and CXX (default clang-22
# and clang++-22 where installed, else clang and clang++).
#
#===----------------------------------------------------------------------===#
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${HYBRID_SANITIZE_DIR:-${TMPDIR:-/tmp}/hybrid-runtime-sanitized}"
MAIN="${HYBRID_BUILD:-$ROOT/build}"
compiler() { command -v "$1-22" || command -v "$1"; }
CC="${CC:-$(compiler clang)}"
CXX="${CXX:-$(compiler clang++)}"
COMPILE="$MAIN/bin/hybrid-compile"
[[ -x "$COMPILE" ]] || { echo "no $COMPILE: run utils/build.sh first" >&2; exit 2; }

mkdir -p "$WORK"
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
echo "building the runtime with ASan and UBSan in $WORK/build"
# C programs (the C API check) link the C++ sanitizer runtimes explicitly.
cmake -S "$ROOT/runtime" -B "$WORK/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHYBRID_ENABLE_CUDA=ON \
  -DHYBRID_ENABLE_PYTHON=OFF -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_FLAGS="$SAN" \
  -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN -fsanitize-link-c++-runtime -lstdc++" \
  > "$WORK/build.log"
ninja -C "$WORK/build" -j2 hybrid-rt-check hybrid-rt-c-api-check \
  HybridRuntimeTests hybrid-cuda-emulator >> "$WORK/build.log"

inputs="$ROOT/test/Runtime/Inputs"
art="$WORK/artifacts"
rm -rf "$art"
"$COMPILE" "$inputs/caches.json" --emit artifacts -o "$art/cpu-caches"
"$COMPILE" "$inputs/masks.json" --emit artifacts -o "$art/cpu-masks"
"$COMPILE" "$inputs/caches.json" --target cuda:sm_80 --cubin=false \
  --emit artifacts -o "$art/sm80-caches"
"$COMPILE" "$inputs/masks.json" --target cuda:sm_90a --tensor-cores wgmma \
  --tma --warps 8 --stages 2 --softmax-overlap --warp-specialized \
  --ping-pong --cubin=false --emit artifacts -o "$art/sm90a-masks"

export HYBRID_CUDA_DRIVER="$WORK/build/lib/libhybrid-cuda-emulator.so"
export ASAN_OPTIONS="exitcode=86" UBSAN_OPTIONS="exitcode=86:print_stacktrace=1"
failed=0
# Each command's output goes to its log; a sanitizer report or an exit
# status other than the expected one fails the run.
check() {
  local name="$1" expected="$2"
  shift 2
  local status=0
  "$@" > "$WORK/$name.log" 2>&1 || status=$?
  if [[ "$status" != "$expected" ]] ||
     grep -q "Sanitizer\|runtime error" "$WORK/$name.log"; then
    echo "FAILED: $name (exit $status): $WORK/$name.log"
    failed=1
  else
    echo "ok: $name"
  fi
}
bin="$WORK/build/bin"
check unittests 0 "$WORK/build/unittests/HybridRuntimeTests"
check c-api-cpu 0 "$bin/hybrid-rt-c-api-check" "$art/cpu-masks" 2
check c-api-cpu-session 0 "$bin/hybrid-rt-c-api-check" "$art/cpu-caches" 0 9
check c-api-gpu-session 0 "$bin/hybrid-rt-c-api-check" "$art/sm80-caches" 0 9
for dir in cpu-caches cpu-masks sm80-caches sm90a-masks; do
  check "check-$dir" 0 "$bin/hybrid-rt-check" "$art/$dir" --batch 2 \
    --seq 7,40 --decode-steps 2 --step-tokens 3
done
exit "$failed"
