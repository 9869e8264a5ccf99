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
        x = self._saved().reshape(-1)
        V, E = self.weight.data.shape
        # dC[v] = sum of dout over every position that looked up row v: onehot(x)^T @ dout,
        # one matmul instead of a scatter-add (np.add.at) over the batch
        onehot = np.zeros((V, x.size), dtype=dout.dtype)
        onehot[x, np.arange(x.size)] = 1
        np.matmul(onehot, dout.reshape(-1, E), out=self.weight.grad)
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
        np.matmul(x.reshape(-1, fan_in).T, d2, out=self.weight.grad)
        if self.bias is not None:
            np.sum(d2, axis=0, out=self.bias.grad)
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
            xc, istd = x - self.running_mean, (self.running_var + self.eps) ** -0.5
            self.cache = (xc, istd, None)
            return (xc * (self.weight.data * istd) + self.bias.data).reshape(shape)
        n = x.shape[0]
        if n < 2:
            raise ValueError(
                f"BatchNorm1d in training needs at least 2 values per channel to estimate a "
                f"variance; input of shape {shape} has {n}")
        mean = x.sum(0) * (1 / n)
        xc = x - mean
        ss = np.einsum("nc,nc->c", xc, xc)  # sum of squared deviations per channel
        var = ss * (1 / (n - 1) if self.unbiased else 1 / n)
        istd = (var + self.eps) ** -0.5
        m = self.momentum
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += (m / (n - 1)) * ss  # the running variance is always unbiased
        self.cache = (xc, istd, n)
        # out = g * xhat + b with xhat = xc * istd (xhat itself is never needed)
        return (xc * (self.weight.data * istd) + self.bias.data).reshape(shape)

    def backward(self, dout):
        xc, istd, n = self._saved()
        shape = dout.shape
        dout = dout.reshape(xc.shape)
        k = self.weight.data * istd
        np.sum(dout, axis=0, out=self.bias.grad)
        sxc = np.einsum("nc,nc->c", dout, xc)  # sum(dout * xc)
        np.multiply(sxc, istd, out=self.weight.grad)  # sum(dout * xhat)
        if n is None:  # eval: running statistics are constants
            return (dout * k).reshape(shape)
        # exercise 3, for divisor n-d (d = 1 unbiased, 0 biased), xhat = xc*istd:
        # dx = g*istd/n * (n*dout - sum(dout) - n/(n-d) * xhat * sum(dout*xhat))
        d = 1 if self.unbiased else 0
        dx = k * dout - (k / n) * self.bias.grad - xc * ((k * istd / (n - d)) * self.weight.grad)
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
        z = logits - logits.max(axis=1, keepdims=True)  # max-subtracted: no overflow
        picked = z[rows, targets]
        counts = np.exp(z, out=z)
        sums = counts.sum(axis=1, keepdims=True)
        # loss = mean(log(sum(exp z)) - z[target])
        loss = (np.log(sums).sum() - picked.sum()) / n
        self.cache = (counts, sums, rows, targets)
        return float(loss)

    def backward(self):
        """dlogits = (softmax(logits) - onehot(targets)) / N  (exercise 2)."""
        if self.cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        counts, sums, rows, targets = self.cache
        dlogits = counts / sums
        dlogits[rows, targets] -= 1
        dlogits *= 1 / len(rows)
        return dlogits
