// RUN: hybrid-opt %s --hybrid-expand-patterns | FileCheck %s

// "2 x (2 sliding then 1 full), then 1 sliding": nested repeats unroll in
// order, innermost first.

// CHECK-LABEL: hybrid.schedule @nested layers = 7
// CHECK-NOT: hybrid.repeat
// CHECK: hybrid.layer sliding
// CHECK-NEXT: hybrid.layer sliding
// CHECK-NEXT: hybrid.layer full
// CHECK-NEXT: hybrid.layer sliding
// CHECK-NEXT: hybrid.layer sliding
// CHECK-NEXT: hybrid.layer full
// CHECK-NEXT: hybrid.layer mamba
// CHECK-NEXT: }
hybrid.schedule @nested layers = 7 {
  hybrid.repeat 2 {
    hybrid.repeat 2 {
      hybrid.layer sliding heads 4 kv_heads 1 head_dim 64
        mask <kind = sliding_window, window = 16> pos <kind = none> score <scale = 0.125>
    }
    hybrid.layer full heads 4 kv_heads 1 head_dim 64 mask <kind = full>
      pos <kind = none> score <scale = 0.125>
  }
  hybrid.layer mamba state <recurrent = 64>
}

// A flat schedule is left as it is.
// CHECK-LABEL: hybrid.schedule @flat layers = 1
// CHECK-NEXT: hybrid.layer mamba state <recurrent = 64>
hybrid.schedule @flat layers = 1 {
  hybrid.layer mamba state <recurrent = 64>
}
