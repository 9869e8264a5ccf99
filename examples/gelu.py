"""GELU with the tanh approximation (GPT-2's), written the obvious way: forward and backward only.

out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise:

    numpy-ninja check-layer examples/gelu.py:make_layer --features 4 --ndim 2,3 \\
        --twin examples/gelu.py:twin
    numpy-ninja check-layer examples/gelu.py:make_layer --features 4 --ndim 2,3

In the left tail (x < -4 or so) 1 + tanh(u) cancels: float32 keeps few digits of the output
there, in any implementation, and the check measures how few.
"""
import numpy as np

from numpy_ninja import Module

K = (2 / np.pi) ** 0.5  # Python floats: they take the dtype of the array they multiply
A = 0.044715


class GELU(Module):
    """Elementwise, any shape; no parameters."""

    def forward(self, x):
        u = K * (x + A * x ** 3)
        t = np.tanh(u)
        self.cache = (x, t)
        return 0.5 * x * (1 + t)

    def backward(self, dout):
        x, t = self.saved()
        # out = 0.5 x (1 + t)
        dx = dout * 0.5 * (1 + t)                          # d out/d x (at fixed t) = (1 + t) / 2
        dt = dout * 0.5 * x                                # d out/d t = x / 2
        # t = tanh(u)
        du = dt * (1 - t * t)                              # d t/d u = 1 - tanh(u)^2
        # u = K (x + A x^3)
        dx += du * K * (1 + 3 * A * x * x)                 # d u/d x = K (1 + 3 A x^2)
        return dx


def make_layer(dtype, rng):
    return GELU()


def twin(layer):
    import torch
    return torch.nn.GELU(approximate="tanh")
