"""What the session examples share: Gemma 3 1B's attention schedule
(examples/configs/gemma-3-1b-it.json) and random tokens for its layers (the
runtime computes attention only: q, k and v stand for the projections)."""
import os

import numpy as np

import hybrid_attn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Gemma3Layers:
    def __init__(self, max_seq, seed=0):
        self.schedule = hybrid_attn.compile(
            os.path.join(ROOT, "examples", "configs", "gemma-3-1b-it.json"), max_seq=max_seq)
        # The attention layers (every one keeps a cache).
        self.layers = [i for i, layer in enumerate(self.schedule.layers) if layer.get("cache")]
        self.rng = np.random.default_rng(seed)

    def tokens(self, count):
        """q, k, v of `count` new tokens for every layer (batch 1)."""
        out = {}
        for i in self.layers:
            layer = self.schedule.layers[i]
            out[i] = [self.rng.standard_normal((1, count, heads, layer["head_dim"]), np.float32)
                      for heads in (layer["num_heads"], layer["num_kv_heads"],
                                    layer["num_kv_heads"])]
        return out
