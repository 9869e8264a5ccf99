"""Normalisation layers: BatchNorm1d (statistics over the batch) and LayerNorm (over each row)."""
import numpy as np

from ._util import filled, rows, scalar, stddev
from .module import Module, Parameter


class BatchNorm1d(Module):
    """Batch normalisation over every axis but the last. x: (N, C) or (N, L, C) -> same shape.

    In training, normalises with the batch variance: unbiased=True divides by n-1 (the lecture),
    unbiased=False by n (torch.nn.BatchNorm1d). Running mean and (unbiased) variance are updated
    with ``momentum`` and used in eval mode.
    """

    param_names = ("weight", "bias")
    buffer_names = ("running_mean", "running_var")

    def __init__(self, dim, eps=1e-5, momentum=0.1, unbiased=True, *, dtype=np.float32):
        self.eps, self.momentum, self.unbiased = eps, momentum, unbiased
        self.weight = Parameter(np.ones(dim, dtype=dtype))
        self.bias = Parameter(np.zeros(dim, dtype=dtype))
        self.running_mean = np.zeros(dim, dtype=dtype)
        self.running_var = np.ones(dim, dtype=dtype)

    def forward(self, x):
        x2 = rows(x)  # (n, C): statistics over every row
        if not self.training:
            xc = x2 - self.running_mean
            std = stddev(self.running_var, self.eps)
            k = self.weight.data / std
            self.cache = (xc, std, k, None, self.running_mean)
            return self._affine(xc, k).reshape(x.shape)
        n = x2.shape[0]
        if n < 2:
            raise ValueError(
                f"BatchNorm1d in training needs at least 2 values per channel to estimate a "
                f"variance; input of shape {x.shape} has {n}")
        d = 1 if self.unbiased else 0
        mean = np.dot(filled(n, 1 / n, x.dtype), x2)
        xc = x2 - mean
        var = np.dot(filled(n, 1 / (n - d), x.dtype), xc * xc)  # divisor n-1 (lecture) or n (torch)
        std = stddev(var, self.eps)
        m, dt = self.momentum, x.dtype
        self.running_mean *= scalar(1 - m, dt)
        self.running_mean += scalar(m, dt) * mean
        self.running_var *= scalar(1 - m, dt)
        self.running_var += scalar(m * (n - d) / (n - 1), dt) * var  # the running variance is unbiased
        k = self.weight.data / std
        self.cache = (xc, std, k, n, mean)
        return self._affine(xc, k).reshape(x.shape)

    def _affine(self, xc, k):
        """g * xhat + b with xhat = xc / std, as xc * k, k = g / std (xhat is never needed)."""
        out = xc * k
        out += self.bias.data
        return out

    def backward(self, dout):
        xc, std, k, n, _ = self.saved()
        shape, dout = dout.shape, rows(dout)
        ones = filled(len(dout), 1, dout.dtype)
        db = np.dot(ones, dout, out=self.bias.grad)  # sum(dout)
        dg = np.dot(ones, dout * xc, out=self.weight.grad)
        dg /= std  # sum(dout * xhat)
        if n is None:  # eval: running statistics are constants
            return (dout * k).reshape(shape)
        # exercise 3, for divisor n-d (d = 1 unbiased, 0 biased), xhat = xc/std, k = g/std:
        # dx = k * (dout - sum(dout)/n - xhat * sum(dout*xhat)/(n-d))
        d = 1 if self.unbiased else 0
        dx = xc * (dg / (std * scalar(n - d, std.dtype)))
        np.subtract(dout, dx, out=dx)
        dx -= db * scalar(1 / n, db.dtype)
        dx *= k
        return dx.reshape(shape)

    def terms(self, dout_terms):
        xc, std, k, n, mean = (np.abs(np.asarray(v, np.float64)) if v is not None else None
                               for v in self.saved())
        B, xhat = rows(dout_terms), xc / std
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
        x2 = np.asarray(rows(x), np.float64)
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

    param_names = ("weight", "bias")

    def __init__(self, dim, eps=1e-5, *, dtype=np.float32):
        self.eps = eps
        self.weight = Parameter(np.ones(dim, dtype=dtype))
        self.bias = Parameter(np.zeros(dim, dtype=dtype))

    def forward(self, x):
        x2 = rows(x)                                           # (N, C)
        N, C = x2.shape
        mean_c = filled(C, 1 / C, x.dtype)                     # (C,) 1/C: a row mean is x @ mean_c
        mean = np.dot(x2, mean_c)                              # (N,) row means
        xhat = x2 - mean[:, None]                              # (N, C) x - mean
        out = np.multiply(xhat, xhat)                          # (N, C) (x - mean)^2
        std = np.dot(out, mean_c)                              # (N,) var, divisor C
        std += scalar(self.eps, std.dtype)
        np.sqrt(std, out=std)                                  # (N,) sqrt(var + eps)
        xhat /= std[:, None]                                   # (N, C) xhat
        np.multiply(xhat, self.weight.data, out=out)
        out += self.bias.data                                  # (N, C) weight * xhat + bias
        lead = x.shape[:-1] + (1,)
        self.cache = (xhat.reshape(x.shape), std.reshape(lead), mean.reshape(lead))
        return out.reshape(x.shape)

    def backward(self, dout):
        xhat, std, _ = self.saved()
        d2, xh = rows(dout), rows(xhat)                        # (N, C)
        N, C = d2.shape
        ones, mean_c = filled(N, 1, d2.dtype), filled(C, 1 / C, d2.dtype)
        # out = weight * xhat + bias: dbias = sum of dout over rows, dweight = sum of dout xhat
        np.dot(ones, d2, out=self.bias.grad)
        prod = d2 * xh                                         # (N, C) dout xhat
        np.dot(ones, prod, out=self.weight.grad)
        dxhat = d2 * self.weight.data                          # (N, C)
        # xhat = (x - mean) / std, per row with the divisor-C variance:
        # dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std, terms 1, 2, 3
        m1 = np.dot(dxhat, mean_c)                             # (N,) mean(dxhat)
        prod *= self.weight.data                               # (N, C) dxhat xhat
        m2 = np.dot(prod, mean_c)                              # (N,) mean(dxhat xhat)
        np.multiply(xh, m2[:, None], out=prod)                 # term 3
        dxhat -= m1[:, None]                                   # term 2
        dxhat -= prod
        dxhat /= rows(std)
        return dxhat.reshape(dout.shape)

    def terms(self, dout_terms):
        xhat, std, mean = (np.abs(v.astype(np.float64)) for v in self.saved())
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
