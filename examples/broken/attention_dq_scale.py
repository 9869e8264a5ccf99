"""examples/attention.py with a classic mistake: dq forgets the 1/sqrt(head size) of the scores.

    numpy-ninja check-layer examples/broken/attention_dq_scale.py:make_layer --features 8 --ndim 3 \\
        --twin examples/broken/attention_dq_scale.py:twin
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/: the correct layer
import attention  # noqa: E402

twin = attention.twin  # torch computes the right gradient: the mistake is in our backward


class CausalSelfAttention(attention.CausalSelfAttention):
    def backward(self, dout):
        x, q, k, v, p, y, scale = self.saved()
        C = x.shape[-1]
        self.w_proj.grad[...] = y.reshape(-1, C).T @ dout.reshape(-1, C)
        self.b_proj.grad[...] = dout.reshape(-1, C).sum(0)
        dyh = self.split_heads(dout @ self.w_proj.data.T)
        dp = dyh @ v.swapaxes(-1, -2)
        dv = p.swapaxes(-1, -2) @ dyh
        datt = p * (dp - (dp * p).sum(-1, keepdims=True))
        # att = q @ k^T * scale
        dq = datt @ k                                       # MISTAKE: d att/d q is k * scale
        dk = datt.swapaxes(-1, -2) @ q * scale
        dqkv = np.concatenate([self.merge_heads(a) for a in (dq, dk, dv)], -1)
        self.w_attn.grad[...] = x.reshape(-1, C).T @ dqkv.reshape(-1, 3 * C)
        self.b_attn.grad[...] = dqkv.reshape(-1, 3 * C).sum(0)
        return dqkv @ self.w_attn.data.T


def make_layer(dtype, rng):
    return CausalSelfAttention(attention.FEATURES, attention.HEADS, rng=rng, dtype=dtype)
