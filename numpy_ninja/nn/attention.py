"""Attention over the past: multi-head causal self-attention (makemore's CausalSelfAttention) and
the causal bag of words (makemore's CausalBoW), forward and hand-written backward.

Both take x of shape (B, T, C), T at most the block size, and return (B, T, C); position t sees
positions 0..t only. Names follow makemore's state_dict: ``c_attn.weight`` (C, 3C) (numpy-ninja's
(fan_in, fan_out) layout; its columns are q, k, v in that order, each C wide, heads side by side),
``c_attn.bias``, ``c_proj.weight`` (C, C), ``c_proj.bias``.

The causal mask, which makemore registers as a buffer named ``bias`` ((1, 1, block, block) for
attention, (1, block, block) for the bag of words, ones on and below the diagonal), is a constant
of the block size: it is not a buffer here (not in named_buffers, state_dict or a checkpoint),
it is yielded by ``named_constants()`` for an export to torch, and forward applies it as an
additive -inf wherever a key lies in its query's future, built once per (T, dtype).

CausalSelfAttention keeps its scores transposed, att[b, h, key, query]: the softmax's reductions
over keys then run over axis -2, where NumPy reduces whole contiguous rows at a time.
"""
import math
from functools import lru_cache

import numpy as np

from ._util import filled
from .container import Container
from .linear import Linear
from .module import Module


@lru_cache(maxsize=32)
def _causal_additive_t(T, dtype):
    """(T_key, T_query): 0 where key <= query, -inf below the diagonal, where the key is in the
    query's future (read-only): makemore's mask, transposed."""
    m = np.tril(np.full((T, T), -np.inf, dtype=dtype), -1)
    m.flags.writeable = False
    return m


@lru_cache(maxsize=32)
def _causal_average(T, dtype):
    """(T, T): row t holds 1/(t+1) in columns 0..t, 0 after (read-only)."""
    a = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    a = a.astype(dtype)
    a.flags.writeable = False
    return a


def _tril_mask(block_size, lead, dtype):
    """makemore's mask buffer: ones on and below the diagonal, shaped lead + (block, block)."""
    return np.tril(np.ones((block_size, block_size), dtype=dtype)).reshape(lead + (block_size,) * 2)


def _column_max(a):
    """The maximum over axis -2, keepdims, by halving that axis: each step is one elementwise
    maximum of two contiguous blocks, where NumPy's own reduction of a short axis loops row by row."""
    n = a.shape[-2]
    while n > 1:
        h = n // 2
        m = np.maximum(a[..., :h, :], a[..., h:2 * h, :])
        if n % 2:  # the odd row out joins the first
            np.maximum(m[..., :1, :], a[..., 2 * h:, :], out=m[..., :1, :])
        a, n = m, h
    return a


def _check_sequence(x, n_embd, block_size):
    if x.ndim != 3 or x.shape[-1] != n_embd:
        return f"needs (B, T, {n_embd}) input, got shape {x.shape}"
    if x.shape[1] > block_size:
        return f"sequence length {x.shape[1]} exceeds the block size {block_size}"
    return None


class CausalSelfAttention(Container):
    """Multi-head masked self-attention with a projection at the end, as makemore's.

    x (B, T, C) -> (B, T, C). q, k, v = split(x @ W_attn + b_attn) into n_head heads of
    hs = C / n_head; each head attends with softmax(q k^T / sqrt(hs)) over positions <= t; the
    heads' outputs, side by side, go through c_proj. T <= block_size.
    """

    def __init__(self, n_embd, n_head, block_size, *, rng=None, dtype=np.float32):
        if n_embd % n_head:
            raise ValueError(f"n_embd {n_embd} is not divisible by n_head {n_head}")
        rng = np.random.default_rng() if rng is None else rng
        self.n_embd, self.n_head, self.block_size = n_embd, n_head, block_size
        self.c_attn = Linear(n_embd, 3 * n_embd, rng=rng, dtype=dtype)
        self.c_proj = Linear(n_embd, n_embd, rng=rng, dtype=dtype)

    def children(self):
        return (("c_attn", self.c_attn), ("c_proj", self.c_proj))

    def named_constants(self, prefix=""):
        yield prefix + "bias", _tril_mask(self.block_size, (1, 1), self.c_attn.weight.data.dtype)

    def forward(self, x):
        reason = _check_sequence(x, self.n_embd, self.block_size)
        if reason:
            raise ValueError(f"CausalSelfAttention {reason}")
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        scale = 1 / math.sqrt(hs)
        qkv = self.c_attn.forward(x)                                      # (B, T, 3C)
        q, k, v = qkv.reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs), views
        # the scores transposed, att[b, h, key, query]: the softmax's reductions over keys run over
        # axis -2, whole contiguous rows at a time
        att = np.matmul(k, q.swapaxes(-1, -2))                            # (B, nh, Tk, Tq) (q k^T)^T
        att += _causal_additive_t(T, att.dtype)                           # (B, nh, Tk, Tq) -inf: key > query
        att -= _column_max(att)                                            # (B, nh, Tk, Tq) minus the max
        att *= scale                                                      # (B, nh, Tk, Tq) after the shift
        np.exp(att, out=att)                                              # (B, nh, Tk, Tq) 0 where masked
        att /= np.matmul(filled(T, 1, att.dtype), att)[..., None, :]          # (B, nh, Tk, Tq) softmax over keys
        y = np.empty((B, T, C), x.dtype)                                  # (B, T, C) heads side by side
        y_heads = y.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)           # (B, nh, Tq, hs) view of y
        np.matmul(att.swapaxes(-1, -2), v, out=y_heads)                   # (B, nh, Tq, hs) softmax @ v
        self.cache = (q, k, v, att, scale)
        return self.c_proj.forward(y)                                     # (B, T, C)

    def backward(self, dout):
        q, k, v, att, scale = self.saved()
        B, nh, T, hs = q.shape
        # out = c_proj(y)
        dy = self.c_proj.backward(dout)                                   # (B, T, C)
        dy = dy.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)               # (B, nh, T, hs) view
        dqkv = np.empty((B, T, 3 * nh * hs), dout.dtype)
        dq, dk, dv = dqkv.reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # views: written in place
        # y = softmax @ v, softmax = att^T: dv = att dy, datt = (dy v^T)^T = v dy^T
        np.matmul(att, dy, out=dv)                                        # (B, nh, Tk, hs)
        datt = np.matmul(v, dy.swapaxes(-1, -2))                          # (B, nh, Tk, Tq)
        # att = softmax over keys: ds = att * (datt - sum_keys att datt), term 1 att datt, term 2
        # the sum; 0 wherever att is (the mask), so the mask needs no backward of its own
        datt *= att                                                       # term 1
        ds = np.matmul(filled(T, 1, datt.dtype), datt)[..., None, :] * att    # term 2
        np.subtract(datt, ds, out=ds)                                     # (B, nh, Tk, Tq)
        ds *= scale                                                       # s = scale q k^T
        # s^T = k q^T: dq = ds^T k, dk = ds q
        np.matmul(ds.swapaxes(-1, -2), k, out=dq)                         # (B, nh, Tq, hs)
        np.matmul(ds, q, out=dk)                                          # (B, nh, Tk, hs)
        # qkv = c_attn(x)
        return self.c_attn.backward(dqkv)                                 # (B, T, C)

    def terms(self, dout_terms):
        """The backward run on absolute values (docs/tolerances.md): the scores' terms are
        |q| |k|^T scaled, from the terms of q, k, v (|x| |W| + |b|); the softmax carries relative
        rounding eps (1 + 2 L), L the largest score term of its row (the score and its row's
        maximum), into y, the output and every gradient back from it; the softmax backward's
        two terms add."""
        q, k, v, att, scale = self.saved()
        B, nh, T, hs = q.shape
        C = nh * hs
        a = self.c_attn.terms(np.zeros((B, T, 3 * C)))                    # only "out" used here
        Q = a["out"].reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)
        Tq, Tk, Tv = Q
        tril = np.tril(np.ones((T, T), bool))
        S = np.where(tril, np.matmul(Tq, Tk.swapaxes(-1, -2)) * scale, 0)  # (B, nh, T, T)
        P = np.abs(att.swapaxes(-1, -2).astype(np.float64)) * (1 + 2 * S.max(-1, keepdims=True))
        Y = np.matmul(P, Tv).transpose(0, 2, 1, 3).reshape(B * T, C)     # (B*T, C)
        Wp = np.abs(self.c_proj.weight.data.astype(np.float64))
        Bo = dout_terms.reshape(B * T, C)
        out = (Y @ Wp + np.abs(self.c_proj.bias.data)).reshape(B, T, C)
        dY = (Bo @ Wp.T).reshape(B, T, nh, hs).transpose(0, 2, 1, 3)    # (B, nh, T, hs)
        dP = np.matmul(dY, Tv.swapaxes(-1, -2))
        dV = np.matmul(P.swapaxes(-1, -2), dY)
        dS = P * (dP + (P * dP).sum(-1, keepdims=True)) * scale
        dQ, dK = np.matmul(dS, Tk), np.matmul(dS.swapaxes(-1, -2), Tq)
        D = np.stack([dQ, dK, dV]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * C)
        c = self.c_attn.terms(D)
        return {"out": out, "dx": c["dx"], "c_attn.weight": c["weight"], "c_attn.bias": c["bias"],
                "c_proj.weight": Y.T @ Bo, "c_proj.bias": Bo.sum(0)}

    def check_domain(self, x, rtol):
        return _check_sequence(x, self.n_embd, self.block_size)


class CausalBoW(Module):
    """Causal bag of words, as makemore's CausalBoW: out[:, t] is the mean of x[:, 0..t].
    x (B, T, C) -> (B, T, C), T <= block_size. No parameters.
    """

    def __init__(self, block_size):
        self.block_size = block_size

    def named_constants(self, prefix=""):
        yield prefix + "bias", _tril_mask(self.block_size, (1,), np.float32)

    def forward(self, x):
        if x.ndim != 3 or x.shape[1] > self.block_size:
            raise ValueError(f"CausalBoW needs (B, T, C) input with T <= {self.block_size}, "
                             f"got shape {x.shape}")
        avg = _causal_average(x.shape[1], x.dtype)                       # (T, T) lower triangle, rows 1/(t+1)
        self.cache = (avg, x)
        return np.matmul(avg, x)                                          # (B, T, C)

    def backward(self, dout):
        avg, _ = self.saved()
        # out = avg @ x: dx = avg^T dout
        return np.matmul(avg.T, dout)                                     # (B, T, C)

    def terms(self, dout_terms):
        avg, x = (v.astype(np.float64) for v in self.saved())  # avg is non-negative
        return {"out": np.matmul(avg, np.abs(x)), "dx": np.matmul(avg.T, dout_terms)}

    def check_domain(self, x, rtol):
        if x.ndim != 3:
            return f"CausalBoW needs (B, T, C) input, got shape {x.shape}"
        if x.shape[1] > self.block_size:
            return f"sequence length {x.shape[1]} exceeds the block size {self.block_size}"
        return None
