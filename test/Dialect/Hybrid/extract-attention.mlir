// RUN: hybrid-opt %s --hybrid-extract-attention | FileCheck %s
// RUN: hybrid-opt %s --hybrid-extract-attention=element-type=bf16 | FileCheck %s --check-prefix=BF16

// Layers with the same signature share one kernel; a layer inside a repeat
// stands for all its repetitions; mixers without attention get no kernel.

// CHECK-LABEL: hybrid.schedule @model
// CHECK: hybrid.layer sliding {{.*}} {kernel = @model_sliding_l0}
// CHECK: hybrid.layer full {{.*}} {kernel = @model_full_l1}
// CHECK: hybrid.layer sliding {{.*}} {kernel = @model_sliding_l0}
// CHECK: hybrid.layer sliding {{.*}}window = 64{{.*}} {kernel = @model_sliding_l5}
// CHECK: hybrid.layer mamba state <recurrent = 8>{{$}}
// CHECK: hybrid.layer full {{.*}}sinks = true{{.*}} {kernel = @model_full_l7}

// CHECK-LABEL: func.func @model_sliding_l0(
// CHECK-SAME: %[[Q:.+]]: tensor<?x?x8x64xf32>, %[[K:.+]]: tensor<?x?x2x64xf32>, %[[V:.+]]: tensor<?x?x2x64xf32>, %[[INIT:.+]]: tensor<?x?x8x64xf32>) -> tensor<?x?x8x64xf32>
// CHECK: %[[OUT:.+]] = hybrid.attention ins(%[[Q]], %[[K]], %[[V]] : {{.+}}) outs(%[[INIT]] : tensor<?x?x8x64xf32>) mask <kind = sliding_window, window = 16>
// CHECK: return %[[OUT]]

// CHECK-LABEL: func.func @model_full_l1(
// CHECK: hybrid.attention {{.*}} mask <kind = full>

// CHECK-LABEL: func.func @model_sliding_l5(
// CHECK: mask <kind = sliding_window, window = 64>

// CHECK-LABEL: func.func @model_full_l7(
// CHECK-SAME: %[[SINKS:[^:]+]]: tensor<8xf32>, %{{.+}}: tensor<?x?x8x32xf32>)
// CHECK: hybrid.attention {{.*}} sinks(%[[SINKS]] : tensor<8xf32>)

// CHECK-NOT: func.func

// BF16: func.func @model_sliding_l0(%{{.+}}: tensor<?x?x8x64xbf16>
hybrid.schedule @model layers = 8 {
  hybrid.repeat 2 {
    hybrid.layer sliding heads 8 kv_heads 2 head_dim 64
      mask <kind = sliding_window, window = 16> pos <kind = rope, theta = 10000.0>
      score <scale = 0.125>
    hybrid.layer full heads 8 kv_heads 2 head_dim 64 mask <kind = full>
      pos <kind = rope, theta = 10000.0> score <scale = 0.125>
  }
  hybrid.layer sliding heads 8 kv_heads 2 head_dim 64
    mask <kind = sliding_window, window = 16> pos <kind = rope, theta = 10000.0>
    score <scale = 0.125>
  hybrid.layer sliding heads 8 kv_heads 2 head_dim 64
    mask <kind = sliding_window, window = 64> pos <kind = rope, theta = 10000.0>
    score <scale = 0.125>
  hybrid.layer mamba state <recurrent = 8>
  hybrid.layer full heads 8 kv_heads 2 head_dim 64 v_head_dim 32 mask <kind = full>
    pos <kind = none> score <scale = 0.125, sinks = true>
}
