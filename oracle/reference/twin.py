"""A numpy_ninja network's twin in PyTorch, for reference outputs and gradients by autograd.

Torch's own modules or ops wherever torch has them (nn.Embedding, nn.Flatten, F.linear,
nn.BatchNorm1d for the biased estimator, nn.LayerNorm, nn.Tanh, F.cross_entropy); small modules
here only where it has none (FlattenConsecutive; BatchNorm normalising with the unbiased n-1
variance). makemore's layers and models (GELU, PositionEmbedding, CausalSelfAttention, CausalBoW,
MLP, Block, BoWBlock, Recurrent, the six models) are oracle.reference.makemore's
(``layer_twin``).

    build_twin(module, dtype=None) -> torch.nn.Module
    run_twin(module, x, targets=None, dout=None) -> {"out", "loss", "dx", "grads", "buffers"}
    load_state(torch_module, state)          copy NumPy arrays in by name
    run_torch(torch_module, x, targets=None, dout=None) -> the same dict, by the module's names

`module` is a numpy_ninja layer or Sequential. The twin's state_dict has the module's names and
shapes (its Linear keeps the weight as (fan_in, fan_out), as ours does), so ``build_twin`` is a
twin factory for ``oracle.check_layer``; everything run_twin returns is keyed by the module's
``named_parameters()`` / ``named_buffers()`` names.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import numpy_ninja as nn_np
from oracle.reference import makemore


class FlattenConsecutive(nn.Module):
    """(B, T, C) -> (B, T//n, n*C); (B, n*C) when T == n."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        B, T, C = x.shape
        x = x.reshape(B, T // self.n, C * self.n)
        return x[:, 0] if T == self.n else x


class Linear(nn.Module):
    """torch's linear op on a weight stored (fan_in, fan_out): x @ weight + bias."""

    def __init__(self, fan_in, fan_out, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(fan_in, fan_out))
        self.bias = nn.Parameter(torch.empty(fan_out)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight.T, self.bias)


class ChannelsLastBatchNorm1d(nn.BatchNorm1d):
    """torch's BatchNorm1d on (N, C) or channels-last (N, L, C) input (it wants (N, C, L))."""

    def forward(self, x):
        if x.ndim == 2:
            return super().forward(x)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class UnbiasedBatchNorm1d(nn.Module):
    """BatchNorm that normalises with the n-1 variance in training (the lecture's). Input (N, C) or
    (N, L, C), statistics over all but the last axis. Running statistics as torch keeps them:
    running = (1 - momentum) * running + momentum * batch statistic, the variance unbiased."""

    def __init__(self, dim, eps, momentum):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x):
        dims = tuple(range(x.ndim - 1))
        if self.training:
            mean, var = x.mean(dims), x.var(dims, correction=1)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        else:
            mean, var = self.running_mean, self.running_var
        return self.weight * (x - mean) / torch.sqrt(var + self.eps) + self.bias


def torch_dtype(dtype):
    """The torch dtype of a NumPy dtype (a torch dtype is returned as it is)."""
    return dtype if isinstance(dtype, torch.dtype) else torch.from_numpy(np.zeros(0, dtype)).dtype


def twin_module(layer, dtype):
    """The torch module for one numpy_ninja layer (not a Sequential), in dtype, with copies of its
    parameters and buffers, in the layer's train/eval mode."""
    if isinstance(layer, nn_np.Embedding):
        m = nn.Embedding(*layer.weight.shape)
    elif isinstance(layer, nn_np.Flatten):
        m = nn.Flatten()
    elif isinstance(layer, nn_np.FlattenConsecutive):
        m = FlattenConsecutive(layer.n)
    elif isinstance(layer, nn_np.Linear):
        m = Linear(*layer.weight.shape, bias=layer.bias is not None)
    elif isinstance(layer, nn_np.BatchNorm1d):
        dim = layer.weight.shape[0]
        m = (UnbiasedBatchNorm1d(dim, layer.eps, layer.momentum) if layer.unbiased
             else ChannelsLastBatchNorm1d(dim, eps=layer.eps, momentum=layer.momentum))
    elif isinstance(layer, nn_np.LayerNorm):
        m = nn.LayerNorm(layer.weight.shape[0], eps=layer.eps)
    elif isinstance(layer, nn_np.Tanh):
        m = nn.Tanh()
    else:
        m = makemore.layer_twin(layer)  # makemore's layers and models
        if m is None:
            raise TypeError(f"no torch twin for {type(layer).__name__}")
    m = m.to(torch_dtype(dtype))
    load_state(m, layer.state_dict())
    return m.train(layer.training)


def load_state(module, state):
    """Copy the NumPy arrays of `state` into the torch module's parameters and buffers of the same
    names, in the module's dtypes; every name must be the module's and of its shape (buffers of
    its own that the state does not hold, such as torch's num_batches_tracked, are kept)."""
    own = module.state_dict()
    for name, value in state.items():
        if name not in own or tuple(own[name].shape) != np.shape(value):
            found = tuple(own[name].shape) if name in own else "nothing"
            raise ValueError(f"the twin has {found} where the layer has {name} {np.shape(value)}")
    module.load_state_dict({**own, **{k: torch.tensor(np.array(v)).to(own[k].dtype)
                                      for k, v in state.items()}})


def _layers(module):
    """(name prefix, layer) for every layer of a Sequential, or ("", module) for a single layer."""
    if isinstance(module, nn_np.Sequential):
        return [(f"{i}.", layer) for i, layer in enumerate(module.layers)]
    return [("", module)]


def build_twin(module, dtype=None):
    """The torch twin of a numpy_ninja layer or Sequential (an nn.Sequential with the same indices,
    so the same state_dict names). dtype: NumPy or torch dtype, default the module's parameters'
    (a module without parameters computes in its input's dtype)."""
    if dtype is None:
        params = module.parameters()
        dtype = params[0].data.dtype if params else np.float64
    twins = [twin_module(layer, dtype) for _, layer in _layers(module)]
    return nn.Sequential(*twins) if isinstance(module, nn_np.Sequential) else twins[0]


def run_twin(module, x, targets=None, dout=None):
    """Forward and backward through the twin of `module` (a numpy_ninja layer or Sequential; it is
    not modified: the twin holds copies of its state). See run_torch; everything is keyed by the
    module's names, which the twin shares (and only its buffers, not torch's extra ones)."""
    result = run_torch(build_twin(module), x, targets, dout)
    ours = {name for name, _ in module.named_buffers()}
    result["buffers"] = {k: v for k, v in result["buffers"].items() if k in ours}
    return result


def run_torch(module, x, targets=None, dout=None):
    """Forward and backward through a torch module.

    x: the input, (N, ...) integer indices or floats in the module's dtype.
    targets: (N,) integers: loss = F.cross_entropy(out, targets), out (N, V). Otherwise
    dout, shaped like the output: loss = sum(out * dout), so that the upstream gradient is dout.

    Returns NumPy arrays: "out" (the output), "loss" (float), "dx" (shaped like x; None for
    integer input), "grads" {name: array} for every parameter (zeros where it got no gradient),
    "buffers" {name: array} after the forward (so training-mode running statistics are updated),
    by the module's state_dict names.
    """
    x = torch.tensor(np.asarray(x))
    if x.is_floating_point():
        x.requires_grad_(True)
    out = module(x)
    if targets is not None:
        loss = F.cross_entropy(out, torch.as_tensor(np.asarray(targets)))
    else:
        loss = (out * torch.tensor(np.asarray(dout))).sum()
    loss.backward()
    grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)).numpy()
             for name, p in module.named_parameters()}
    buffers = {name: b.numpy() for name, b in module.named_buffers()}
    return dict(out=out.detach().numpy(), loss=loss.item(), dx=x.grad.numpy() if x.requires_grad else None,
                grads=grads, buffers=buffers)
