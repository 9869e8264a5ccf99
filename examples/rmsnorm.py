"""A layer of your own, with a hand-written backward, checked by numpy-ninja both ways.

RMSNorm (Zhang & Sennrich, 2019) scales each row by the inverse of its root mean square:
out = weight * x / sqrt(mean(x^2) + eps), over the last axis. Check it from the command line,
against torch.nn.RMSNorm and torch-free:

    numpy-ninja check-layer examples/rmsnorm.py:make_layer --features 8 --ndim 2,3 \\
        --twin examples/rmsnorm.py:twin
    numpy-ninja check-layer examples/rmsnorm.py:make_layer --features 8 --ndim 2,3

or from Python (a one-line pytest test):

    from oracle import check_layer
    check_layer(make_layer, 8, twin=twin, ndim=(2, 3), raise_on_failure=True)
"""
import numpy as np

from numpy_ninja import Module, Parameter


class RMSNorm(Module):
    """x (..., C) -> same shape: weight * x * r, r = 1 / sqrt(mean(x^2) + eps) per row."""

    param_names = ("weight",)

    def __init__(self, dim, eps=1e-6, *, dtype=np.float32):
        self.eps = eps
        self.weight = Parameter(np.ones(dim, dtype=dtype))

    def forward(self, x):
        r = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps)
        xhat = x * r
        self.cache = (xhat, r)
        return xhat * self.weight.data

    def backward(self, dout):
        xhat, r = self.saved()
        self.weight.grad[...] = (dout * xhat).sum(tuple(range(dout.ndim - 1)))
        dxhat = dout * self.weight.data
        # dxhat_i/dx_j = r (delta_ij - xhat_i xhat_j / C): dx = r (dxhat - xhat mean(dxhat xhat))
        return r * (dxhat - xhat * (dxhat * xhat).mean(-1, keepdims=True))

    def terms(self, dout_terms):
        """dx can cancel (dout along xhat gives zero): its error is measured against the terms."""
        xhat, r = (np.abs(v.astype(np.float64)) for v in self.saved())
        gB = np.abs(self.weight.data.astype(np.float64)) * dout_terms
        return {"dx": r * (gB + xhat * (gB * xhat).mean(-1, keepdims=True)),
                "weight": (dout_terms * xhat).sum(tuple(range(xhat.ndim - 1)))}


def make_layer(dtype, rng):
    """The factory the check calls: a layer in this dtype, initialised from rng."""
    layer = RMSNorm(8, dtype=dtype)
    layer.weight.data[...] = 1 + 0.1 * rng.standard_normal(8)
    return layer


def twin(layer):
    """The same layer in PyTorch: its state_dict has our names and shapes (weight, (8,))."""
    import torch
    return torch.nn.RMSNorm(layer.weight.shape[0], eps=layer.eps)
