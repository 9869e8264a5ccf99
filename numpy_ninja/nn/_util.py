"""Small cached arrays and views the layers share. Private: not part of the layer protocol."""
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def filled(n, value, dtype):
    """A read-only vector of n copies of value: ``filled(n, 1, dt) @ x`` sums x over its rows in
    one BLAS call (``filled(n, 1 / n, dt) @ x`` averages), as accurate as ``x.sum(0)``."""
    v = np.full(n, value, dtype=dtype)
    v.flags.writeable = False
    return v


@lru_cache(maxsize=64)
def scalar(value, dtype):
    """value as a read-only 0-d array of dtype: a Python float costs a conversion at each use."""
    return filled((), value, dtype)


@lru_cache(maxsize=16)
def row_starts(n, V):
    """A read-only np.arange(n) * V: where each row of an (n, V) array starts in its flat view."""
    starts = np.arange(n) * V
    starts.flags.writeable = False
    return starts


@lru_cache(maxsize=16)
def identity(n, dtype):
    """A read-only (n, n) identity: its rows, taken at integer indices, are one-hot vectors."""
    eye = np.eye(n, dtype=dtype)
    eye.flags.writeable = False
    return eye


def rows(a):
    """a as a 2-D view (rows, last axis): one matrix product over every row, where matmul of a
    3-D array would loop over its first axis."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


def stddev(var, eps):
    """sqrt(var + eps) (the lecture's bnvar_inv is its inverse)."""
    out = var + eps
    return np.sqrt(out, out=out)
