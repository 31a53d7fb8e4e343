# -*- Python -*-
# lit configuration of the hybrid regression tests.

import os
import shutil

import lit.formats
from lit.llvm import llvm_config

config.name = "HYBRID"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".json", ".test"]
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py",
                   "Inputs", "configs", "Unit"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.hybrid_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%hybrid_src", config.hybrid_src_root))
config.substitutions.append(("%hybrid_obj", config.hybrid_obj_root))
config.substitutions.append(("%configs", os.path.join(config.hybrid_src_root, "examples", "configs")))
config.substitutions.append(("%test_configs", os.path.join(config.hybrid_src_root, "test", "Import", "configs")))
config.substitutions.append(("%examples", os.path.join(config.hybrid_src_root, "examples")))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.hybrid_tools_dir, config.llvm_tools_dir]
tools = ["hybrid-opt", "hybrid-compile", "hybrid-run", "hybrid-bench", "hybrid-tune", "hybrid-rt-c-api-check", "hybrid-rt-check", "split-file", "not", "mlir-opt", "mlir-runner"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# mlir-runner JIT-runs lowered test functions (numerics of single passes);
# vector.print needs MLIR's C runner utilities.
runner_utils = os.path.join(os.path.dirname(config.llvm_tools_dir), "lib",
                            "libmlir_c_runner_utils.so")
if os.path.exists(runner_utils):
    config.available_features.add("mlir-runner")
    config.substitutions.append(("%mlir_c_runner_utils", runner_utils))

# The hybrid_attn package is in the build tree when HYBRID_ENABLE_PYTHON=ON.
if config.enable_python:
    config.available_features.add("python-bindings")
    config.substitutions.append(("%hybrid_python_packages", os.path.join(config.hybrid_obj_root, "python_packages")))
    # The interpreter the extension was built for.
    config.substitutions.append(("%hybrid_python", config.python_executable))

# GPU tests need a usable driver; compile-only GPU tests need ptxas.
if config.enable_cuda:
    config.available_features.add("cuda-runtime")
    if os.path.exists("/dev/nvidiactl"):
        config.available_features.add("cuda")
    # The CUDA driver API over a PTX interpreter (runtime/emulator): GPU
    # kernels and the CUDA backend run on any machine, slowly.
    emulator = os.path.join(config.hybrid_obj_root, "lib", "libhybrid-cuda-emulator.so")
    if os.path.exists(emulator):
        config.available_features.add("cuda-emulator")
        config.substitutions.append(("%cuda_emulator", emulator))
ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
if os.path.exists(ptxas):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))
# cuobjdump (PyPI's nvidia-cuda-cuobjdump and -nvdisasm, utils/requirements.txt)
# shows the SASS ptxas made of the PTX: what the hardware would run.
cuobjdump = shutil.which("cuobjdump") if shutil.which("nvdisasm") else None
if not cuobjdump:
    import importlib.util
    try:
        spec = importlib.util.find_spec("nvidia.cu13")
    except ModuleNotFoundError:
        spec = None
    for path in (spec.submodule_search_locations if spec else []):
        # cuobjdump -sass runs nvdisasm from its own directory.
        if all(os.path.exists(os.path.join(path, "bin", tool))
               for tool in ("cuobjdump", "nvdisasm")):
            cuobjdump = os.path.join(path, "bin", "cuobjdump")
if cuobjdump:
    config.available_features.add("cuobjdump")
    config.substitutions.append(("%cuobjdump", cuobjdump))
