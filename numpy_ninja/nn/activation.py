"""Elementwise activations: Tanh, and GELU (makemore's NewGELU, the tanh approximation of GPT-2).
Any shape; dtype follows the input."""
import math

import numpy as np

from ._util import scalar
from .module import Module


class Tanh(Module):
    """Elementwise tanh; any shape."""

    def forward(self, x):
        out = np.tanh(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self.saved()
        dx = out * out
        np.subtract(scalar(1, dx.dtype), dx, out=dx)  # d tanh(x)/dx = 1 - tanh(x)^2
        dx *= dout
        return dx

    def terms(self, dout_terms):
        h = self.saved().astype(np.float64)
        return {"dx": (1 + h * h) * dout_terms}  # the terms of 1 - h^2 are 1 and h^2


K = math.sqrt(2 / math.pi)
A = 0.044715


class GELU(Module):
    """GELU, tanh approximation: out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
    as makemore's NewGELU and torch.nn.GELU(approximate="tanh"). Any shape; no parameters.

    Computed through the identity 0.5 (1 + tanh(u)) = s = 1 / (1 + exp(-2u)), the logistic
    sigmoid of 2u: out = x s. exp is faster than tanh, and x s does not cancel where 1 + tanh(u)
    does (x near -5 and below); references that use the tanh form do cancel there, and ``terms``
    says by how much."""

    def forward(self, x):
        e = x * x                              # x^2                               (..., F)
        e *= -2 * K * A
        e -= 2 * K
        e *= x                                 # -2u = -2K (x + A x^3)             (..., F)
        with np.errstate(over="ignore"):       # x below about -10 (float32): exp -> inf, s -> 0
            np.exp(e, out=e)
        e += 1                                 # 1 + exp(-2u)                      (..., F)
        s = np.reciprocal(e, out=e)            # s = sigmoid(2u) = 0.5 (1 + tanh u) (..., F)
        self.cache = (x, s)
        return x * s                           # out = x s                         (..., F)

    def backward(self, dout):
        x, s = self.saved()
        # out = x s, s = sigmoid(2u): term 1 s, term 2 x ds/dx, with ds/dx = 2 s (1 - s) du/dx
        # and du/dx = K (1 + 3 A x^2); so dx = s (1 + 2 x (1 - s) du/dx) dout
        dx = x * x
        dx *= 6 * K * A
        dx += 2 * K
        dx *= x                                # 2 x du/dx
        dx *= 1 - s                            # term 2 over s
        dx += 1                                # term 1 over s
        dx *= s
        dx *= dout
        return dx

    def terms(self, dout_terms):
        """In the reference form 0.5 x (1 + t), t = tanh(u) = 2 s - 1: out sums 1 and t (which
        cancel as t -> -1); dx = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx sums 1, t and the second
        term, with 1 - t^2 itself a difference (terms 1 and t^2)."""
        x, s = (v.astype(np.float64) for v in self.saved())
        x, t = np.abs(x), np.abs(2 * s - 1)
        du = K * (1 + 3 * A * x * x)
        return {"out": 0.5 * x * (1 + t),
                "dx": dout_terms * 0.5 * (1 + t + x * (1 + t * t) * du)}
