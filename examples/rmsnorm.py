"""A layer of your own, with a hand-written backward, checked by numpy-ninja both ways.

RMSNorm (Zhang & Sennrich, 2019) scales each row by the inverse of its root mean square:
out = weight * x / sqrt(mean(x^2) + eps), over the last axis. Only forward and backward are
written: the check measures the rounding each result can carry where it cancels, so nothing more
is needed. Check it from the command line, against torch.nn.RMSNorm and torch-free:

    numpy-ninja check-layer examples/rmsnorm.py:make_layer --features 8 --ndim 2,3 \\
        --twin examples/rmsnorm.py:twin
    numpy-ninja check-layer examples/rmsnorm.py:make_layer --features 8 --ndim 2,3

or from Python (a one-line pytest test):

    from oracle import check_layer
    check_layer(make_layer, 8, twin=twin, ndim=(2, 3), raise_on_failure=True)
"""
import numpy as np

from numpy_ninja import Module, Parameter

FEATURES = 8


class RMSNorm(Module):
    """x (..., C) -> same shape: weight * x * r, r = 1 / sqrt(mean(x^2) + eps) per row."""

    param_names = ("weight",)

    def __init__(self, dim, eps=1e-6, *, dtype=np.float32):
        self.eps = eps
        self.weight = Parameter(np.ones(dim, dtype=dtype))

    def forward(self, x):
        ms = (x * x).mean(-1, keepdims=True)
        r = 1 / np.sqrt(ms + self.eps)
        xhat = x * r
        self.cache = (x, r, xhat)
        return xhat * self.weight.data

    def backward(self, dout):
        x, r, xhat = self.saved()
        # out = xhat * weight
        self.weight.grad[...] = (dout * xhat).sum(tuple(range(dout.ndim - 1)))  # d out/d weight = xhat
        dxhat = dout * self.weight.data                                          # d out/d xhat = weight
        # xhat = x * r
        dx = dxhat * r                                                           # d xhat/d x = r
        dr = (dxhat * x).sum(-1, keepdims=True)                                  # d xhat/d r = x
        # r = 1 / sqrt(ms + eps)
        dms = dr * -0.5 * r ** 3                                                 # d r/d ms = -r^3 / 2
        # ms = mean(x * x)
        dx += dms * 2 * x / x.shape[-1]                                          # d ms/d x = 2 x / C
        return dx


def make_layer(dtype, rng):
    """The factory the check calls: a layer in this dtype, initialised from rng."""
    layer = RMSNorm(FEATURES, dtype=dtype)
    layer.weight.data[...] = 1 + 0.1 * rng.standard_normal(FEATURES)
    return layer


def twin(layer):
    """The same layer in PyTorch: its state_dict has our names and shapes (weight, (8,))."""
    import torch
    return torch.nn.RMSNorm(layer.weight.shape[0], eps=layer.eps)
