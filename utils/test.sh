#!/usr/bin/env bash
#===- test.sh - Build and run every test (lit, FileCheck, GoogleTest) ------===#
set -euo pipefail
cd "$(dirname "$0")/.."
utils/build.sh "$@"
# lit runs the slowest tests first by their times in the build's
# .lit_test_times.txt, else in test/.lit_test_times.txt (measured on a CI
# machine): on a fresh clone the PTX-emulator tests start at once instead of
# last, which keeps two workers busy to the end.
ninja -C "${BUILD_DIR:-build}" check-hybrid
