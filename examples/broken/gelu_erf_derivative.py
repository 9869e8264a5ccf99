"""examples/gelu.py with a classic mistake: the tanh approximation's forward, and the backward of
the exact GELU, x Phi(x), whose derivative is Phi(x) + x phi(x) (Phi, phi: the standard normal's
distribution and density). The two differ by at most 9e-4, about 1% of the gradient near
x = -2.

    numpy-ninja check-layer examples/broken/gelu_erf_derivative.py:make_layer --features 4 \\
        --twin examples/broken/gelu_erf_derivative.py:twin
"""
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/: the correct layer
import gelu  # noqa: E402

twin = gelu.twin
erf = np.vectorize(math.erf, otypes=[np.float64])


class GELU(gelu.GELU):
    def backward(self, dout):
        x, _ = self.saved()
        x64 = np.asarray(x, np.float64)
        # MISTAKE: d/dx [x Phi(x)], the exact GELU's derivative, not the tanh approximation's
        d = 0.5 * (1 + erf(x64 / np.sqrt(2))) + x64 * np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
        return dout * d.astype(x.dtype)


def make_layer(dtype, rng):
    return GELU()
