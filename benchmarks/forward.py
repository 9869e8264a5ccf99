"""A numpy_ninja Sequential's forward in another array library (torch or jax.numpy), with our
parameters, for the reference trainings of the benchmarks: train_torch.py and jax_step.py.

Written once for both: the operations used (indexing, reshape, @, mean and sum over axes, **,
sqrt, tanh) mean the same in torch and jax.numpy. Functional: the running statistics come back
as new arrays, so that jax can trace it and torch needs no in-place update.
"""
import math

from numpy_ninja import BatchNorm1d, Embedding, Flatten, FlattenConsecutive, Linear, Tanh


def forward(model, params, buffers, x, training, xp, detach, momentum=None):
    """(out, new buffers): the forward of `model`'s layers on x, params and buffers keyed by our
    names. xp: torch or jax.numpy; detach: what keeps a value out of the gradient (torch's
    Tensor.detach, jax.lax.stop_gradient). BatchNorm normalises with the batch variance in
    training (n-1 or n, as the layer says) and updates the running statistics with `momentum`
    (default: the layer's own), the running variance unbiased."""
    new = dict(buffers)
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Embedding):
            x = params[f"{i}.weight"][x]
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1)
        elif isinstance(layer, FlattenConsecutive):
            B, T, C = x.shape
            x = x.reshape(B, T // layer.n, C * layer.n)
            x = x[:, 0] if T == layer.n else x
        elif isinstance(layer, Linear):
            x = x @ params[f"{i}.weight"]
            if f"{i}.bias" in params:
                x = x + params[f"{i}.bias"]
        elif isinstance(layer, BatchNorm1d):
            rm, rv = f"{i}.running_mean", f"{i}.running_var"
            if training:
                dims = tuple(range(x.ndim - 1))
                n = math.prod(x.shape[:-1])
                m = layer.momentum if momentum is None else momentum
                mean = x.mean(dims)
                sq = ((x - mean) ** 2).sum(dims)
                var = sq / (n - (1 if layer.unbiased else 0))
                new[rm] = (1 - m) * buffers[rm] + m * detach(mean)
                new[rv] = (1 - m) * buffers[rv] + m * detach(sq / (n - 1))
            else:
                mean, var = buffers[rm], buffers[rv]
            x = params[f"{i}.weight"] * (x - mean) / xp.sqrt(var + layer.eps) + params[f"{i}.bias"]
        elif isinstance(layer, Tanh):
            x = xp.tanh(x)
        else:
            raise TypeError(f"no forward for {type(layer).__name__}")
    return x, new
