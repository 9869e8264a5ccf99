"""Softmax over the last axis, written the obvious way: forward and backward, nothing else.

    numpy-ninja check-layer examples/softmax.py:make_layer --features 5 --ndim 2,3 \\
        --twin examples/softmax.py:twin
    numpy-ninja check-layer examples/softmax.py:make_layer --features 5 --ndim 2,3

Where dout is constant along a row, the true input gradient is 0 and every implementation
returns rounding noise there: the check measures that and sets the result aside.
"""
import numpy as np

from numpy_ninja import Module


class Softmax(Module):
    """x (..., C) -> p, each row exp(x) / sum(exp(x)); no parameters."""

    def forward(self, x):
        z = x - x.max(-1, keepdims=True)
        e = np.exp(z)
        s = e.sum(-1, keepdims=True)
        p = e / s
        self.cache = p
        return p

    def backward(self, dout):
        p = self.saved()
        # p = e / s, s = sum(e), e = exp(z): d p_i/d z_j = p_i (delta_ij - p_j)
        dz = p * (dout - (dout * p).sum(-1, keepdims=True))
        # z = x - max(x): d z/d x = 1; the max's gradient, -sum(dz), is 0 (rows of d p/d z sum to 0)
        return dz


def make_layer(dtype, rng):
    return Softmax()


def twin(layer):
    import torch
    return torch.nn.Softmax(dim=-1)
