#!/usr/bin/env bash
#===- test.sh - Build and run every test (lit, FileCheck, GoogleTest) ------===#
set -euo pipefail
cd "$(dirname "$0")/.."
utils/build.sh "$@"
ninja -C "${BUILD_DIR:-build}" check-hybrid
