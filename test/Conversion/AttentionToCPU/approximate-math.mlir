// RUN: hybrid-opt %s --hybrid-approximate-math | FileCheck %s
// RUN: %if mlir-runner %{ hybrid-opt %s --hybrid-approximate-math \
// RUN:   | mlir-opt --convert-vector-to-scf --convert-scf-to-cf --convert-vector-to-llvm \
// RUN:       --convert-math-to-llvm --convert-arith-to-llvm \
// RUN:       --convert-cf-to-llvm --convert-func-to-llvm \
// RUN:       --reconcile-unrealized-casts \
// RUN:   | mlir-runner -e main -entry-point-result=void \
// RUN:       -shared-libs=%mlir_c_runner_utils \
// RUN:   | FileCheck %s --check-prefix=JIT %}

// f32 math.exp2, the kernels' softmax exponential, becomes a polynomial in
// vector registers: x clamped to [-126, 128] by compare and select (NaN
// kept), k = round(x) by adding 1.5 * 2^23, p(x - k) of degree 5, times
// 2^(k - 1) from the exponent field, times 2. f64 is left to libm.

// CHECK-LABEL: func.func @exp2_f32(
// CHECK-NOT: math.exp2
// CHECK: arith.cmpf olt
// CHECK: arith.cmpf ogt
// CHECK: arith.addf %{{.+}}, %[[SHIFTER:.+]] : vector<16xf32>
// CHECK-NEXT: arith.subf %{{.+}}, %[[SHIFTER]]
// CHECK-COUNT-5: math.fma
// CHECK: arith.shli
// CHECK-NOT: math.exp2
// CHECK: return
func.func @exp2_f32(%x: vector<16xf32>, %y: f32) -> (vector<16xf32>, f32) {
  %0 = math.exp2 %x : vector<16xf32>
  %1 = math.exp2 %y : f32
  return %0, %1 : vector<16xf32>, f32
}

// CHECK-LABEL: func.func @exp2_f64(
// CHECK: math.exp2 %{{.+}} : vector<4xf64>
func.func @exp2_f64(%x: vector<4xf64>) -> vector<4xf64> {
  %0 = math.exp2 %x : vector<4xf64>
  return %0 : vector<4xf64>
}

// Run: every 1/4096 from -125 to 127.9 against libm's f64 exp2, then the
// edges of the range exactly.
func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %steps = arith.constant 64768 : index // 16 lanes * 64768 / 4096 = 253
  %lanes = arith.constant dense<[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]> : vector<16xf32>
  %delta = arith.constant 2.44140625e-4 : f32 // 1/4096
  %lowest = arith.constant -125.0 : f32
  %last = arith.constant 127.9 : f32
  %zero = arith.constant 0.0 : f64
  %worst = scf.for %i = %c0 to %steps step %c1 iter_args(%acc = %zero) -> f64 {
    %i32 = arith.index_cast %i : index to i32
    %first = arith.sitofp %i32 : i32 to f32
    %sixteen = arith.constant 16.0 : f32
    %base = arith.mulf %first, %sixteen : f32
    %bases = vector.broadcast %base : f32 to vector<16xf32>
    %n = arith.addf %bases, %lanes : vector<16xf32>
    %deltas = vector.broadcast %delta : f32 to vector<16xf32>
    %offset = arith.mulf %n, %deltas : vector<16xf32>
    %lows = vector.broadcast %lowest : f32 to vector<16xf32>
    %xs = arith.addf %lows, %offset : vector<16xf32>
    %lasts = vector.broadcast %last : f32 to vector<16xf32>
    %x = arith.minimumf %xs, %lasts : vector<16xf32>
    %y = math.exp2 %x : vector<16xf32>
    %x64 = arith.extf %x : vector<16xf32> to vector<16xf64>
    %ref = math.exp2 %x64 : vector<16xf64>
    %y64 = arith.extf %y : vector<16xf32> to vector<16xf64>
    %diff = arith.subf %y64, %ref : vector<16xf64>
    %rel = arith.divf %diff, %ref : vector<16xf64>
    %abs = math.absf %rel : vector<16xf64>
    %max = vector.reduction <maximumf>, %abs : vector<16xf64> into f64
    %next = arith.maximumf %acc, %max : f64
    scf.yield %next : f64
  }
  %bound = arith.constant 3.0e-7 : f64
  %ok = arith.cmpf olt, %worst, %bound : f64
  // JIT: relative error below 3e-7 on [-125, 127.9]: 1
  vector.print str "relative error below 3e-7 on [-125, 127.9]: "
  vector.print %ok : i1

  // NaN stays NaN; from x = 128 up: inf; for x <= -125.5: 0 (as for -inf and
  // subnormals); integers are exact; 127.99 is finite.
  %edges = arith.constant dense<[0x7FC00000, 0x7F800000, 0xFF800000, 128.0, 200.0, 127.99, 127.0, 1.0, 0.0, -1.0, -125.0, -125.4, -125.6, -126.0, -200.0, 0.5]> : vector<16xf32>
  // Through a call: math.exp2 of a constant would fold (with libm's exp2)
  // before the pattern sees it.
  %three = arith.constant 3.0 : f32
  %e, %s = func.call @exp2_f32(%edges, %three) : (vector<16xf32>, f32) -> (vector<16xf32>, f32)
  // JIT: ( nan, inf, 0, inf, inf, 3.3{{[0-9]+}}e+38, 1.70141e+38, 2, 1, 0.5, 2.35099e-38, 1.7{{[0-9]+}}e-38, 0, 0, 0, 1.41421 )
  vector.print %e : vector<16xf32>
  // JIT-NEXT: 8
  vector.print %s : f32
  return
}
