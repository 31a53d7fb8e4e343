#!/usr/bin/env bash
#===- sanitize-runtime.sh - The runtime under the sanitizers --------------===#
#
# Builds the runtime alone (runtime/CMakeLists.txt: no MLIR) under a
# sanitizer, the PTX emulator included, and runs what drives it: the
# runtime's unit tests, the C API check on CPU and emulated GPU artifacts,
# and hybrid-rt-check (prefill and decode) on CPU, sm_80 and sm_90a (wgmma,
# TMA, warp specialization, ping-pong) artifacts. Where nanobind, numpy and
# pytest are installed, it also builds the hybrid_attn package over that
# runtime and runs, in the ordinary Python with the sanitizer's runtime
# preloaded, the package's CPU and emulated-GPU tests and fuzz-session cases
# whose sessions of one model are called from three threads. The artifacts
# come from the main build's hybrid-compile (utils/build.sh first). Any
# sanitizer report fails the run.
#
#   utils/sanitize-runtime.sh [address]  ASan and UBSan (about 5 minutes)
#   utils/sanitize-runtime.sh thread     TSan: the CPU backend's thread pool,
#                                        the model's call lock (about 6)
#
# Environment: HYBRID_SANITIZE_DIR (default $TMPDIR/hybrid-runtime-<mode>),
# HYBRID_BUILD (the main build, default build), CC and CXX (default clang-22
# and clang++-22 where installed, else clang and clang++).
#
#===----------------------------------------------------------------------===#
set -euo pipefail

MODE="${1:-address}"
case "$MODE" in
  address)
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
    RUNTIME=asan
    export ASAN_OPTIONS="exitcode=86"
    export UBSAN_OPTIONS="exitcode=86:print_stacktrace=1" ;;
  thread)
    SAN="-fsanitize=thread"
    RUNTIME=tsan
    export TSAN_OPTIONS="exitcode=86:halt_on_error=1" ;;
  *) echo "usage: sanitize-runtime.sh [address|thread]" >&2; exit 2 ;;
esac
SAN="$SAN -fno-omit-frame-pointer"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${HYBRID_SANITIZE_DIR:-${TMPDIR:-/tmp}/hybrid-runtime-$MODE}"
MAIN="${HYBRID_BUILD:-$ROOT/build}"
compiler() { command -v "$1-22" || command -v "$1"; }
CC="${CC:-$(compiler clang)}"
CXX="${CXX:-$(compiler clang++)}"
COMPILE="$MAIN/bin/hybrid-compile"
[[ -x "$COMPILE" ]] || { echo "no $COMPILE: run utils/build.sh first" >&2; exit 2; }

PYTHON="$(command -v python3)"
python=OFF
if "$PYTHON" -c "import nanobind, numpy, pytest" 2> /dev/null; then
  python=ON
fi

mkdir -p "$WORK"
echo "building the runtime with $SAN in $WORK/build"
# C programs (the C API check) link the C++ sanitizer runtimes explicitly.
cmake -S "$ROOT/runtime" -B "$WORK/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHYBRID_ENABLE_CUDA=ON \
  -DHYBRID_ENABLE_PYTHON="$python" -DPython_EXECUTABLE="$PYTHON" \
  -DCMAKE_C_COMPILER="$CC" \
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_FLAGS="$SAN" \
  -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN -fsanitize-link-c++-runtime -lstdc++" \
  > "$WORK/build.log"
ninja -C "$WORK/build" -j2 hybrid-rt-check hybrid-rt-c-api-check \
  HybridRuntimeTests hybrid-cuda-emulator \
  $([[ "$python" == ON ]] && echo HybridPythonPackage) >> "$WORK/build.log"

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
check c-api-gpu 0 "$bin/hybrid-rt-c-api-check" "$art/sm90a-masks" 2
check c-api-cpu-session 0 "$bin/hybrid-rt-c-api-check" "$art/cpu-caches" 0 9
check c-api-gpu-session 0 "$bin/hybrid-rt-c-api-check" "$art/sm80-caches" 0 9
for dir in cpu-caches cpu-masks sm80-caches sm90a-masks; do
  check "check-$dir" 0 "$bin/hybrid-rt-check" "$art/$dir" --batch 2 \
    --seq 7,40 --decode-steps 2 --step-tokens 3
done
# Steps replayed from a CUDA graph (the emulator's capture and replay).
check check-sm80-caches-graph 0 "$bin/hybrid-rt-check" "$art/sm80-caches" \
  --batch 2 --seq 7,40 --decode-steps 2 --step-tokens 3 --graph

# The package's extension leaves the sanitizer's runtime to the process,
# as shared libraries do: Python gets it preloaded. hybrid-compile, which
# the package and fuzz-session run, is not ours to check: it runs without.
if [[ "$python" == ON ]]; then
  fuzz_build="$WORK/fuzz-build" # fuzz-session's view: our package and
  mkdir -p "$fuzz_build/bin"    # emulator, the main build's compiler
  printf '#!/bin/sh\nexec env -u LD_PRELOAD %q "$@"\n' "$COMPILE" \
    > "$fuzz_build/bin/hybrid-compile"
  chmod +x "$fuzz_build/bin/hybrid-compile"
  ln -sfn "$WORK/build/lib" "$fuzz_build/lib"
  ln -sfn "$WORK/build/python_packages" "$fuzz_build/python_packages"
  export HYBRID_COMPILE="$fuzz_build/bin/hybrid-compile"
  export LD_PRELOAD="$("$CXX" -print-file-name="libclang_rt.$RUNTIME-x86_64.so")"
  # Python's own allocations at exit are not ours to report.
  export ASAN_OPTIONS="exitcode=86:detect_leaks=0"
  # The test that limits the address space is left out: the sanitizers'
  # shadow memory and allocators fail on their own under it, before the
  # runtime could see std::bad_alloc.
  PYTHONPATH="$WORK/build/python_packages" check python-tests 0 \
    "$PYTHON" -m pytest -q -p no:cacheprovider \
    "$ROOT/python/tests/test_hybrid_attn.py" \
    "$ROOT/python/tests/test_emulated.py" \
    -k "not test_allocation_failures_are_errors"
  check fuzz-session 0 "$PYTHON" "$ROOT/utils/fuzz-session.py" --cases 12 \
    --seed 1 --threads 3 --build "$fuzz_build" --dir "$WORK/fuzz-session"
  unset LD_PRELOAD
else
  echo "skipped: python (nanobind, numpy or pytest missing for $PYTHON)"
fi
exit "$failed"
