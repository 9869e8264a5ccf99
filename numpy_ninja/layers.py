"""The layer stack: each layer's forward and its manual backward, side by side.

Conventions (PyTorch-like):
- ``layer(x)`` runs ``forward`` and keeps what ``backward`` needs;
  ``layer.backward(dout)`` returns dL/dx and sets ``.grad`` of the layer's own parameters
  (overwriting, not accumulating: one backward per forward).
- Parameters are ``Parameter`` objects with ``.data`` and ``.grad`` of the same shape.
- Linear stores its weight as ``(fan_in, fan_out)``, the lecture's layout (``x @ W``);
  torch stores the transpose.
- dtype follows the parameters.
"""
import numpy as np


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
        return self.weight.data[x]

    def backward(self, dout):
        x = self._saved()
        # dC[i] = sum of dout over every position that looked up row i
        V, E = self.weight.data.shape
        self.weight.grad = np.zeros((V, E), dtype=dout.dtype)
        np.add.at(self.weight.grad, x.ravel(), dout.reshape(-1, E))
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
        out = x @ self.weight.data
        if self.bias is not None:
            out += self.bias.data
        return out

    def backward(self, dout):
        x = self._saved()
        fan_in, fan_out = self.weight.data.shape
        d2 = dout.reshape(-1, fan_out)
        # dW = x^T dout, db = sum of dout over rows, dx = dout W^T
        self.weight.grad = x.reshape(-1, fan_in).T @ d2
        if self.bias is not None:
            self.bias.grad = d2.sum(0)
        return dout @ self.weight.data.T


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
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # (n, C): statistics over every row
        if not self.training:
            istd = (self.running_var + self.eps) ** -0.5
            xhat = (x - self.running_mean) * istd
            self.cache = (xhat, istd, None)
            return (self.weight.data * xhat + self.bias.data).reshape(shape)
        n = x.shape[0]
        if n < 2:
            raise ValueError(
                f"BatchNorm1d in training needs at least 2 values per channel to estimate a "
                f"variance; input of shape {shape} has {n}")
        mean = x.mean(0)
        xc = x - mean
        ss = np.einsum("nc,nc->c", xc, xc)  # sum of squared deviations per channel
        var = ss / (n - 1) if self.unbiased else ss / n
        istd = (var + self.eps) ** -0.5
        xhat = xc * istd
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mean
        self.running_var = (1 - m) * self.running_var + m * (ss / (n - 1))
        self.cache = (xhat, istd, n)
        return (self.weight.data * xhat + self.bias.data).reshape(shape)

    def backward(self, dout):
        xhat, istd, n = self._saved()
        shape = dout.shape
        dout = dout.reshape(xhat.shape)
        g = self.weight.data
        self.bias.grad = dout.sum(0)
        self.weight.grad = np.einsum("nc,nc->c", dout, xhat)
        if n is None:  # eval: running statistics are constants
            return (dout * (g * istd)).reshape(shape)
        # exercise 3, for divisor n-d (d = 1 unbiased, 0 biased):
        # dx = g*istd/n * (n*dout - sum(dout) - n/(n-d) * xhat * sum(dout*xhat))
        d = 1 if self.unbiased else 0
        dx = (g * istd / n) * (n * dout - self.bias.grad - (n / (n - d)) * xhat * self.weight.grad)
        return dx.reshape(shape)


class Tanh(Module):
    """Elementwise tanh; any shape."""

    def forward(self, x):
        out = np.tanh(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self._saved()
        return (1 - out * out) * dout  # d tanh(x)/dx = 1 - tanh(x)^2


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
            x = layer(x)
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
        n = logits.shape[0]
        rows = np.arange(n)
        shifted = logits - logits.max(axis=1, keepdims=True)  # no overflow for large logits
        counts = np.exp(shifted)
        sums = counts.sum(axis=1, keepdims=True)
        loss = np.log(sums[:, 0]).mean() - shifted[rows, targets].mean()
        self.cache = (counts, sums, rows, targets)
        return float(loss)

    def backward(self):
        """dlogits = (softmax(logits) - onehot(targets)) / N  (exercise 2)."""
        if self.cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        counts, sums, rows, targets = self.cache
        dlogits = counts / sums
        dlogits[rows, targets] -= 1
        dlogits /= len(rows)
        return dlogits
