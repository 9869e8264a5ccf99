"""Log-softmax over the last axis, written the obvious way: forward and backward, nothing else.

    numpy-ninja check-layer examples/logsoftmax.py:make_layer --features 5 --ndim 2,3 \\
        --twin examples/logsoftmax.py:twin
    numpy-ninja check-layer examples/logsoftmax.py:make_layer --features 5 --ndim 2,3
"""
import numpy as np

from numpy_ninja import Module


class LogSoftmax(Module):
    """x (..., C) -> x - log(sum(exp(x))) per row; no parameters."""

    def forward(self, x):
        z = x - x.max(-1, keepdims=True)
        lse = np.log(np.exp(z).sum(-1, keepdims=True))
        out = z - lse
        self.cache = out
        return out

    def backward(self, dout):
        out = self.saved()
        # out = z - lse
        dz = dout.copy()                                   # d out_i/d z_i = 1
        dlse = -dout.sum(-1, keepdims=True)                # d out_i/d lse = -1
        # lse = log(sum(exp(z)))
        dz += dlse * np.exp(out)                           # d lse/d z_j = softmax_j = exp(out_j)
        # z = x - max(x): d z/d x = 1; the max's gradient, -sum(dz), is 0
        return dz


def make_layer(dtype, rng):
    return LogSoftmax()


def twin(layer):
    import torch
    return torch.nn.LogSoftmax(dim=-1)
