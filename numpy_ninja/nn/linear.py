"""Layers that multiply by a learned matrix: Linear (x @ W + b), Embedding (a lookup of rows,
the product of one-hot rows with the table) and PositionEmbedding (a lookup by position).

Linear stores its weight as ``(fan_in, fan_out)``, the lecture's layout (``x @ W``); torch stores
the transpose. dtype follows the parameters.
"""
import numpy as np

from ._util import filled, identity, rows
from .module import Module, Parameter


class Linear(Module):
    """out = x @ W + b. x: (N, fan_in) or (N, L, fan_in) -> out: (..., fan_out). W: (fan_in, fan_out)."""

    param_names = ("weight", "bias")

    def __init__(self, fan_in, fan_out, bias=True, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        w = rng.standard_normal((fan_in, fan_out)) / fan_in**0.5
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(np.zeros(fan_out, dtype=dtype)) if bias else None

    def forward(self, x):
        self.cache = x
        out = np.dot(rows(x), self.weight.data)
        if self.bias is not None:
            out += self.bias.data
        return out if x.ndim == 2 else out.reshape(x.shape[:-1] + out.shape[-1:])

    def backward(self, dout):
        x = self.saved()
        d2 = rows(dout)
        # dW = x^T dout, db = sum of dout over rows, dx = dout W^T
        np.dot(rows(x).T, d2, out=self.weight.grad)
        if self.bias is not None:
            np.dot(filled(len(d2), 1, d2.dtype), d2, out=self.bias.grad)
        return np.dot(d2, self.weight.data.T).reshape(x.shape)

    def terms(self, dout_terms):
        x = np.abs(rows(self.saved()).astype(np.float64))
        W, B = np.abs(self.weight.data.astype(np.float64)), rows(dout_terms)
        out = x @ W
        t = {"weight": x.T @ B, "dx": (B @ W.T).reshape(self.cache.shape)}
        if self.bias is not None:
            out += np.abs(self.bias.data)
            t["bias"] = B.sum(0)
        t["out"] = out.reshape(self.cache.shape[:-1] + W.shape[-1:])
        return t


class Embedding(Module):
    """Lookup table. x: int (N, ...) -> out: (N, ..., embedding_dim)."""

    param_names = ("weight",)

    def __init__(self, num_embeddings, embedding_dim, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, x):
        self.cache = x
        return self.weight.data.take(x, axis=0)  # weight[x]

    def backward(self, dout):
        x = self.saved().reshape(-1)
        V, E = self.weight.data.shape
        # dC[v] = sum of dout over every position that looked up row v: onehot(x)^T @ dout,
        # one matmul instead of a scatter-add (np.add.at) over the batch
        onehot = identity(V, dout.dtype).take(x, axis=0)  # (N*..., V)
        np.dot(onehot.T, dout.reshape(-1, E), out=self.weight.grad)
        return None  # the input is integer indices: no gradient

    def terms(self, dout_terms):
        x = self.saved().reshape(-1)
        dW = np.zeros(self.weight.data.shape)
        np.add.at(dW, x, dout_terms.reshape(len(x), -1))  # every lookup of a row adds to it
        return {"weight": dW}


class PositionEmbedding(Module):
    """A learned vector per position, as makemore's ``wpe`` (an Embedding looked up at
    arange(T)): idx (B, T) of any values -> out (B, T, embedding_dim), row t of the table for
    every sequence of the batch; only idx's shape is read. T at most num_positions."""

    param_names = ("weight",)

    def __init__(self, num_positions, embedding_dim, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.weight = Parameter(rng.standard_normal((num_positions, embedding_dim)).astype(dtype))

    def forward(self, idx):
        reason = self.check_domain(idx, None)
        if reason:
            raise ValueError(reason)
        B, T = idx.shape
        self.cache = idx.shape
        return np.broadcast_to(self.weight.data[:T], (B, T, self.weight.data.shape[1]))  # read-only view

    def backward(self, dout):
        B, T = self.saved()
        # out[b, t] = weight[t]: row t gets the sum over the batch, rows T and beyond nothing
        np.dot(filled(B, 1, dout.dtype), dout.reshape(B, -1), out=self.weight.grad[:T].reshape(-1))
        self.weight.grad[T:] = 0
        return None  # the input is only a shape: no gradient

    def terms(self, dout_terms):
        T = self.saved()[1]
        dW = np.zeros(self.weight.data.shape)
        dW[:T] = dout_terms.sum(0)
        return {"weight": dW}

    def check_domain(self, idx, rtol):
        if idx.ndim != 2:
            return f"PositionEmbedding needs (B, T) input, got shape {idx.shape}"
        if idx.shape[1] > len(self.weight.data):
            return f"sequence length {idx.shape[1]} exceeds the {len(self.weight.data)} positions"
        return None
