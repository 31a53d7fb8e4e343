#!/usr/bin/env bash
#===- build.sh - Configure (once) and build into $BUILD_DIR ----------------===#
# Extra CMake options may be given as arguments, e.g. -DHYBRID_ENABLE_CUDA=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -G Ninja -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release \
    -DHYBRID_ENABLE_PYTHON="${HYBRID_ENABLE_PYTHON:-ON}" "$@"
fi
ninja -C "$build_dir" -j "${JOBS:-2}"
