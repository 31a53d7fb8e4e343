// RUN: hybrid-opt %hybrid_src/examples/gemma3-1b.mlir --hybrid-schedule-pipeline | FileCheck %s
// RUN: hybrid-opt %hybrid_src/examples/gemma3-1b.mlir --hybrid-schedule-pipeline="expand=false max-seq=4096 storage=f32" | FileCheck %s --check-prefix=COMPACT
// RUN: hybrid-opt --help | FileCheck %s --check-prefix=HELP

// The compact Gemma 3 1B schedule expands to 26 layers, verifies, and plans
// its caches: 4 global layers * 32768 tokens * 1 KiB + 22 ring layers * 512
// tokens * 1 KiB.

// CHECK-LABEL: hybrid.schedule @gemma3_1b layers = 26
// CHECK-SAME: cache_summary = #hybrid.cache_summary<max_seq = 32768, storage = bf16, total = 145752064, all_full_baseline = 872415232>
// CHECK-NOT: hybrid.repeat
// CHECK-COUNT-5: hybrid.layer sliding {{.*}} cache <policy = ring, window = 512>
// CHECK-NEXT: hybrid.layer full {{.*}} cache <policy = full> {cache_plan = #hybrid.cache_plan<bytes_per_token = 1024, tokens = 32768, bytes = 33554432>}

// COMPACT: cache_summary = #hybrid.cache_summary<max_seq = 4096, storage = f32, total = 56623104, all_full_baseline = 218103808>
// COMPACT-NEXT: hybrid.repeat 4 {

// Passes first, then pipelines.
// HELP: --hybrid-expand-patterns
// HELP: --hybrid-extract-attention
// HELP: --hybrid-plan-caches
// HELP: --hybrid-verify-schedule
// HELP: --hybrid-schedule-pipeline
