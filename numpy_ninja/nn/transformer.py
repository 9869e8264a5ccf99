"""The residual blocks of makemore's Transformer and bag-of-words models: the two-layer ``MLP``,
the pre-norm Transformer ``Block`` and the ``BoWBlock``, each forward and hand-written backward.
Names are makemore's (``ln_1``, ``attn``, ``ln_2``, ``mlp.c_fc``, ``mlp.c_proj``, ``cbow``)."""
import numpy as np

from .activation import GELU, Tanh
from .attention import CausalBoW, CausalSelfAttention
from .container import Container, prefixed
from .linear import Linear
from .norm import LayerNorm


class MLP(Container):
    """c_proj(act(c_fc(x))): (..., n_in) -> (..., n_in), hidden width n_hidden. Children
    ``c_fc``, ``c_proj`` and ``act`` (GELU in the Transformer block, Tanh in the BoW block)."""

    def __init__(self, n_in, n_hidden, act, *, rng=None, dtype=np.float32):
        self.c_fc = Linear(n_in, n_hidden, rng=rng, dtype=dtype)
        self.c_proj = Linear(n_hidden, n_in, rng=rng, dtype=dtype)
        self.act = act

    def children(self):
        return (("c_fc", self.c_fc), ("c_proj", self.c_proj), ("act", self.act))

    def forward(self, x):
        h = self.c_fc.forward(x)                  # (..., n_hidden)
        h = self.act.forward(h)                   # (..., n_hidden)
        return self.c_proj.forward(h)             # (..., n_in)

    def backward(self, dout):
        dh = self.c_proj.backward(dout)           # (..., n_hidden)
        dh = self.act.backward(dh)                # (..., n_hidden)
        return self.c_fc.backward(dh)             # (..., n_in)

    def terms(self, dout_terms):
        p = self.c_proj.terms(dout_terms)
        a = self.act.terms(p["dx"])
        f = self.c_fc.terms(a["dx"])
        return {"out": p["out"], "dx": f["dx"], **prefixed(f, "c_fc"), **prefixed(p, "c_proj")}


class Block(Container):
    """The pre-norm Transformer block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), the MLP
    c_fc (C -> 4C), GELU, c_proj (4C -> C). x (B, T, C) -> (B, T, C), T <= block_size."""

    def __init__(self, n_embd, n_head, block_size, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.ln_1 = LayerNorm(n_embd, dtype=dtype)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, rng=rng, dtype=dtype)
        self.ln_2 = LayerNorm(n_embd, dtype=dtype)
        self.mlp = MLP(n_embd, 4 * n_embd, GELU(), rng=rng, dtype=dtype)

    def children(self):
        return (("ln_1", self.ln_1), ("attn", self.attn), ("ln_2", self.ln_2), ("mlp", self.mlp))

    def forward(self, x):
        h = self.attn.forward(self.ln_1.forward(x))  # (B, T, C)
        h += x                                       # (B, T, C) x1 = x + attn(ln_1(x))
        out = self.mlp.forward(self.ln_2.forward(h))  # (B, T, C)
        out += h                                     # (B, T, C) x1 + mlp(ln_2(x1))
        self.cache = x
        return out

    def backward(self, dout):
        # out = x1 + mlp(ln_2(x1)): term 1 the residual (dout itself), term 2 the MLP branch
        dx1 = self.ln_2.backward(self.mlp.backward(dout))  # term 2
        dx1 += dout                                        # term 1
        # x1 = x + attn(ln_1(x)): term 1 the residual, term 2 the attention branch
        dx = self.ln_1.backward(self.attn.backward(dx1))   # term 2
        dx += dx1                                          # term 1
        return dx

    def terms(self, dout_terms):
        x = np.abs(self.saved().astype(np.float64))
        m = self.mlp.terms(dout_terms)
        l2 = self.ln_2.terms(m["dx"])
        dx1 = dout_terms + l2["dx"]
        a = self.attn.terms(dx1)
        l1 = self.ln_1.terms(a["dx"])
        return {"out": x + a["out"] + m["out"], "dx": dx1 + l1["dx"],
                **prefixed(l1, "ln_1"), **prefixed(a, "attn"), **prefixed(l2, "ln_2"),
                **prefixed(m, "mlp")}

    def check_domain(self, x, rtol):
        reason = self.attn.check_domain(x, rtol)
        if reason is None:  # ln_2's input is x1: known after the first half of a forward
            reason = self.ln_1.check_domain(x, rtol / 2)  # each LayerNorm gets half
        if reason is None:
            x1 = self.attn.forward(self.ln_1.forward(x)) + x
            reason = self.ln_2.check_domain(x1, rtol / 2)
            self.cache = self.attn.cache = None
        return reason


class BoWBlock(Container):
    """makemore's bag-of-words block: x = x + cbow(x); x = x + mlp(x), the MLP c_fc (C -> n_embd2),
    tanh, c_proj (n_embd2 -> C). x (B, T, C) -> (B, T, C), T <= block_size."""

    def __init__(self, n_embd, n_embd2, block_size, *, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.cbow = CausalBoW(block_size)
        self.mlp = MLP(n_embd, n_embd2, Tanh(), rng=rng, dtype=dtype)

    def children(self):
        return (("cbow", self.cbow), ("mlp", self.mlp))

    def forward(self, x):
        h = self.cbow.forward(x)                     # (B, T, C)
        h += x                                       # (B, T, C) x1 = x + cbow(x)
        out = self.mlp.forward(h)                    # (B, T, C)
        out += h                                     # (B, T, C) x1 + mlp(x1)
        self.cache = x
        return out

    def backward(self, dout):
        # out = x1 + mlp(x1): term 1 the residual, term 2 the MLP
        dx1 = self.mlp.backward(dout)                # term 2
        dx1 += dout                                  # term 1
        # x1 = x + cbow(x): term 1 the residual, term 2 the average
        dx = self.cbow.backward(dx1)                 # term 2
        dx += dx1                                    # term 1
        return dx

    def terms(self, dout_terms):
        x = np.abs(self.saved().astype(np.float64))
        m = self.mlp.terms(dout_terms)
        dx1 = dout_terms + m["dx"]
        c = self.cbow.terms(dx1)
        return {"out": x + c["out"] + m["out"], "dx": dx1 + c["dx"], **prefixed(m, "mlp")}

    def check_domain(self, x, rtol):
        return self.cbow.check_domain(x, rtol)
