"""A numpy_ninja network's twin in PyTorch, for reference outputs and gradients by autograd.

Torch's own modules wherever torch has them (nn.Embedding, nn.Flatten, nn.Linear, nn.BatchNorm1d
for the biased estimator, nn.Tanh, F.cross_entropy); small modules here only where it has none
(FlattenConsecutive; BatchNorm normalising with the unbiased n-1 variance).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import numpy_ninja as nn_np


class FlattenConsecutive(nn.Module):
    """(B, T, C) -> (B, T//n, n*C); (B, n*C) when T == n."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        B, T, C = x.shape
        x = x.reshape(B, T // self.n, C * self.n)
        return x[:, 0] if T == self.n else x


class ChannelsLastBatchNorm1d(nn.BatchNorm1d):
    """torch's BatchNorm1d on (N, C) or channels-last (N, L, C) input (torch wants (N, C, L))."""

    def forward(self, x):
        if x.ndim == 2:
            return super().forward(x)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class UnbiasedBatchNorm1d(nn.Module):
    """BatchNorm that normalises with the n-1 variance in training (the lecture's); running
    statistics as torch keeps them. Input (N, C) or (N, L, C), statistics over all but the last axis."""

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


def twin_module(layer, dtype):
    """The torch module for one numpy_ninja layer, in dtype, with its parameters and buffers copied."""
    if isinstance(layer, nn_np.Embedding):
        m = nn.Embedding(*layer.weight.shape)
    elif isinstance(layer, nn_np.Flatten):
        m = nn.Flatten()
    elif isinstance(layer, nn_np.FlattenConsecutive):
        m = FlattenConsecutive(layer.n)
    elif isinstance(layer, nn_np.Linear):
        m = nn.Linear(*layer.weight.shape, bias=layer.bias is not None)
    elif isinstance(layer, nn_np.BatchNorm1d):
        dim = layer.weight.shape[0]
        m = (UnbiasedBatchNorm1d(dim, layer.eps, layer.momentum) if layer.unbiased
             else ChannelsLastBatchNorm1d(dim, eps=layer.eps, momentum=layer.momentum))
    elif isinstance(layer, nn_np.Tanh):
        m = nn.Tanh()
    else:
        raise TypeError(f"no torch twin for {type(layer).__name__}")
    m = m.to(dtype)
    m.load_state_dict(to_torch_layout(layer), strict=False)  # strict=False: num_batches_tracked
    return m.train(layer.training)


def to_torch_layout(layer):
    """The layer's state as torch tensors named and shaped as its twin's (Linear weight transposed)."""
    state = {}
    for name, value in layer.state_dict().items():
        if isinstance(layer, nn_np.Linear) and name == "weight":
            value = value.T
        state[name] = torch.tensor(np.array(value))
    return state


def build_twin(model, dtype):
    """torch.nn.Sequential twin of a numpy_ninja.Sequential, in dtype (a torch dtype)."""
    return nn.Sequential(*(twin_module(layer, dtype) for layer in model.layers))


def run_twin(model, x, targets=None, dout=None):
    """Forward and backward through the twin of `model` (a numpy_ninja Sequential).

    x: the model's input (integer contexts, or float activations). The loss is
    F.cross_entropy(out, targets) when targets are given, else sum(out * dout) so that the
    upstream gradient is dout. Returns a dict of NumPy arrays in our names and layouts:
    out, loss (float), dx (None for integer input), grads {name: array} keyed as
    model.named_parameters(), buffers {name: array} keyed as model.named_buffers() (after the
    forward, so training-mode running statistics are updated).
    """
    params = model.parameters()
    x = torch.tensor(np.asarray(x))
    twin = build_twin(model, torch.from_numpy(params[0].data[:0]).dtype if params else x.dtype)
    if x.is_floating_point():
        x.requires_grad_(True)
    out = twin(x)
    if targets is not None:
        loss = F.cross_entropy(out, torch.as_tensor(np.asarray(targets)))
    else:
        loss = (out * torch.tensor(np.asarray(dout))).sum()
    loss.backward()
    grads = {}
    for i, (layer, module) in enumerate(zip(model.layers, twin)):
        for name, p in module.named_parameters():
            transposed = isinstance(layer, nn_np.Linear) and name == "weight"
            grads[f"{i}.{name}"] = p.grad.numpy().T if transposed else p.grad.numpy()
    theirs = dict(twin.named_buffers())
    return dict(out=out.detach().numpy(), loss=loss.item(), dx=x.grad.numpy() if x.requires_grad else None,
                grads=grads, buffers={name: theirs[name].numpy() for name, _ in model.named_buffers()})
