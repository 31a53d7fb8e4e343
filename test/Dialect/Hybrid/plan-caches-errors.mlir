// RUN: hybrid-opt %s -split-input-file -verify-diagnostics --hybrid-plan-caches=max-seq=0

// expected-error @+1 {{has no max_position: give the pass a max-seq}}
hybrid.schedule @no_context layers = 1 {
  hybrid.layer mamba state <recurrent = 4>
}

