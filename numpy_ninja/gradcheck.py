"""Gradients by central finite differences, independent of any autograd."""
import numpy as np


def numerical_grad(f, x, h=1e-6):
    """d f() / d x by central differences, perturbing x in place (restored afterwards).

    f takes no arguments and returns a scalar that depends on x. Use float64.
    """
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):  # index x itself: a reshape of a non-C-ordered x would be a copy
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad


def rel_error(a, b):
    """max |a - b| relative to the larger of the two arrays' scales (0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max(initial=0.0) / scale)
