"""LayerNorm written the obvious way: forward and backward, nothing else.

out = weight * (x - mean) / sqrt(var + eps) + bias over the last axis, with the row's mean and
its biased (divisor C) variance, as torch.nn.LayerNorm computes it:

    numpy-ninja check-layer examples/layernorm.py:make_layer --features 8 --ndim 2,3 \\
        --twin examples/layernorm.py:twin
    numpy-ninja check-layer examples/layernorm.py:make_layer --features 8 --ndim 2,3

A constant row makes x - mean, and so the weight's gradient, rounding noise in any
implementation; the check measures that and sets such results aside instead of failing them.
"""
import numpy as np

from numpy_ninja import Module, Parameter

FEATURES = 8


class LayerNorm(Module):
    """x (..., C) -> same shape, each row normalised; any batch size, the same in train and eval."""

    param_names = ("weight", "bias")

    def __init__(self, dim, eps=1e-5, *, dtype=np.float32):
        self.eps = eps
        self.weight = Parameter(np.ones(dim, dtype=dtype))
        self.bias = Parameter(np.zeros(dim, dtype=dtype))

    def forward(self, x):
        mu = x.mean(-1, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(-1, keepdims=True)
        istd = 1 / np.sqrt(var + self.eps)
        xhat = xc * istd
        self.cache = (xc, istd, xhat)
        return xhat * self.weight.data + self.bias.data

    def backward(self, dout):
        xc, istd, xhat = self.saved()
        lead = tuple(range(dout.ndim - 1))
        # out = xhat * weight + bias
        self.weight.grad[...] = (dout * xhat).sum(lead)    # d out/d weight = xhat
        self.bias.grad[...] = dout.sum(lead)               # d out/d bias = 1
        dxhat = dout * self.weight.data                    # d out/d xhat = weight
        # xhat = xc * istd
        dxc = dxhat * istd                                 # d xhat/d xc = istd
        distd = (dxhat * xc).sum(-1, keepdims=True)        # d xhat/d istd = xc
        # istd = 1 / sqrt(var + eps)
        dvar = distd * -0.5 * istd ** 3                    # d istd/d var = -istd^3 / 2
        # var = mean(xc * xc)
        dxc += dvar * 2 * xc / xc.shape[-1]                # d var/d xc = 2 xc / C
        # xc = x - mu, mu = mean(x)
        return dxc - dxc.mean(-1, keepdims=True)           # d xc/d x = 1, d xc/d mu = -1, d mu/d x = 1 / C


def make_layer(dtype, rng):
    """The factory the check calls: a layer in this dtype, initialised from rng."""
    layer = LayerNorm(FEATURES, dtype=dtype)
    layer.weight.data[...] = 1 + 0.1 * rng.standard_normal(FEATURES)
    layer.bias.data[...] = 0.1 * rng.standard_normal(FEATURES)
    return layer


def twin(layer):
    """torch.nn.LayerNorm: its state_dict has our names and shapes (weight and bias, (8,))."""
    import torch
    return torch.nn.LayerNorm(layer.weight.shape[0], eps=layer.eps)
