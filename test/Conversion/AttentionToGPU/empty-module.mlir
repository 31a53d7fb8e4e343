// RUN: hybrid-opt %s --convert-hybrid-attention-to-gpu | FileCheck %s
// RUN: not hybrid-opt %s --convert-hybrid-attention-to-gpu="warps=3" 2>&1 | FileCheck %s --check-prefix=BADWARPS

// A module without hybrid ops, whose context has not loaded the hybrid
// dialect, gets an empty gpu.module; the options' variant is checked as for
// any module. The pass crashed making #hybrid.gpu_kernel before it declared
// the dialect.

// CHECK: module attributes {gpu.container_module}
// CHECK-NEXT: gpu.module @kernels {
// CHECK-NEXT: }

// BADWARPS: error: warps must be 4 or 8 (warps per flash CTA), got 3
module {
}
