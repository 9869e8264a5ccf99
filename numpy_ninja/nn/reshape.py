"""Layers that only reshape: their backward reshapes the gradient back."""
from .module import Module


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.saved())

    def terms(self, dout_terms):
        return {"dx": dout_terms.reshape(self.saved())}

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
        return dout.reshape(self.saved())

    def terms(self, dout_terms):
        return {"dx": dout_terms.reshape(self.saved())}

    def check_domain(self, x, rtol):
        if x.ndim != 3:
            return f"FlattenConsecutive needs (B, T, C) input, got shape {x.shape}"
        if x.shape[1] % self.n:
            return f"sequence length {x.shape[1]} is not divisible by {self.n}"
        return None
