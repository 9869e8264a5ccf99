"""The layer stack: each layer's forward and its manual backward, side by side.

The layer protocol (docs/layer-protocol.md), what a layer provides to live in a ``Sequential``
and to be checked by ``oracle.check_layer`` / ``numpy-ninja check-layer``:
- ``forward(x)`` (also ``layer(x)``) returns the output and keeps what ``backward`` needs;
  ``backward(dout)`` returns dL/dx (None for integer input) and writes the gradients of the
  layer's own parameters into their ``.grad`` arrays, in place (overwriting, not accumulating:
  one backward per forward).
- ``named_parameters()`` yields (name, Parameter) with ``.data`` and ``.grad`` of the same shape;
  ``named_buffers()`` yields (name, array) of the state that is not trained (running statistics);
  ``train()`` / ``eval()`` switch the mode, ``training`` tells it.
- Optional, for the checks: ``terms(dout_terms)``, the magnitudes of the terms each result is
  summed from (a result that cancels is measured against them), and ``check_domain(x, rtol)``,
  why an input cannot be checked (None when it can).
Subclassing ``Module`` (and holding ``Parameter`` objects) gives all but forward and backward.

Linear stores its weight as ``(fan_in, fan_out)``, the lecture's layout (``x @ W``); torch stores
the transpose. dtype follows the parameters.
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


@lru_cache(maxsize=64)
def _scalar(value, dtype):
    """value as a read-only 0-d array of dtype: a Python float costs a conversion at each use."""
    return _filled((), value, dtype)


@lru_cache(maxsize=16)
def _row_starts(n, V):
    """A read-only np.arange(n) * V: where each row of an (n, V) array starts in its flat view."""
    starts = np.arange(n) * V
    starts.flags.writeable = False
    return starts


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

    def terms(self, dout_terms):
        """The magnitudes of the terms the results of the last forward and backward are summed
        from, as float64 arrays shaped like the results: "out" (the output), "dx" (the input
        gradient, given dout_terms >= 0 bounding the terms of dout, shaped like the output), and
        one entry per parameter (its gradient) and per buffer (its value). A result that is a sum
        of terms carries rounding of their size, not of its own, so the checks measure its error
        against them (docs/tolerances.md). A missing key means the result is not a sum (a
        reshape, an elementwise function): it is measured against its own magnitude. None (the
        default): the layer does not say, and every result is measured against itself."""
        return None

    def check_domain(self, x, rtol):
        """Why this layer's results on input x cannot be checked to relative tolerance rtol
        (one line, e.g. a batch too small for a batch statistic, a spread the dtype cannot
        resolve), or None when they can. The checks skip such inputs; on any other input the
        layer must compute, so raising there is a failure."""
        return None

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
        np.dot(onehot.T, dout.reshape(-1, E), out=self.weight.grad)
        return None  # the input is integer indices: no gradient

    def terms(self, dout_terms):
        x = self._saved().reshape(-1)
        dW = np.zeros(self.weight.data.shape)
        np.add.at(dW, x, dout_terms.reshape(len(x), -1))  # every lookup of a row adds to it
        return {"weight": dW}


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._saved())

    def terms(self, dout_terms):
        return {"dx": dout_terms.reshape(self._saved())}

    def check_domain(self, x, rtol):
        return None if x.ndim >= 2 else f"Flatten needs (N, ...) input, got shape {x.shape}"


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

    def terms(self, dout_terms):
        return {"dx": dout_terms.reshape(self._saved())}

    def check_domain(self, x, rtol):
        if x.ndim != 3:
            return f"FlattenConsecutive needs (B, T, C) input, got shape {x.shape}"
        if x.shape[1] % self.n:
            return f"sequence length {x.shape[1]} is not divisible by {self.n}"
        return None


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
        out = np.dot(_rows(x), self.weight.data)
        if self.bias is not None:
            out += self.bias.data
        return out if x.ndim == 2 else out.reshape(x.shape[:-1] + out.shape[-1:])

    def backward(self, dout):
        x = self._saved()
        d2 = _rows(dout)
        # dW = x^T dout, db = sum of dout over rows, dx = dout W^T
        np.dot(_rows(x).T, d2, out=self.weight.grad)
        if self.bias is not None:
            np.dot(_filled(len(d2), 1, d2.dtype), d2, out=self.bias.grad)
        return np.dot(d2, self.weight.data.T).reshape(x.shape)

    def terms(self, dout_terms):
        x = np.abs(_rows(self._saved()).astype(np.float64))
        W, B = np.abs(self.weight.data.astype(np.float64)), _rows(dout_terms)
        out = x @ W
        t = {"weight": x.T @ B, "dx": (B @ W.T).reshape(self.cache.shape)}
        if self.bias is not None:
            out += np.abs(self.bias.data)
            t["bias"] = B.sum(0)
        t["out"] = out.reshape(self.cache.shape[:-1] + W.shape[-1:])
        return t


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
            std = _std(self.running_var, self.eps)
            k = self.weight.data / std
            self.cache = (xc, std, k, None, self.running_mean)
            return self._affine(xc, k).reshape(x.shape)
        n = x2.shape[0]
        if n < 2:
            raise ValueError(
                f"BatchNorm1d in training needs at least 2 values per channel to estimate a "
                f"variance; input of shape {x.shape} has {n}")
        d = 1 if self.unbiased else 0
        mean = np.dot(_filled(n, 1 / n, x.dtype), x2)
        xc = x2 - mean
        var = np.dot(_filled(n, 1 / (n - d), x.dtype), xc * xc)  # divisor n-1 (lecture) or n (torch)
        std = _std(var, self.eps)
        m, dt = self.momentum, x.dtype
        self.running_mean *= _scalar(1 - m, dt)
        self.running_mean += _scalar(m, dt) * mean
        self.running_var *= _scalar(1 - m, dt)
        self.running_var += _scalar(m * (n - d) / (n - 1), dt) * var  # the running variance is unbiased
        k = self.weight.data / std
        self.cache = (xc, std, k, n, mean)
        return self._affine(xc, k).reshape(x.shape)

    def _affine(self, xc, k):
        """g * xhat + b with xhat = xc / std, as xc * k, k = g / std (xhat is never needed)."""
        out = xc * k
        out += self.bias.data
        return out

    def backward(self, dout):
        xc, std, k, n, _ = self._saved()
        shape, dout = dout.shape, _rows(dout)
        ones = _filled(len(dout), 1, dout.dtype)
        db = np.dot(ones, dout, out=self.bias.grad)  # sum(dout)
        dg = np.dot(ones, dout * xc, out=self.weight.grad)
        dg /= std  # sum(dout * xhat)
        if n is None:  # eval: running statistics are constants
            return (dout * k).reshape(shape)
        # exercise 3, for divisor n-d (d = 1 unbiased, 0 biased), xhat = xc/std, k = g/std:
        # dx = k * (dout - sum(dout)/n - xhat * sum(dout*xhat)/(n-d))
        d = 1 if self.unbiased else 0
        dx = xc * (dg / (std * _scalar(n - d, std.dtype)))
        np.subtract(dout, dx, out=dx)
        dx -= db * _scalar(1 / n, db.dtype)
        dx *= k
        return dx.reshape(shape)

    def terms(self, dout_terms):
        xc, std, k, n, mean = (np.abs(np.asarray(v, np.float64)) if v is not None else None
                               for v in self._saved())
        B, xhat = _rows(dout_terms), xc / std
        x = xc + mean  # bounds |x|: the terms of the mean and of x - mean
        g = (B * xhat).sum(0)
        t = {"out": (k * (x + mean) + np.abs(self.bias.data)).reshape(dout_terms.shape),
             "weight": g, "bias": B.sum(0)}
        rm, rv = (np.abs(b.astype(np.float64)) for b in (self.running_mean, self.running_var))
        if n is None:  # eval: running statistics are constants
            t.update(dx=(k * B).reshape(dout_terms.shape), running_mean=rm, running_var=rv)
            return t
        d, m = (1 if self.unbiased else 0), self.momentum
        t["dx"] = (k * (B + B.sum(0) / n + xhat * g / (n - d))).reshape(dout_terms.shape)
        # running = (1 - m) running + m stat, and (1 - m) |old| <= |new| + m |stat|
        t["running_mean"] = rm + m * mean + m * x.sum(0) / n
        t["running_var"] = rv + m * (x * x).sum(0) / (n - 1)
        return t

    def check_domain(self, x, rtol):
        if not self.training:
            return None
        x2 = np.asarray(_rows(x), np.float64)
        if len(x2) < 2:
            return f"BatchNorm1d in training needs at least 2 values per channel, got shape {x.shape}"
        # x - mean carries a relative error of eps * |x| / spread, amplified by 1/std into the
        # output: it must stay a tenth of rtol, or the output is rounding noise in any implementation
        eps = np.finfo(np.asarray(x).dtype).eps
        bad = np.flatnonzero(x2.std(0) < 10 * eps / rtol * np.abs(x2).max(0))
        if bad.size:
            return f"channel {bad[0]}: spread too small for {np.asarray(x).dtype} to resolve x - mean"
        return None


class LayerNorm(Module):
    """Normalisation of each row over its last axis, as torch.nn.LayerNorm(dim): x (..., C) ->
    same shape, out = weight * (x - mean) / sqrt(var + eps) + bias with the row's mean and
    biased (divisor C) variance. No batch statistics: any batch size, the same in train and eval.
    """

    _param_names = ("weight", "bias")

    def __init__(self, dim, eps=1e-5, *, dtype=np.float32):
        self.eps = eps
        self.weight = Parameter(np.ones(dim, dtype=dtype))
        self.bias = Parameter(np.zeros(dim, dtype=dtype))

    def forward(self, x):
        mean = x.mean(-1, keepdims=True)
        xc = x - mean
        std = _std((xc * xc).mean(-1, keepdims=True), self.eps)
        xhat = xc / std
        self.cache = (xhat, std, mean)
        return xhat * self.weight.data + self.bias.data

    def backward(self, dout):
        xhat, std, _ = self._saved()
        lead = tuple(range(dout.ndim - 1))
        self.bias.grad[...] = dout.sum(lead)
        self.weight.grad[...] = (dout * xhat).sum(lead)
        dxhat = dout * self.weight.data
        # per row, for xhat = (x - mean) / std with the divisor-C variance:
        # dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std
        return (dxhat - dxhat.mean(-1, keepdims=True)
                - xhat * (dxhat * xhat).mean(-1, keepdims=True)) / std

    def terms(self, dout_terms):
        xhat, std, mean = (np.abs(v.astype(np.float64)) for v in self._saved())
        istd = 1 / std
        g, lead = np.abs(self.weight.data.astype(np.float64)), tuple(range(xhat.ndim - 1))
        gB = g * dout_terms
        x = xhat / istd + mean  # bounds |x|: the terms of the mean and of x - mean
        return {"out": g * istd * (x + mean) + np.abs(self.bias.data),
                "weight": (dout_terms * xhat).sum(lead), "bias": dout_terms.sum(lead),
                "dx": istd * (gB + gB.mean(-1, keepdims=True)
                              + xhat * (gB * xhat).mean(-1, keepdims=True))}

    def check_domain(self, x, rtol):
        if x.shape[-1] == 1:  # the mean of one value is exact: x - mean is 0
            return None
        # as for BatchNorm1d, along each row
        x2 = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
        eps = np.finfo(np.asarray(x).dtype).eps
        bad = np.flatnonzero(x2.std(1) < 10 * eps / rtol * np.abs(x2).max(1))
        return f"row {bad[0]}: spread too small for {x.dtype} to resolve x - mean" if bad.size else None


def _std(var, eps):
    """sqrt(var + eps) (the lecture's bnvar_inv is its inverse)."""
    std = var + eps
    return np.sqrt(std, out=std)


class Tanh(Module):
    """Elementwise tanh; any shape."""

    def forward(self, x):
        out = np.tanh(x)
        self.cache = out
        return out

    def backward(self, dout):
        out = self._saved()
        dx = out * out
        np.subtract(_scalar(1, dx.dtype), dx, out=dx)  # d tanh(x)/dx = 1 - tanh(x)^2
        dx *= dout
        return dx

    def terms(self, dout_terms):
        h = self._saved().astype(np.float64)
        return {"dx": (1 + h * h) * dout_terms}  # the terms of 1 - h^2 are 1 and h^2


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

    def terms(self, dout_terms):
        """Every layer's terms, chained from the last layer's dout_terms back to the input, under
        the stack's names ("3.weight"); "out" is the last layer's. None if a layer does not say."""
        t = {}
        for i in reversed(range(len(self.layers))):
            own = self.layers[i].terms(dout_terms)
            if own is None:
                return None
            t.update({f"{i}.{k}": v for k, v in own.items() if k not in ("out", "dx")})
            if i == len(self.layers) - 1 and "out" in own:
                t["out"] = own["out"]
            dout_terms = own.get("dx")
            if dout_terms is None and i > 0:  # only the first layer may take index input
                return None
        if dout_terms is not None:
            t["dx"] = dout_terms
        return t

    def check_domain(self, x, rtol):
        """The first layer's domain: the inputs of later layers are only known after a forward."""
        return self.layers[0].check_domain(x, rtol) if self.layers else None


class CrossEntropyLoss:
    """Mean cross-entropy of logits (N, V) against integer targets (N,)."""

    cache = None

    def __call__(self, logits, targets):
        return self.forward(logits, targets)

    def forward(self, logits, targets):
        n, V = logits.shape
        starts = _row_starts(n, V)  # flat index of each row's first entry
        # max-subtracted, no overflow (each row's maximum taken at its argmax: a faster reduction)
        z = logits - logits.reshape(-1).take(starts + logits.argmax(1))[:, None]
        at_target = starts + targets
        picked = z.reshape(-1).take(at_target)
        counts = np.exp(z, out=z)
        sums = np.dot(counts, _filled(V, 1, counts.dtype))  # (n,)
        # loss = mean(log(sum(exp z)) - z[target])
        loss = (np.log(sums) - picked).sum() / n  # pairwise sum: accurate over a whole split too
        self.cache = (counts, sums, at_target)
        return float(loss)

    def backward(self):
        """dlogits = (softmax(logits) - onehot(targets)) / N  (exercise 2)."""
        if self.cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        counts, sums, at_target = self.cache
        n = len(sums)
        dlogits = counts / (sums * _scalar(n, sums.dtype))[:, None]
        dlogits.reshape(-1)[at_target] -= _scalar(1 / n, sums.dtype)
        return dlogits
