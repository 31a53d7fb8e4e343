#!/usr/bin/env bash
# The GPU suite in two halves, because GPU machines have no MLIR:
#
#   utils/gpu-suite.sh prepare [DIR]  here (after utils/build.sh): compiles the
#       test and benchmark schedules for cuda:sm_90a into DIR (default
#       gpu-suite/; artifacts.tar.gz, unpacked by the other modes) and copies
#       the runtime's dependencies;
#   utils/gpu-suite.sh run [DIR]      on the GPU machine (cmake, ninja, CUDA
#       driver, torch): builds the runtime with CUDA, then runs six phases:
#       conformance the emulator's PTX instruction tests on the GPU;
#       check   every kernel of every schedule against the float64 reference
#               (batch 2, lengths 1 to 1000, not multiples of the tiles;
#               every layer through its cache);
#       python  the hybrid_attn package (built here over the runtime alone)
#               with CUDA torch tensors and device arrays;
#       bench   our kernels and the PyTorch baselines, in the same run, and
#               a whole model's decode step eager and from a CUDA graph;
#       profile the prefill and decode kernels under ncu;
#       sanitize compute-sanitizer on small cases;
#     and writes DIR/results/ (benchmarks.md: the table docs/benchmarks.md
#     takes; tuning.json: the fastest variant per kernel and length, a
#     database for hybrid-compile --tuning-db; checks.txt; conformance.txt;
#     ncu-*.txt; sanitizer-*.txt). Each phase also runs alone
#     (`gpu-suite.sh check`, ...).
#   utils/gpu-suite.sh pack OUT [DIR] copies benchmarks.md, checks.txt and
#       tuning.json to
#       OUT with the rest of results/ as results.tar.gz (dumps.tar.gz: the
#       operands of failed checks, when under 15 MiB).
#
# HYBRID_GPU_SUITE_BUDGET=SECONDS bounds `run` (build included) for a machine
# lent by the minute: each phase gets a share of the time left (conformance
# and python 1, check and bench 3, profile and sanitize 2) and is stopped at
# it, saying so in checks.txt; the report is still written. On a lent device:
#   HYBRID_GPU_SUITE_BUDGET=420 HYBRID_GPU_SUITE_OUT="$OUT" utils/gpu-suite.sh run
# HYBRID_GPU_SUITE_OUT=OUT packs the results into OUT (as `pack` does) after
# every phase, report included: a lease that ends mid-run still sends back
# what the finished phases measured.
#
# HYBRID_GPU_SUITE_JOBS=N runs the check phase's checks N at a time
# (default 4; the other phases run one program at a time: they time or
# profile it). A phase stopped at its limit still writes what its checks
# printed, and counts the checks it did not run.
#
# HYBRID_GPU_SUITE_SMOKE=1 shrinks every size (and skips the PyTorch
# baselines when torch has no GPU), so that the whole `run` flow can be
# tried under the PTX emulator (HYBRID_CUDA_DRIVER; lit:
# test/Runtime/gpu-suite-smoke.test) before a GPU machine's time is spent;
# `prepare` then writes PTX only (the emulator runs no cubins; ptxas is
# half of each compile).
#
# Exit status non-zero if any check fails or a phase is cut short.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
usage="usage: gpu-suite.sh prepare|run|conformance|check|python|bench|profile|sanitize [DIR]
       gpu-suite.sh pack OUT [DIR]"
mode="${1:-}"
if [[ "$mode" == pack ]]; then
  out="$(realpath -m "${2:?$usage}")"
  shift
fi
dir="$(realpath -m "${2:-$root/gpu-suite}")"
chip="${HYBRID_GPU_CHIP:-sm_90a}"

if [[ "$mode" == prepare ]]; then
  build_dir="${BUILD_DIR:-build}"
  [[ "$build_dir" == /* ]] || build_dir="$root/$build_dir"
  compile=("$build_dir/bin/hybrid-compile")
  if [[ -n "${HYBRID_GPU_SUITE_SMOKE:-}" ]]; then
    compile+=(--cubin=false)
  fi
  rm -rf "$dir" && mkdir -p "$dir/artifacts" "$dir/python-artifacts" "$dir/deps"
  inputs="$root/test/Runtime/Inputs"
  python3 "$inputs/make-cross.py" > "$dir/cross.json"
  for spec in "$inputs"/{masks,positional,scores,gqa,nope,caches}.json \
              "$dir/cross.json" "$root/examples/configs/gemma-3-1b-it.json" \
              "$root/examples/configs/gemma-4-e4b.json" \
              "$root/benchmarks/gpu-attention-32x128.json" \
              "$root/benchmarks/gpu-steps-gqa8.json" \
              "$root/benchmarks/gpu-decode-wide-heads.json"; do
    name="$(basename "$spec" .json)"
    # Caches are planned for each schedule's own context (the benchmark's
    # decode runs at 128K).
    "${compile[@]}" "$spec" --target "cuda:$chip" --emit artifacts \
      -o "$dir/artifacts/$name"
  done
  # nlohmann_json (headers and CMake package) for the runtime's build there.
  mkdir -p "$dir/deps/include" "$dir/deps/share/cmake"
  cp -r /usr/include/nlohmann "$dir/deps/include/"
  # GoogleTest sources, for the conformance phase's test binary there.
  cp -r /usr/src/googletest "$dir/deps/googletest"
  cp -r /usr/share/cmake/nlohmann_json "$dir/deps/share/cmake/"
  # The variant with 32 query rows per warp (two mma tiles; more registers),
  # checked and benchmarked beside the default.
  "${compile[@]}" "$inputs/masks.json" --target "cuda:$chip" --warp-rows 32 \
    --emit artifacts -o "$dir/artifacts/masks-w32"
  "${compile[@]}" "$root/benchmarks/gpu-attention-32x128.json" --target "cuda:$chip" \
    --warp-rows 32 --k-tile 32 --emit artifacts \
    -o "$dir/artifacts/gpu-attention-32x128-w32"
  # ... and the default with 32-key tiles (fewer registers, more CTAs per SM).
  "${compile[@]}" "$root/benchmarks/gpu-attention-32x128.json" --target "cuda:$chip" \
    --k-tile 32 --emit artifacts \
    -o "$dir/artifacts/gpu-attention-32x128-k32"
  # ... and the default held to 3 CTAs per SM (168 registers, 32 bytes of
  # spill at head dim 128, against 174 registers and 2 CTAs).
  "${compile[@]}" "$root/benchmarks/gpu-attention-32x128.json" --target "cuda:$chip" \
    --min-ctas-per-sm 3 --emit artifacts \
    -o "$dir/artifacts/gpu-attention-32x128-m3"
  # ... and CTAs of 8 warps (128 rows share each K and V tile: half the
  # bytes per row).
  "${compile[@]}" "$root/benchmarks/gpu-attention-32x128.json" --target "cuda:$chip" \
    --warps 8 --emit artifacts -o "$dir/artifacts/gpu-attention-32x128-w8"
  # The wide heads' prefill (Gemma 4's dims 256 and 512) in value slices of
  # at most 128: four CTAs per head at 512, each computing Q K^T, for half
  # the accumulators of the default's two.
  "${compile[@]}" "$root/benchmarks/gpu-decode-wide-heads.json" --target "cuda:$chip" \
    --value-slice 128 --emit artifacts -o "$dir/artifacts/gpu-decode-wide-heads-v128"
  # ... and the default rescaling the output on every tile whose row maxima
  # grow (--rescale-threshold 0), against the lazy default.
  "${compile[@]}" "$root/benchmarks/gpu-attention-32x128.json" --target "cuda:$chip" \
    --rescale-threshold 0 --emit artifacts \
    -o "$dir/artifacts/gpu-attention-32x128-eager"
  # ... and, on sm_90a, Hopper's warpgroup MMA (wgmma) in place of mma.sync,
  # with K and V tiles by cp.async and by TMA: checked on every mask, the
  # caches and Gemma 4, benchmarked beside the default.
  if [[ "$chip" == sm_90a ]]; then
    for spec in "$inputs/masks.json" "$inputs/caches.json" \
                "$root/examples/configs/gemma-4-e4b.json" \
                "$root/benchmarks/gpu-attention-32x128.json"; do
      name="$(basename "$spec" .json)"
      "${compile[@]}" "$spec" --target "cuda:$chip" --tensor-cores wgmma \
        --emit artifacts -o "$dir/artifacts/$name-wgmma"
      "${compile[@]}" "$spec" --target "cuda:$chip" --tensor-cores wgmma --tma \
        --emit artifacts -o "$dir/artifacts/$name-tma"
    done
    # Hopper variants of wgmma + TMA, by suffix: two warpgroups per CTA
    # (w8), 128-key tiles (k128: 64 KiB of dynamic shared memory at head
    # dim 128, no spills; w8-k128 is FlashAttention-3's 128 x 128 tile),
    # S stages per tile kind (sS: the next S - 1 tiles load during this one),
    # eager rescaling (eager: --rescale-threshold 0), softmax overlapping
    # the tensor cores (overlap: FlashAttention-3's intra-warpgroup
    # pipelining, S >= 2), a producer warp issuing the loads (ws: warp
    # specialization; with w8 a producer warpgroup and setmaxnreg), the two
    # warpgroups taking turns issuing their products (pp: ping-pong). All
    # are benchmarked; w8, s2, s2-overlap and the ws ones are also checked
    # on every mask.
    declare -A hopper=([tma-w8]="--warps 8" [tma-k128]="--k-tile 128"
                       [tma-w8-k128]="--warps 8 --k-tile 128"
                       [tma-s2]="--stages 2"
                       [tma-w8-k128-s2]="--warps 8 --k-tile 128 --stages 2"
                       [tma-w8-k128-s3]="--warps 8 --k-tile 128 --stages 3"
                       [tma-eager]="--rescale-threshold 0"
                       [tma-s2-overlap]="--stages 2 --softmax-overlap"
                       [tma-w8-s2-overlap]="--warps 8 --stages 2 --softmax-overlap"
                       [tma-w8-k128-s2-overlap]="--warps 8 --k-tile 128 --stages 2 --softmax-overlap"
                       [tma-s2-overlap-ws]="--stages 2 --softmax-overlap --warp-specialized"
                       [tma-w8-s2-overlap-ws]="--warps 8 --stages 2 --softmax-overlap --warp-specialized"
                       [tma-w8-k128-s2-overlap-ws]="--warps 8 --k-tile 128 --stages 2 --softmax-overlap --warp-specialized"
                       [tma-w8-s2-overlap-ws-pp]="--warps 8 --stages 2 --softmax-overlap --warp-specialized --ping-pong"
                       [tma-w8-k128-s2-overlap-ws-pp]="--warps 8 --k-tile 128 --stages 2 --softmax-overlap --warp-specialized --ping-pong")
    for variant in "${!hopper[@]}"; do
      # shellcheck disable=SC2086 # the flags split on purpose
      "${compile[@]}" "$root/benchmarks/gpu-attention-32x128.json" \
        --target "cuda:$chip" --tensor-cores wgmma --tma ${hopper[$variant]} \
        --emit artifacts -o "$dir/artifacts/gpu-attention-32x128-$variant"
    done
    for variant in tma-w8 tma-s2 tma-s2-overlap tma-s2-overlap-ws \
                   tma-w8-s2-overlap-ws tma-w8-s2-overlap-ws-pp; do
      # shellcheck disable=SC2086
      "${compile[@]}" "$inputs/masks.json" --target "cuda:$chip" \
        --tensor-cores wgmma --tma ${hopper[$variant]} --emit artifacts \
        -o "$dir/artifacts/masks-$variant"
    done
    # shellcheck disable=SC2086
    "${compile[@]}" "$inputs/caches.json" --target "cuda:$chip" \
      --tensor-cores wgmma --tma ${hopper[tma-s2-overlap-ws]} --emit artifacts \
      -o "$dir/artifacts/caches-tma-s2-overlap-ws"
    # ... and Gemma 4 with the overlap: head dims 256 and 512 (queries
    # reloaded per tile, kept live through the in-flight product), K = V.
    # shellcheck disable=SC2086
    "${compile[@]}" "$root/examples/configs/gemma-4-e4b.json" --target "cuda:$chip" \
      --tensor-cores wgmma --tma ${hopper[tma-s2-overlap]} --emit artifacts \
      -o "$dir/artifacts/gemma-4-e4b-tma-s2-overlap"
    # ... and in value slices of at most 128, which at head dim 512 is what
    # keeps ptxas from serializing the wgmmas for want of registers; the
    # wide heads' prefill benchmarked both ways.
    # shellcheck disable=SC2086
    "${compile[@]}" "$root/examples/configs/gemma-4-e4b.json" --target "cuda:$chip" \
      --tensor-cores wgmma --tma ${hopper[tma-s2-overlap]} --value-slice 128 \
      --emit artifacts -o "$dir/artifacts/gemma-4-e4b-tma-s2-overlap-v128"
    for slice in 256 128; do
      suffix="$([[ $slice == 256 ]] || echo "-v$slice")"
      # shellcheck disable=SC2086
      "${compile[@]}" "$root/benchmarks/gpu-decode-wide-heads.json" \
        --target "cuda:$chip" --tensor-cores wgmma --tma \
        ${hopper[tma-s2-overlap]} --value-slice "$slice" --emit artifacts \
        -o "$dir/artifacts/gpu-decode-wide-heads-tma-s2-overlap$suffix"
    done
  fi
  # The hybrid_attn tests' schedules (the python phase's: the package there
  # has no compiler), compiled as those tests ask (their fixtures' setup),
  # by the interpreter the package was built for.
  if [[ -d "$build_dir/python_packages/hybrid_attn" ]]; then
    python="$(grep -m 1 -E '^_?Python3?_EXECUTABLE:' \
                "$build_dir/CMakeCache.txt" | cut -d = -f 2-)"
    HYBRID_ATTN_TEST_ARTIFACTS="$dir/python-artifacts" \
      PYTHONPATH="$build_dir/python_packages" \
      HYBRID_CUDA_DRIVER="$build_dir/lib/libhybrid-cuda-emulator.so" \
      "${python:-python3}" -m pytest -q -p no:cacheprovider --setup-only \
      "$root/python/tests/test_gpu.py" "$root/python/tests/test_emulated.py" \
      > "$dir/python-artifacts.log"
  else
    echo "no hybrid_attn package in $build_dir: the python phase will fail"
  fi
  rm -f "$dir"/{,python-}artifacts/*/kernels.mlir # only PTX and cubin travel
  # The tree that travels to a lent GPU machine is limited (64 MiB): PTX and
  # cubins of every schedule and variant take about 80 MiB, compressed 17.
  # The other modes unpack them.
  tar czf "$dir/artifacts.tar.gz" -C "$dir" artifacts python-artifacts
  rm -rf "$dir/artifacts" "$dir/python-artifacts"
  du -sh "$dir"
  exit 0
fi

if [[ "$mode" == pack ]]; then
  # What a device machine sends back: a few files (benchmarks.md, checks.txt,
  # tuning.json, results.tar.gz without the dumps; dumps.tar.gz when it is
  # small enough).
  results="$dir/results"
  mkdir -p "$out"
  for f in benchmarks.md checks.txt tuning.json; do
    if [[ -f "$results/$f" ]]; then cp "$results/$f" "$out/"; fi
  done
  tar czf "$out/results.tar.gz" -C "$dir" --exclude results/dumps results
  if [[ -d "$results/dumps" ]]; then
    tar czf "$out/dumps.tar.gz" -C "$dir" results/dumps
    if (( $(stat -c %s "$out/dumps.tar.gz") > 15 * 2**20 )); then
      rm "$out/dumps.tar.gz"
      echo "dumps over 15 MiB: left in $results/dumps"
    fi
  fi
  ls -l "$out"
  exit 0
fi

case "$mode" in run|conformance|check|python|bench|profile|sanitize) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
if [[ ! -d "$dir/artifacts" && -f "$dir/artifacts.tar.gz" ]]; then
  tar xzf "$dir/artifacts.tar.gz" -C "$dir"
fi
build="${HYBRID_GPU_BUILD:-/tmp/hybrid-runtime-cuda}"
if [[ -n "${HYBRID_GPU_SUITE_SMOKE:-}" ]]; then
  prefill=(--batch 1 --seq 7,65) sessions=(--batch 1 --seq 70 --decode-steps 2)
  steps=(--seq 33 --decode-steps 2) bench_check=(--seq 65)
  bench=(--seq 128) repeat=1 decode=(--seq 130) baseline_seqs=(128)
  chunks=(--seq 66) chunk_tokens=(32) gqa_tokens=(2) unsplit=(masks)
  probe_prefill=(masks) probe_sessions=(caches)
else
  prefill=(--batch 2 --seq 1,7,64,65,203,1000)
  sessions=(--batch 2 --seq 1,70,300 --decode-steps 6)
  steps=(--seq 129 --decode-steps 4) bench_check=(--seq 1000)
  bench=(--seq 8192,32768) repeat=10 decode=(--seq 32760,131064)
  baseline_seqs=(8192 32768)
  # Chunked prefill: two steps of T tokens after a prompt, ending at 32K.
  chunks=(--seq 31744) chunk_tokens=(4 16 64 512)
  # Decode steps at GQA 8: 8, 16 and 32 rows per kv head.
  gqa_tokens=(1 2 4)
  # Prefill checked again with the flash kernel unsplit.
  unsplit=(masks scores caches)
  # Probe inputs (exact key ranges): every mask and cache policy.
  probe_prefill=(masks masks-tma-s2-overlap masks-w32 masks-tma-w8-s2-overlap-ws
                 masks-tma-w8-s2-overlap-ws-pp)
  probe_sessions=(caches caches-tma caches-tma-s2-overlap-ws)
fi
check="$build/bin/hybrid-rt-check"
results="$dir/results"
bench_schedule="$dir/artifacts/gpu-attention-32x128"
# The benchmark's variants, most promising first (a phase cut at its time
# limit loses the last ones): wgmma + TMA, then wgmma, then mma.sync.
variants=(tma-w8-k128-s2-overlap tma-w8-k128-s2-overlap-ws
          tma-w8-k128-s2-overlap-ws-pp tma-w8-k128-s2 tma-s2-overlap
          tma-s2-overlap-ws tma-w8-s2-overlap tma-w8-s2-overlap-ws
          tma-w8-s2-overlap-ws-pp
          tma-w8-k128 tma-w8 tma tma-w8-k128-s3 tma-k128 tma-s2
          wgmma w8 w32 k32 m3 tma-eager eager)

start=$SECONDS # a budget counts the build
# Why the python phase cannot run here, if it cannot: the hybrid_attn
# extension needs nanobind and Python's headers, its tests pytest and numpy.
python_missing() {
  python3 -c "import nanobind, pytest, numpy" 2> /dev/null ||
    { echo "nanobind, pytest or numpy is not installed"; return; }
  python3 -c "import os, sysconfig; assert os.path.isfile(os.path.join(
    sysconfig.get_paths()['include'], 'Python.h'))" 2> /dev/null ||
    echo "Python.h is not installed"
}
if [[ -z "${HYBRID_GPU_SUITE_BUILT:-}" ]]; then
  configure=(cmake -S "$root/runtime" -B "$build" -G Ninja
             -DCMAKE_BUILD_TYPE=Release -DHYBRID_ENABLE_CUDA=ON
             -DCMAKE_PREFIX_PATH="$dir/deps"
             -DHYBRID_GTEST_SOURCE_DIR="$dir/deps/googletest")
  # The package is for the python3 on PATH (the one with torch), not
  # whichever interpreter CMake would find first.
  if [[ -n "$(python_missing)" ]] ||
     ! "${configure[@]}" -DHYBRID_ENABLE_PYTHON=ON \
       -DPython_EXECUTABLE="$(command -v python3)" > "$build.log" 2>&1; then
    "${configure[@]}" -DHYBRID_ENABLE_PYTHON=OFF >> "$build.log"
  fi
  ninja -C "$build" hybrid-rt-check >> "$build.log"
  # The conformance phase's binary; the rest of the suite runs without it.
  ninja -C "$build" HybridRuntimeTests >> "$build.log" 2>&1 ||
    echo "HybridRuntimeTests did not build (see $build.log)"
  # The python phase's package (the runtime alone: no compiler).
  if grep -q '^HYBRID_ENABLE_PYTHON:BOOL=ON' "$build/CMakeCache.txt"; then
    ninja -C "$build" HybridPythonPackage >> "$build.log" 2>&1 ||
      echo "the hybrid_attn package did not build (see $build.log)"
  fi
fi

if [[ "$mode" == run ]]; then
  # Every phase in turn, each in its own process, so that with
  # HYBRID_GPU_SUITE_BUDGET (seconds for the whole run, build included) a
  # phase that overruns its share is stopped and the next still runs; time a
  # phase leaves unused goes to the later ones. The report is always written.
  self="$root/utils/gpu-suite.sh"
  rm -rf "$results" && mkdir -p "$results"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader \
    > "$results/gpu.txt" 2> /dev/null || rm -f "$results/gpu.txt"
  status=0
  phases=(conformance check python bench profile sanitize)
  weights=(1 3 1 3 2 2)
  for i in "${!phases[@]}"; do
    phase=${phases[$i]} rc=0
    if [[ -z "${HYBRID_GPU_SUITE_BUDGET:-}" ]]; then
      HYBRID_GPU_SUITE_BUILT=1 bash "$self" "$phase" "$dir" || rc=$?
    else
      rest=0
      for w in "${weights[@]:$i}"; do rest=$((rest + w)); done
      # 10 seconds stay for the report.
      limit=$(( (HYBRID_GPU_SUITE_BUDGET - (SECONDS - start) - 10) *
                weights[i] / rest ))
      if (( limit <= 0 )); then
        echo "phase $phase: skipped, the budget of" \
          "${HYBRID_GPU_SUITE_BUDGET} s is spent" | tee -a "$results/checks.txt"
        status=1
        continue
      fi
      HYBRID_GPU_SUITE_BUILT=1 timeout --kill-after=5 "$limit" \
        bash "$self" "$phase" "$dir" || rc=$?
      if (( rc == 124 || rc == 137 )); then
        echo "phase $phase: stopped at its limit of $limit s;" \
          "its results are incomplete" | tee -a "$results/checks.txt"
      fi
    fi
    (( rc == 0 )) || status=1
    if [[ -n "${HYBRID_GPU_SUITE_OUT:-}" ]]; then
      python3 "$root/utils/gpu-report.py" "$dir" > "$results/benchmarks.md" \
        2> /dev/null || true
      bash "$self" pack "$HYBRID_GPU_SUITE_OUT" "$dir" > /dev/null
    fi
  done
  python3 "$root/utils/gpu-report.py" "$dir" | tee "$results/benchmarks.md" ||
    status=1
  if [[ -n "${HYBRID_GPU_SUITE_OUT:-}" ]]; then
    bash "$self" pack "$HYBRID_GPU_SUITE_OUT" "$dir"
  fi
  echo "checks: $(grep -c ' ok$' "$results/checks.txt" || true) ok," \
    "$(grep -c FAILED "$results/checks.txt" || true) failed;" \
    "$((SECONDS - start)) s; exit $status"
  exit $status
fi

mkdir -p "$results"
status=0
# The check phase's runs go in a queue (run_check) and run
# HYBRID_GPU_SUITE_JOBS at a time (run_checks; default 4: the GPU and the
# float64 reference's threads have room for several small checks at once);
# their lines go to checks.txt in queue order, each run's under the command
# that made it, and a failed run (or one the phase's time limit stopped)
# says so there too.
queue="$results/check-queue"
queued=0
run_check() { # hybrid-rt-check's arguments; the step and split overrides
  local var vars=()  # set for the call travel with it
  for var in HYBRID_CUDA_FLASH_SPLITS HYBRID_CUDA_STEP_KERNEL \
             HYBRID_CUDA_DECODE_SPLITS; do
    if [[ -n "${!var:-}" ]]; then vars+=("$var=${!var}"); fi
  done
  queued=$((queued + 1))
  printf '%q ' env "${vars[@]}" "$check" "$@" > "$queue/$queued.cmd"
  echo "${vars[*]}${vars[*]:+ }hybrid-rt-check ${*#"$dir/"}" \
    > "$queue/$queued.title"
}
collect_checks() {
  local i rc title unstarted=0
  for ((i = 1; i <= queued; i++)); do
    if [[ ! -e "$queue/$i.log" ]]; then
      unstarted=$((unstarted + 1))
      continue
    fi
    title=$(< "$queue/$i.title")
    echo "\$ $title"
    cat "$queue/$i.log"
    if [[ ! -e "$queue/$i.rc" ]]; then
      echo "stopped: $title (the phase's time limit)"
    elif rc=$(< "$queue/$i.rc") && (( rc != 0 )); then
      echo "FAILED: $title exited $rc"
    fi
  done > "$queue/all.txt"
  if (( unstarted )); then
    echo "not run: $unstarted of $queued checks (the phase's time limit)" \
      >> "$queue/all.txt"
  fi
  tee -a "$results/checks.txt" < "$queue/all.txt"
  if grep -q '^FAILED' "$queue/all.txt"; then status=1; fi
  rm -rf "$queue"
  queued=0
}
run_checks() {
  local i jobs=${HYBRID_GPU_SUITE_JOBS:-4}
  for ((i = 1; i <= queued; i++)); do
    while (( $(jobs -rp | wc -l) >= jobs )); do wait -n || true; done
    (eval "$(< "$queue/$i.cmd")" > "$queue/$i.log" 2>&1
     echo $? > "$queue/$i.rc") &
  done
  wait
  trap - TERM
  collect_checks
}
case "$mode" in
conformance)
  # The emulator's instruction tests (PTX with results worked out from the
  # ISA: integer and float corners, shuffles, votes, ldmatrix, mma.sync,
  # wgmma through swizzled descriptors, TMA tile loads with the driver's
  # tensor map, mbarrier parities, dynamic shared memory) on this GPU:
  # a failure names the instruction whose emulated model the hardware
  # contradicts, which every emulated kernel test relied on.
  tests="$build/unittests/HybridRuntimeTests"
  log="$results/conformance.txt"
  rc=0
  if [[ -x "$tests" ]]; then
    HYBRID_PTX_ON_DEVICE=1 "$tests" --gtest_filter='Emulator.*' > "$log" 2>&1 ||
      rc=$?
  else
    echo "HybridRuntimeTests was not built" > "$log"
    rc=1
  fi
  {
    echo "PTX conformance (the emulator's instruction tests on this GPU):" \
      "$(grep -c '^\[       OK \] Emulator' "$log" || true) passed," \
      "$(grep -c '^\[  FAILED  \] Emulator\.[^ ]* (' "$log" || true) failed," \
      "$(grep -c '^\[  SKIPPED \] Emulator\.[^ ]* (' "$log" || true) skipped" \
      "(emulator-only); exit $rc"
    grep '^\[  FAILED  \] Emulator\.[^ ]* (' "$log" | sed 's/^/conformance: /' || true
  } | tee -a "$results/checks.txt"
  (( rc == 0 )) || status=1
  ;;
check)
  # A phase stopped at its limit still reports what finished, even if the
  # queue was still being filled. timeout signals this shell twice (itself,
  # then its process group): the second must not run the report again inside
  # the first, whose output then goes to the file it reads.
  mkdir -p "$queue"
  trap 'trap "" TERM; collect_checks; exit 124' TERM
  # Prefill of every kernel of every schedule first, then the benchmark's
  # kernels and variants at N = 1000, then every layer through its cache
  # (prompt, then decode steps of 1 and of 3 tokens), then bf16 tensors at
  # the C ABI (the conversion kernels), then steps replayed from CUDA
  # graphs, then probe inputs.
  for a in "$dir"/artifacts/*; do
    [[ "${a##*/}" == gpu-@(attention-32x128|steps|decode)* ]] && continue
    run_check "$a" "${prefill[@]}" --dump "$results/dumps/${a##*/}"
  done
  # Short prompts over few kv heads take the split-K twin: the flash kernel
  # itself, unsplit, on every mask and score option too.
  for a in "${unsplit[@]}"; do
    HYBRID_CUDA_FLASH_SPLITS=1 run_check "$dir/artifacts/$a" "${prefill[@]}"
  done
  for a in "$bench_schedule" "${variants[@]/#/$bench_schedule-}" \
           "$dir"/artifacts/gpu-decode-wide-heads*; do
    [[ -d "$a" ]] || continue
    run_check "$a" "${bench_check[@]}"
  done
  for a in "$dir"/artifacts/*; do
    [[ "${a##*/}" == gpu-@(attention-32x128|steps|decode)* ]] && continue
    run_check "$a" "${sessions[@]}"
    run_check "$a" --batch 1 "${steps[@]}" --step-tokens 3
    # Steps of many tokens through the flash kernel over the caches.
    HYBRID_CUDA_STEP_KERNEL=flash run_check "$a" --batch 1 "${steps[@]}" \
      --step-tokens 40
  done
  run_check "$dir/artifacts/masks" "${prefill[@]}" --bf16
  run_check "$dir/artifacts/caches" "${sessions[@]}" --bf16
  # Decode steps replayed from a CUDA graph: every cache policy, and whole
  # models; then of bf16 device tensors (torch's path: the bf16 step and
  # decode kernels). Each prints its step graph's node count.
  for a in caches gemma-3-1b-it gemma-4-e4b; do
    run_check "$dir/artifacts/$a" "${sessions[@]}" --graph
  done
  for a in caches gemma-3-1b-it; do
    run_check "$dir/artifacts/$a" "${sessions[@]}" --graph --bf16
  done
  # Probe inputs: zero queries, 0/1 keys and values, so each row's output
  # is its visible keys' mean value and one key too many or too few fails
  # (at 1e-5; random inputs hide it in bf16 rounding past a few dozen keys).
  for a in "${probe_prefill[@]}"; do
    [[ -d "$dir/artifacts/$a" ]] || continue
    run_check "$dir/artifacts/$a" "${prefill[@]}" --probe
  done
  for a in "${probe_sessions[@]}"; do
    [[ -d "$dir/artifacts/$a" ]] || continue
    run_check "$dir/artifacts/$a" "${sessions[@]}" --probe
    HYBRID_CUDA_STEP_KERNEL=flash run_check "$dir/artifacts/$a" --batch 1 \
      "${steps[@]}" --step-tokens 40 --probe
  done
  run_checks
  ;;
python)
  # The hybrid_attn package on this GPU, built over the runtime alone:
  # hybrid_attn.load opens the tests' schedules compiled by `prepare`; CUDA
  # torch tensors in place and a transformers model's attention
  # (test_gpu.py), and test_emulated.py's sessions, device arrays and bf16
  # DLPack tensors through the real driver.
  log="$results/python.txt"
  package="$build/python_packages"
  rc=0
  if [[ -n "$(python_missing)" ]]; then
    echo "python: skipped, $(python_missing)" | tee -a "$results/checks.txt"
  elif ! compgen -G "$package/hybrid_attn/_runtime*.so" > /dev/null; then
    echo "FAILED: python: the hybrid_attn package did not build ($build.log)" |
      tee -a "$results/checks.txt"
    status=1
  else
    HYBRID_ATTN_TEST_ARTIFACTS="$dir/python-artifacts" \
      PYTHONPATH="$package${PYTHONPATH:+:$PYTHONPATH}" \
      HYBRID_CUDA_DRIVER="${HYBRID_CUDA_DRIVER:-libcuda.so.1}" \
      PYTHONDONTWRITEBYTECODE=1 python3 -m pytest -q -rs -p no:cacheprovider \
      "$root/python/tests/test_gpu.py" "$root/python/tests/test_emulated.py" \
      > "$log" 2>&1 || rc=$?
    {
      echo "python (hybrid_attn's GPU tests): $(tail -n 1 "$log"); exit $rc"
      grep '^FAILED\|^ERROR\|^SKIPPED' "$log" | sed 's/^/python: /' || true
    } | tee -a "$results/checks.txt"
    (( rc == 0 )) || status=1
  fi
  ;;
bench)
  # Ours (device time of the attention kernel; decode: per step over 32K
  # and 128K contexts), the baselines, then our variants.
  "$check" "$bench_schedule" "${bench[@]}" --repeat "$repeat" \
    --no-check --json | tee "$results/ours.jsonl" || status=1
  "$check" "$bench_schedule" "${decode[@]}" \
    --decode-steps 8 --repeat 1 --no-check --json \
    | tee -a "$results/ours.jsonl" || status=1
  if [[ -n "${HYBRID_GPU_SUITE_SMOKE:-}" ]] &&
     ! python3 -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
    echo "(smoke run without a torch GPU: no baselines)"
    : > "$results/baselines.jsonl"
  else
    python3 "$root/utils/gpu-baselines.py" --seq "${baseline_seqs[@]}" \
      | tee "$results/baselines.jsonl" || status=1
    # A whole model's decode step at batch 1, eager and replayed from a CUDA
    # graph (the hybrid_attn package the python phase built), and steps of
    # 16 sequences at lengths 200..1800 against 16 at their mean.
    if compgen -G "$build/python_packages/hybrid_attn/_runtime*.so" > /dev/null; then
      PYTHONPATH="$build/python_packages${PYTHONPATH:+:$PYTHONPATH}" \
        HYBRID_CUDA_DRIVER="${HYBRID_CUDA_DRIVER:-libcuda.so.1}" \
        python3 "$root/utils/gpu-graph-bench.py" \
        "$dir/artifacts/gemma-3-1b-it" --context 1024 8192 --ragged 16 \
        | tee "$results/graph.jsonl" || status=1
    fi
  fi
  for variant in "${variants[@]}"; do
    [[ -d "$bench_schedule-$variant" ]] || continue
    "$check" "$bench_schedule-$variant" "${bench[@]}" \
      --repeat "$repeat" --no-check --json | tee "$results/ours-$variant.jsonl" \
      || status=1
  done
  # Decode at Gemma 4's wide heads (dims 256 and 512, GQA 4): its decode
  # kernel holds 144 to 148 registers, 3 CTAs per SM, against 60 at dim 128.
  "$check" "$dir/artifacts/gpu-decode-wide-heads" "${decode[@]}" \
    --decode-steps 8 --repeat 1 --no-check --json \
    | tee "$results/ours-wide-heads.jsonl" || status=1
  # ... and its prefill by value slices (the report's wide-heads rows).
  for a in "$dir"/artifacts/gpu-decode-wide-heads*; do
    variant="wide-heads${a##*/gpu-decode-wide-heads}"
    "$check" "$a" "${bench[@]}" --repeat "$repeat" --no-check --json \
      | tee -a "$results/ours-$variant.jsonl" || status=1
  done
  # Chunked prefill (steps of many tokens over a long cache) through each
  # kernel, the flash kernel with its split-K twin (automatic) and without
  # (one split): the runtime's choices are models until this measures them
  # (runtime/lib/StepKernel.h).
  for kernel in flash flash-unsplit decode; do
    splits=0
    [[ $kernel == flash-unsplit ]] && splits=1
    for tokens in "${chunk_tokens[@]}"; do
      HYBRID_CUDA_STEP_KERNEL=${kernel%-unsplit} \
        HYBRID_CUDA_FLASH_SPLITS=$splits "$check" "$bench_schedule" \
        "${chunks[@]}" --decode-steps 2 --step-tokens "$tokens" --repeat 1 \
        --no-check --json
    done | tee "$results/ours-steps-$kernel.jsonl" || status=1
    [[ $kernel == flash-unsplit ]] && continue
    for tokens in "${gqa_tokens[@]}"; do
      HYBRID_CUDA_STEP_KERNEL=$kernel "$check" "$dir/artifacts/gpu-steps-gqa8" \
        "${chunks[@]}" --decode-steps 2 --step-tokens "$tokens" --repeat 1 \
        --no-check --json
    done | tee "$results/ours-gqa-steps-$kernel.jsonl" || status=1
  done
  # Decode's split count: the runtime fills one wave of decode CTAs (the
  # driver's occupancy: 33 splits at 32 kv heads, 8 CTAs per SM on 132
  # SMs); fixed counts around it, and 9 (the first rule's two CTAs per SM).
  for splits in 9 18 36 72; do
    HYBRID_CUDA_DECODE_SPLITS=$splits "$check" "$bench_schedule" \
      "${decode[@]}" --decode-steps 8 --repeat 1 --no-check --json \
      | tee "$results/ours-splits$splits.jsonl" || status=1
  done
  ;;
profile)
  # What limits the kernels, from the hardware counters (where ncu can read
  # them; clocks left alone): the causal prefill at 8K and one decode step
  # over 32K, then the variants' prefill.
  command -v ncu > /dev/null || { echo "(no ncu: no profiles)"; exit 0; }
  sections=(--section SpeedOfLight --section Occupancy --section LaunchStats
            --section SchedulerStats --section WarpStateStats
            --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis)
  profile() { # name, kernel regex, hybrid-rt-check arguments...
    local name=$1 kernel=$2; shift 2
    ncu --clock-control none "${sections[@]}" --kernel-name "regex:$kernel" \
      --launch-count 1 "$check" "$@" --no-check > "$results/ncu-$name.txt" 2>&1 ||
      echo "ncu $name: failed (see results/ncu-$name.txt)"
  }
  profile prefill 'full_l0$' "$bench_schedule" --seq 8192
  profile decode 'full_l0_decode$' "$bench_schedule" --seq 32760 --decode-steps 1
  for variant in tma-w8-k128-s2-overlap tma-w8-k128-s2-overlap-ws \
                 tma-w8-k128-s2-overlap-ws-pp tma-w8-k128-s2 tma-s2-overlap \
                 tma-s2-overlap-ws \
                 tma-w8-k128 tma-w8 tma wgmma w32; do
    [[ -d "$bench_schedule-$variant" ]] || continue
    profile "prefill-$variant" 'full_l0$' "$bench_schedule-$variant" --seq 8192
  done
  ;;
sanitize)
  # Out-of-bounds accesses and shared-memory races (the cp.async and barrier
  # protocol) on small cases, where compute-sanitizer supports the machine.
  command -v compute-sanitizer > /dev/null ||
    { echo "(no compute-sanitizer: not run)"; exit 0; }
  sanitize() { # artifacts name, fatal|informational
    local name=$1 kind=$2 suffix="" tool rc
    [[ "$name" != masks ]] && suffix="-${name#masks-}"
    for tool in memcheck racecheck synccheck; do
      rc=0
      compute-sanitizer --tool "$tool" --error-exitcode 3 \
        "$check" "$dir/artifacts/$name" --batch 2 --seq 70 \
        > "$results/sanitizer$suffix-$tool.txt" 2>&1 || rc=$?
      echo "compute-sanitizer $tool on $name: exit $rc (0 clean, 3 errors" \
        "found; $kind)" | tee -a "$results/checks.txt"
      if [[ $rc == 3 && $kind == fatal ]]; then status=1; fi
    done
  }
  sanitize masks fatal
  compute-sanitizer --tool memcheck --error-exitcode 3 \
    "$check" "$dir/artifacts/caches" --seq 70 --decode-steps 3 \
    > "$results/sanitizer-decode.txt" 2>&1 || status=1
  # The wgmma and TMA kernels too, for information: the sanitizer's view of
  # async-proxy traffic may differ from the emulator's model (read the
  # reports; they do not fail the suite).
  for variant in tma wgmma tma-s2-overlap-ws; do
    [[ -d "$dir/artifacts/masks-$variant" ]] || continue
    sanitize "masks-$variant" informational
  done
  ;;
esac
exit $status
