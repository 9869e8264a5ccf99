"""Multi-head causal self-attention (GPT's), written the obvious way: forward and backward only.

A fused projection to queries, keys and values, qkv = x @ w_attn + b_attn (C -> 3C), each head's
softmax(q k^T / sqrt(hs)) over the positions up to its own, and an output projection
y @ w_proj + b_proj. Input (B, T, C). Weights are stored (fan_in, fan_out), as numpy_ninja's
Linear stores them; the twin is the same projections around torch's scaled_dot_product_attention:

    numpy-ninja check-layer examples/attention.py:make_layer --features 8 --ndim 3 \\
        --twin examples/attention.py:twin
    numpy-ninja check-layer examples/attention.py:make_layer --features 8 --ndim 3
"""
import numpy as np

from numpy_ninja import Module, Parameter

FEATURES, HEADS = 8, 2


class CausalSelfAttention(Module):
    """x (B, T, C) -> (B, T, C), HEADS heads of C / HEADS features each."""

    param_names = ("w_attn", "b_attn", "w_proj", "b_proj")

    def __init__(self, dim, heads, *, rng, dtype=np.float32):
        self.heads = heads
        self.w_attn = Parameter((rng.standard_normal((dim, 3 * dim)) / dim ** 0.5).astype(dtype))
        self.b_attn = Parameter((0.1 * rng.standard_normal(3 * dim)).astype(dtype))
        self.w_proj = Parameter((rng.standard_normal((dim, dim)) / dim ** 0.5).astype(dtype))
        self.b_proj = Parameter((0.1 * rng.standard_normal(dim)).astype(dtype))

    def split_heads(self, a):
        """(B, T, C) -> (B, heads, T, hs)."""
        B, T, C = a.shape
        return a.reshape(B, T, self.heads, C // self.heads).swapaxes(1, 2)

    def merge_heads(self, a):
        """(B, heads, T, hs) -> (B, T, C)."""
        B, H, T, hs = a.shape
        return a.swapaxes(1, 2).reshape(B, T, H * hs)

    def forward(self, x):
        B, T, C = x.shape
        scale = x.dtype.type(1 / np.sqrt(C // self.heads))
        qkv = x @ self.w_attn.data + self.b_attn.data
        q, k, v = (self.split_heads(a) for a in np.split(qkv, 3, axis=-1))
        att = q @ k.swapaxes(-1, -2) * scale
        att = np.where(np.tril(np.ones((T, T), bool)), att, -np.inf)
        e = np.exp(att - att.max(-1, keepdims=True))
        p = e / e.sum(-1, keepdims=True)
        y = self.merge_heads(p @ v)
        self.cache = (x, q, k, v, p, y, scale)
        return y @ self.w_proj.data + self.b_proj.data

    def backward(self, dout):
        x, q, k, v, p, y, scale = self.saved()
        C = x.shape[-1]
        # out = y @ w_proj + b_proj
        self.w_proj.grad[...] = y.reshape(-1, C).T @ dout.reshape(-1, C)   # d out/d w_proj = y
        self.b_proj.grad[...] = dout.reshape(-1, C).sum(0)                  # d out/d b_proj = 1
        dyh = self.split_heads(dout @ self.w_proj.data.T)                   # d out/d y = w_proj
        # y = merge(p @ v)
        dp = dyh @ v.swapaxes(-1, -2)                                       # d (p v)/d p = v
        dv = p.swapaxes(-1, -2) @ dyh                                       # d (p v)/d v = p
        # p = softmax(att), the masked scores at -inf (p is 0 there, and so is their gradient)
        datt = p * (dp - (dp * p).sum(-1, keepdims=True))                   # d p_i/d att_j = p_i (delta_ij - p_j)
        # att = q @ k^T * scale
        dq = datt @ k * scale                                               # d att/d q = k scale
        dk = datt.swapaxes(-1, -2) @ q * scale                              # d att/d k = q scale
        # q, k, v = split(qkv)
        dqkv = np.concatenate([self.merge_heads(a) for a in (dq, dk, dv)], -1)
        # qkv = x @ w_attn + b_attn
        self.w_attn.grad[...] = x.reshape(-1, C).T @ dqkv.reshape(-1, 3 * C)  # d qkv/d w_attn = x
        self.b_attn.grad[...] = dqkv.reshape(-1, 3 * C).sum(0)                 # d qkv/d b_attn = 1
        return dqkv @ self.w_attn.data.T                                        # d qkv/d x = w_attn


def make_layer(dtype, rng):
    return CausalSelfAttention(FEATURES, HEADS, rng=rng, dtype=dtype)


def twin(layer):
    """The same projections in torch around F.scaled_dot_product_attention(is_causal=True)."""
    import torch
    import torch.nn.functional as F

    class Twin(torch.nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.w_attn = torch.nn.Parameter(torch.empty(dim, 3 * dim))
            self.b_attn = torch.nn.Parameter(torch.empty(3 * dim))
            self.w_proj = torch.nn.Parameter(torch.empty(dim, dim))
            self.b_proj = torch.nn.Parameter(torch.empty(dim))

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (x @ self.w_attn + self.b_attn).split(C, dim=-1)
            q, k, v = (a.view(B, T, self.heads, C // self.heads).transpose(1, 2) for a in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return y.transpose(1, 2).reshape(B, T, C) @ self.w_proj + self.b_proj

    return Twin(layer.w_attn.shape[0], layer.heads)
