// The whole GPU pipeline as hybrid-opt runs it: schedule to gpu.binary
// holding PTX (libdevice needed: where the CUDA toolkit is).
// REQUIRES: ptxas
// RUN: hybrid-opt %s --hybrid-cuda-pipeline="chip=sm_90a max-seq=4096" | FileCheck %s
// RUN: hybrid-opt %s --hybrid-cuda-pipeline | FileCheck %s --check-prefix=SM80
// RUN: hybrid-opt %s --hybrid-cuda-pipeline="chip=sm_90a max-seq=4096 tensor-cores=wgmma tma=1" | FileCheck %s --check-prefix=TMA

// The schedule stays beside the binary, for the manifest.
// CHECK: hybrid.schedule @test
// CHECK: gpu.binary @kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx83">
// CHECK-SAME: .target sm_90a
// CHECK-SAME: .visible .entry test_full_l0(
// CHECK-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// CHECK-SAME: .visible .entry test_full_l0_decode(
// SM80: #nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">
// The pipeline's tensor-cores and tma options reach the flash kernel.
// TMA: .visible .entry test_full_l0(
// hybrid-tensor-map-params: the tensor maps are by-value parameters.
// TMA-SAME: .param .align 64 .b8 test_full_l0_param_{{[0-9]+}}[128]
// TMA-SAME: prefetch.param.tensormap
// TMA-SAME: cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// TMA-SAME: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// TMA-SAME: .visible .entry test_full_l0_decode(

hybrid.schedule @test layers = 1 attributes {
    hidden_size = 256 : i64, max_position = 4096 : i64} {
  hybrid.layer full heads 4 kv_heads 2 head_dim 64 mask <kind = full>
    pos <kind = rope, theta = 10000.0> score <scale = 0.125>
}
