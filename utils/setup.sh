#!/usr/bin/env bash
#===- setup.sh - Install what the project needs (idempotent) ---------------===#
# Debian packages for the compiler (LLVM/MLIR at the version in
# utils/LLVM_VERSION), the tests and the baselines, then Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

llvm_version=$(head -n1 utils/LLVM_VERSION)
major=${llvm_version%%.*}
packages=(
  cmake ninja-build ccache git
  "clang-$major" "lld-$major" "llvm-$major-dev" "llvm-$major-tools"
  "libmlir-$major-dev" "mlir-$major-tools"
  nlohmann-json3-dev libgtest-dev libopenblas-dev
  python3 python3-pip
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

installed=$(dpkg-query -W -f='${Version}' "llvm-$major-dev")
case "$installed" in
  *"$llvm_version"*) ;;
  *) echo "setup: llvm-$major-dev is $installed, the project builds with $llvm_version" \
          "(utils/LLVM_VERSION)" >&2; exit 1 ;;
esac

# Python packages (tests and tools); pip only when something is missing.
python3 - <<'PY' || python3 -m pip install -q --disable-pip-version-check -r utils/requirements.txt
import importlib.util, os, sys
missing = any(importlib.util.find_spec(m) is None for m in ("numpy", "pytest", "matplotlib", "nanobind", "scikit_build_core", "ml_dtypes"))
try:  # cuobjdump and nvdisasm: nvidia/cu13/bin
    import nvidia.cu13
    bins = [os.path.join(p, "bin") for p in nvidia.cu13.__path__]
except ImportError:
    bins = []
tools = all(any(os.path.exists(os.path.join(b, t)) for b in bins) for t in ("cuobjdump", "nvdisasm"))
sys.exit(missing or not tools)
PY
echo "setup: ok (LLVM $llvm_version)"
