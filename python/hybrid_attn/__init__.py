"""hybrid_attn: compile hybrid attention schedules and run them on arrays.

    import numpy as np, hybrid_attn
    schedule = hybrid_attn.compile("config.json")          # or a spec dict
    session = schedule.session(batch=1, max_seq=4096)
    out = session.prefill(0, q, k, v)                      # [B, S, H, D] float32
    out = session.decode(0, q1, k1, v1)                    # [B, T, H, D]
    schedule = hybrid_attn.load("artifacts/")   # compiled before, no compiler

Arrays are NumPy arrays or any DLPack tensor on the CPU (PyTorch); float32,
C-contiguous ones are used in place, without copies.
"""

from ._api import HybridError, OutOfMemoryError, Schedule, Session, compile, load

__all__ = ["HybridError", "OutOfMemoryError", "Schedule", "Session", "compile", "load"]
