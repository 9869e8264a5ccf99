"""The layer stack: each layer's forward and its manual backward, side by side.

Conventions (PyTorch-like):
- ``layer(x)`` runs ``forward`` and keeps what ``backward`` needs;
  ``layer.backward(dout)`` returns dL/dx and writes the gradients of the layer's own parameters
  into their ``.grad`` arrays, in place (overwriting, not accumulating: one backward per forward).
- Parameters are ``Parameter`` objects with ``.data`` and ``.grad`` of the same shape.
- Linear stores its weight as ``(fan_in, fan_out)``, the lecture's layout (``x @ W``);
  torch stores the transpose.
- dtype follows the parameters.
"""
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _filled(n, value, dtype):
    """A read-only vector of n copies of value: ``_filled(n, 1, dt) @ x`` sums x over its rows in
    one BLAS call (``_filled(n, 1 / n, dt) @ x`` averages): faster than ``x.sum(0)``, and no less
    accurate (float32 mean of 65,536 rows: 4e-6 relative error against 1e-5)."""
    v = np.full(n, value, dtype=dtype)
    v.flags.writeable = False
    return v


@lru_cache(maxsize=16)
def _identity(n, dtype):
    """A read-only (n, n) identity: its rows, taken at integer indices, are one-hot vectors."""
    eye = np.eye(n, dtype=dtype)
    eye.flags.writeable = False
    return eye


def _rows(a):
    """a as a 2-D view (rows, last axis): one matrix product over every row, where matmul of a
    3-D array would loop over its first axis."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


class Parameter:
    """A trainable array and its gradient."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: parameter and buffer bookkeeping, train/eval switch, ``layer(x)``."""

    _param_names = ()
    _buffer_names = ()
    training = True
    cache = None  # what forward saved for backward

    def __call__(self, *args):
        return self.forward(*args)

    def named_parameters(self, prefix=""):
        for name in self._param_names:
            p = getattr(self, name)
            if p is not None:
                yield prefix + name, p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for name in self._buffer_names:
            yield prefix + name, getattr(self, name)

    def state_dict(self):
        """Parameters and buffers by torch ``state_dict`` name (arrays are not copied)."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays in by name; names, shapes and dtypes must match exactly."""
        own = self.state_dict()
        if set(own) != set(state):
            missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise ValueError(f"state mismatch: missing {missing}, unexpected {extra}")
        for name, target in own.items():
            src = np.asarray(state[name])
            if src.shape != target.shape or src.dtype != target.dtype:
                raise ValueError(
                    f"{name}: expected {target.shape} {target.dtype}, got {src.shape} {src.dtype}")
            target[...] = src

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def _saved(self):
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self.cache


class Embedding(Module):
    """Lookup table. x: int (N, ...) -> out: (N, ..., embedding_dim)."""

    _param_names = ("weight",)

    def __init__(self, num_embeddings, embedding_dim, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, x):
        self.cache = x
        return self.weight.data.take(x, axis=0)  # weight[x]

    def backward(self, dout):
        x = self._saved().reshape(-1)
        V, E = self.weight.data.shape
        # dC[v] = sum of dout over every position that looked up row v: onehot(x)^T @ dout,
        # one matmul instead of a scatter-add (np.add.at) over the batch
        onehot = _identity(V, dout.dtype).take(x, axis=0)  # (N*..., V)
        np.matmul(onehot.T, dout.reshape(-1, E), out=self.weight.grad)
        return None  # the input is integer indices: no gradient


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._saved())


class FlattenConsecutive(Module):
    """Concatenate n consecutive positions: (B, T, C) -> (B, T//n, n*C); (B, n*C) when T == n."""

    def __init__(self, n):
        if n < 1:
            raise ValueError(f"FlattenConsecutive needs n >= 1, got {n}")
        self.n = n

    def forward(self, x):
        B, T, C = x.shape
        if T % self.n:
            raise ValueError(f"FlattenConsecutive({self.n}): sequence length {T} is not divisible by {self.n}")
        self.cache = x.shape
        out = x.reshape(B, T // self.n, C * self.n)
        return out[:, 0, :] if T == self.n else out

    def backward(self, dout):
        return dout.reshape(self._saved())


class Linear(Module):
    """out = x @ W + b. x: (N, fan_in) or (N, L, fan_in) -> out: (..., fan_out). W: (fan_in, fan_out)."""

    _param_names = ("weight", "bias")

    def __init__(self, fan_in, fan_out, bias=True, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        w = rng.standard_normal((fan_in, fan_out)) / fan_in**0.5
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(np.zeros(fan_out, dtype=dtype)) if bias else None

    def forward(self, x):
        self.cache = x
        out = _rows(x) @ self.weight.data
        if self.bias is not None:
            out += self.bias.data
        return out if x.ndim == 2 else out.reshape(x.shape[:-1] + out.shape[-1:])

    def backward(self, dout):
        x = self._saved()
        d2 = _rows(dout)
        # dW = x^T dout, db = sum of dout over rows, dx = dout W^T
        np.matmul(_rows(x).T, d2, out=self.weight.grad)
        if self.bias is not None:
            np.matmul(_filled(len(d2), 1, d2.dtype), d2, out=self.bias.grad)
        return (d2 @ self.weight.data.T).reshape(x.shape)


class BatchNorm1d(Module):
    """Batch normalisation over every axis but the last. x: (N, C) or (N, L, C) -> same shape.

    In training, normalises with the batch variance: unbiased=True divides by n-1 (the lecture),
    unbiased=False by n (torch.nn.BatchNorm1d). Running mean and (unbiased) variance are updated
    with ``momentum`` and used in eval mode.
    """

    _param_names = ("weight", "bias")
    _buffer_names = ("running_mean", "running_var")

    def __init__(self, dim, eps=1e-5, momentum=0.1, unbiased=True, *, dtype=np.float32):
        self.eps, self.momentum, self.unbiased = eps, momentum, unbiased
        self.weight = Parameter(np.ones(dim, dtype=dtype))
        self.bias = Parameter(np.zeros(dim, dtype=dtype))
        self.running_mean = np.zeros(dim, dtype=dtype)
        self.running_var = np.ones(dim, dtype=dtype)

    def forward(self, x):
        x2 = _rows(x)  # (n, C): statistics over every row
        if not self.training:
            xc = x2 - self.running_mean
            istd = _inverse_std(self.running_var, self.eps)
            self.cache = (xc, istd, None)
            return self._affine(xc, istd).reshape(x.shape)
        n = x2.shape[0]
        if n < 2:
            raise ValueError(
                f"BatchNorm1d in training needs at least 2 values per channel to estimate a "
                f"variance; input of shape {x.shape} has {n}")
        d = 1 if self.unbiased else 0
        mean = _filled(n, 1 / n, x.dtype) @ x2
        xc = x2 - mean
        var = _filled(n, 1 / (n - d), x.dtype) @ (xc * xc)  # divisor n-1 (lecture) or n (torch)
        istd = _inverse_std(var, self.eps)
        m = self.momentum
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += (m * (n - d) / (n - 1)) * var  # the running variance is always unbiased
        self.cache = (xc, istd, n)
        return self._affine(xc, istd).reshape(x.shape)

    def _affine(self, xc, istd):
        """g * xhat + b with xhat = xc * istd (xhat itself is never needed)."""
        out = xc * (self.weight.data * istd)
        out += self.bias.data
        return out

    def backward(self, dout):
        xc, istd, n = self._saved()
        shape, dout = dout.shape, _rows(dout)
        ones = _filled(len(dout), 1, dout.dtype)
        db = np.matmul(ones, dout, out=self.bias.grad)  # sum(dout)
        dg = np.matmul(ones, dout * xc, out=self.weight.grad)
        dg *= istd  # sum(dout * xhat)
        k = self.weight.data * istd
        if n is None:  # eval: running statistics are constants
            return (dout * k).reshape(shape)
        # exercise 3, for divisor n-d (d = 1 unbiased, 0 biased), xhat = xc*istd:
        # dx = g*istd * (dout - sum(dout)/n - xhat * sum(dout*xhat)/(n-d))
        d = 1 if self.unbiased else 0
        dx = xc * (istd * dg * (1 / (n - d)))
        np.subtract(dout, dx, out=dx)
        dx -= db * (1 / n)
        dx *= k
        return dx.reshape(shape)


def _inverse_std(var, eps):
    """(var + eps) ** -0.5, as 1/sqrt: NumPy's float power is several times slower."""
    istd = var + eps
    np.sqrt(istd, out=istd)
    return np.reciprocal(istd, out=istd)


class Tanh(Module):
    """Elementwise tanh; any shape."""

    def forward(self, x):
        out = np.tanh(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self._saved()
        dx = out * out
        np.subtract(1, dx, out=dx)  # d tanh(x)/dx = 1 - tanh(x)^2
        dx *= dout
        return dx


class Sequential(Module):
    """Layers applied in order; backward runs their backward in reverse."""

    def __init__(self, layers):
        self.layers = list(layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)  # what layer(x) calls, one Python call fewer per layer
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def named_parameters(self, prefix=""):
        for i, layer in enumerate(self.layers):
            yield from layer.named_parameters(f"{prefix}{i}.")

    def named_buffers(self, prefix=""):
        for i, layer in enumerate(self.layers):
            yield from layer.named_buffers(f"{prefix}{i}.")

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self


class CrossEntropyLoss:
    """Mean cross-entropy of logits (N, V) against integer targets (N,)."""

    cache = None

    def __call__(self, logits, targets):
        return self.forward(logits, targets)

    def forward(self, logits, targets):
        n, V = logits.shape
        rows = np.arange(n)
        z = logits - np.maximum.reduce(logits, axis=1, keepdims=True)  # max-subtracted: no overflow
        picked = z[rows, targets]
        counts = np.exp(z, out=z)
        sums = counts @ _filled(V, 1, counts.dtype)  # (n,)
        # loss = mean(log(sum(exp z)) - z[target])
        loss = (np.log(sums) - picked).sum() / n  # pairwise sum: accurate over a whole split too
        self.cache = (counts, sums, rows, targets)
        return float(loss)

    def backward(self):
        """dlogits = (softmax(logits) - onehot(targets)) / N  (exercise 2)."""
        if self.cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        counts, sums, rows, targets = self.cache
        n = len(rows)
        dlogits = counts * (1 / n / sums)[:, None]
        dlogits[rows, targets] -= 1 / n
        return dlogits
