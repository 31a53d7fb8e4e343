//===- HybridOps.td - Hybrid dialect operations ------------*- tablegen -*-===//
//
// Schedule structure (schedule, repeat, layer) and the tensor-level
// attention op.
//
//===----------------------------------------------------------------------===//

#ifndef HYBRID_DIALECT_HYBRID_IR_HYBRIDOPS_TD
#define HYBRID_DIALECT_HYBRID_IR_HYBRIDOPS_TD

include "hybrid/Dialect/Hybrid/IR/HybridAttrs.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// ScheduleOp
//===----------------------------------------------------------------------===//

def Hybrid_ScheduleOp : Hybrid_Op<"schedule", [
    Symbol, IsolatedFromAbove, NoTerminator, SingleBlock, NoRegionArguments]> {
  let summary = "the layers of a model, in order";
  let description = [{
    Holds `hybrid.layer` and `hybrid.repeat` ops; unrolled, they must give
    exactly `num_layers` layers. Layer indices are positions in that unrolled
    order, starting at 0.

    ```mlir
    hybrid.schedule @gemma3_1b layers = 26 attributes {
        hidden_size = 1152 : i64, max_position = 32768 : i64} {
      hybrid.repeat 4 {
        hybrid.layer sliding heads 4 kv_heads 1 head_dim 256
          mask <kind = sliding_window, window = 512>
          pos <kind = rope, theta = 10000.0> score <scale = 0.0625>
        ...
      }
    }
    ```
  }];
  let arguments = (ins
    SymbolNameAttr:$sym_name,
    I64Attr:$num_layers,
    OptionalAttr<I64Attr>:$hidden_size,
    OptionalAttr<I64Attr>:$max_position,
    OptionalAttr<StrAttr>:$model_type,
    OptionalAttr<Hybrid_CacheSummaryAttr>:$cache_summary
  );
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `layers` `=` $num_layers attr-dict-with-keyword $body
  }];
  let hasRegionVerifier = 1;
  let skipDefaultBuilders = 1;
  let builders = [
    OpBuilder<(ins "::llvm::StringRef":$name, "int64_t":$numLayers)>
  ];
  let extraClassDeclaration = [{
    /// Calls `fn(index, layer)` for every layer in unrolled order; a layer
    /// inside `hybrid.repeat` is visited once per repetition. Stops early and
    /// returns failure when `fn` fails.
    ::mlir::LogicalResult walkLayers(
        ::llvm::function_ref<::mlir::LogicalResult(int64_t, LayerOp)> fn);
    /// The number of layers the body unrolls to.
    int64_t countUnrolledLayers();
  }];
}

//===----------------------------------------------------------------------===//
// RepeatOp
//===----------------------------------------------------------------------===//

def Hybrid_RepeatOp : Hybrid_Op<"repeat", [
    NoTerminator, SingleBlock, NoRegionArguments,
    ParentOneOf<["ScheduleOp", "RepeatOp"]>]> {
  let summary = "a block of layers repeated `count` times";
  let description = [{
    Compact interleaving: "5 sliding then 1 global, 10 times" is a repeat of
    count 10 holding six layers. Repeats nest. `hybrid-expand-patterns`
    replaces each repeat by `count` copies of its body.

    ```mlir
    hybrid.repeat 10 {
      hybrid.repeat 5 { hybrid.layer sliding ... }
      hybrid.layer full ...
    }
    ```
  }];
  let arguments = (ins ConfinedAttr<I64Attr, [IntPositive]>:$count);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$count attr-dict-with-keyword $body";
  let hasVerifier = 1;
  let skipDefaultBuilders = 1;
  let builders = [OpBuilder<(ins "int64_t":$count)>];
}

//===----------------------------------------------------------------------===//
// LayerOp
//===----------------------------------------------------------------------===//

def Hybrid_LayerOp : Hybrid_Op<"layer", [
    ParentOneOf<["ScheduleOp", "RepeatOp"]>]> {
  let summary = "one layer's token mixer";
  let description = [{
    Attention kinds (`full`, `sliding`, `chunked`, `hybrid`) need heads, kv
    heads, head dim, a mask and a score; `sliding` needs a sliding-window mask
    and `chunked` a chunked one. `linear` and `mamba` mixers carry their fixed
    `state` instead (and `hybrid` layers carry both), as do `conv` layers (a
    gated short convolution, LFM2's, whose state is its last inputs). An `mlp`
    layer mixes no tokens (an MLP or MoE block on its own) and carries
    neither; it keeps its place so that layer indices stay the model's.
    `v_head_dim` defaults to `head_dim`. Without `cache`, `hybrid-plan-caches`
    derives the policy from the kind.

    ```mlir
    hybrid.layer sliding heads 8 kv_heads 2 head_dim 128
      mask <kind = sliding_window, window = 1024>
      pos <kind = rope, theta = 10000.0> score <scale = 0.0884>
    hybrid.layer full heads 8 kv_heads 2 head_dim 128 mask <kind = full>
      pos <kind = none> score <scale = 0.0884>
      cache <policy = shared, source_layer = 5>
    hybrid.layer mamba state <recurrent = 131072, conv = 32768>
    hybrid.layer mlp
    ```
  }];
  let arguments = (ins
    Hybrid_LayerKindAttr:$kind,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$num_heads,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$num_kv_heads,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$head_dim,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$v_head_dim,
    OptionalAttr<Hybrid_MaskAttr>:$mask,
    OptionalAttr<Hybrid_PositionalAttr>:$positional,
    OptionalAttr<Hybrid_ScoreAttr>:$score,
    OptionalAttr<Hybrid_CacheAttr>:$cache,
    OptionalAttr<Hybrid_StateAttr>:$state,
    OptionalAttr<Hybrid_CachePlanAttr>:$cache_plan,
    OptionalAttr<FlatSymbolRefAttr>:$kernel
  );
  let assemblyFormat = [{
    custom<LayerKind>($kind)
    (`heads` $num_heads^)?
    (`kv_heads` $num_kv_heads^)?
    (`head_dim` $head_dim^)?
    (`v_head_dim` $v_head_dim^)?
    (`mask` $mask^)?
    (`pos` $positional^)?
    (`score` $score^)?
    (`cache` $cache^)?
    (`state` $state^)?
    attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Full, sliding, chunked and hybrid layers attend.
    bool hasAttention();
    /// `v_head_dim`, or `head_dim` when not set.
    int64_t getValueHeadDim();
  }];
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

def Hybrid_AttentionOp : Hybrid_Op<"attention", [
    DestinationStyleOpInterface, Pure]> {
  let summary = "masked multi-head attention, destination style";
  let description = [{
    `q: [B, Sq, Hq, D]`, `k: [B, Skv, Hkv, D]`, `v: [B, Skv, Hkv, Dv]`,
    optional `sinks: [Hq]`, `init: [B, Sq, Hq, Dv]`. Query head `h` reads kv
    head `h / (Hq / Hkv)`. Queries sit at positions `Skv - Sq + i` (the last
    `Sq` of the keys' positions), keys at `0 .. Skv-1`. The positional
    encoding is applied to q and k, then scores are scaled, soft-capped,
    masked and normalised (with sinks in the denominator); a query that sees
    no key yields zeros. Semantics are those of DESIGN.md.

    `q_tile` and `k_tile`, when present, are the tile sizes a target's
    lowering uses for this op (query positions per work item, keys per
    tile), overriding its pass options; `gpu_kernel` is the variant the GPU
    lowering builds (overriding its options too). The tuner writes them.

    ```mlir
    %o = hybrid.attention ins(%q, %k, %v : tensor<2x?x8x128xf32>,
             tensor<2x?x2x128xf32>, tensor<2x?x2x128xf32>)
           outs(%init : tensor<2x?x8x128xf32>)
           mask <kind = sliding_window, window = 1024>
           pos <kind = rope, theta = 10000.0>
           score <scale = 0.0884> -> tensor<2x?x8x128xf32>
    ```
  }];
  let arguments = (ins
    AnyRankedTensor:$query,
    AnyRankedTensor:$key,
    AnyRankedTensor:$value,
    Optional<AnyRankedTensor>:$sinks,
    AnyRankedTensor:$init,
    Hybrid_MaskAttr:$mask,
    Hybrid_PositionalAttr:$positional,
    Hybrid_ScoreAttr:$score,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$q_tile,
    OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$k_tile,
    OptionalAttr<Hybrid_GPUKernelAttr>:$gpu_kernel
  );
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    `ins` `(` $query `,` $key `,` $value `:` type($query) `,` type($key) `,`
      type($value) `)`
    (`sinks` `(` $sinks^ `:` type($sinks) `)`)?
    `outs` `(` $init `:` type($init) `)`
    `mask` $mask `pos` $positional `score` $score
    attr-dict `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return getInitMutable();
    }
  }];
}

#endif // HYBRID_DIALECT_HYBRID_IR_HYBRIDOPS_TD
