"""The loss: mean cross-entropy of logits against integer targets, and its gradient.

Targets equal to ``ignore_index`` are not counted, as torch's ``ignore_index``: makemore pads each
word's targets with -1 and takes the mean over the positions that are counted, so each of the n
counted positions weighs 1/n (not 1/(B*T)); an ignored position adds nothing to the loss and gets
a zero gradient. A batch with nothing counted has a loss of nan (0/0, as torch's) and a zero
gradient.
"""
import numpy as np

from ._util import filled, row_starts, scalar
from .module import Module


class CrossEntropyLoss(Module):
    """Mean cross-entropy of logits (..., V) against integer targets (...): (N, V) and (N,) in
    the lecture, (B, T, V) and (B, T) for makemore's sequences. ``loss = criterion(logits,
    targets)`` returns the loss as a Python float; ``criterion.backward()`` (no argument: the
    backward pass starts here) returns dloss/dlogits, shaped and typed like the logits.
    ignore_index: the target of a position not counted (torch's default -100; makemore's -1)."""

    def __init__(self, ignore_index=-100):
        self.ignore_index = ignore_index

    def forward(self, logits, targets):
        if logits.shape[:-1] != targets.shape:
            raise ValueError(f"logits {logits.shape} and targets {targets.shape} do not match")
        V = logits.shape[-1]
        z, t = logits.reshape(-1, V), targets.reshape(-1)            # (N, V), (N,)
        N = len(t)
        counted = t != self.ignore_index                              # (N,)
        starts = row_starts(N, V)  # flat index of each row's first entry
        if counted.all():
            counted, n, at_target = None, N, starts + t               # every row counts
        else:
            n = int(np.count_nonzero(counted))
            t = t[counted]
            if t.size and (t.min() < 0 or t.max() >= V):
                raise ValueError(f"targets must be in [0, {V}) or {self.ignore_index}")
            at_target = starts[counted] + t                           # (n,) counted rows only
        # max-subtracted, no overflow (each row's maximum taken at its argmax: a faster reduction)
        z = z - z.reshape(-1).take(starts + z.argmax(1))[:, None]     # (N, V)
        picked = z.reshape(-1).take(at_target)                        # (n,) z at the target
        counts = np.exp(z, out=z)                                     # (N, V)
        sums = np.dot(counts, filled(V, 1, counts.dtype))             # (N,)
        # loss = mean over counted rows of log(sum(exp z)) - z[target]
        # (a pairwise sum: accurate over a whole split too)
        logs = np.log(sums if counted is None else sums[counted])
        loss = (logs - picked).sum() / n if n else float("nan")
        self.cache = (counts, sums, counted, at_target, n, logits.shape)
        return float(loss)

    def backward(self):
        """dlogits = (softmax(logits) - onehot(targets)) / n on counted rows, 0 on ignored ones
        (exercise 2)."""
        counts, sums, counted, at_target, n, shape = self.saved()
        dtype = sums.dtype
        if counted is None:
            dlogits = counts / (sums * scalar(n, dtype))[:, None]    # term 1: softmax / n
            dlogits.reshape(-1)[at_target] -= scalar(1 / n, dtype)    # term 2: - onehot / n
            return dlogits.reshape(shape)
        w = counted.astype(dtype)                                     # row weight: 1/n, or 0
        if n:
            w /= scalar(n, dtype)
        dlogits = counts * (w / sums)[:, None]                        # term 1: softmax / n
        dlogits.reshape(-1)[at_target] -= w[counted]                  # term 2: - onehot / n
        return dlogits.reshape(shape)

    def terms(self, logit_terms):
        """The terms of the last forward's results, given logit_terms >= 0 shaped like the
        logits, the magnitudes of the terms the logits are summed from (the last layer's
        ``terms(...)["out"]``; the logits' own magnitudes when they are exact): "out", the
        loss's (a float), and "dx", dlogits' (docs/tolerances.md).

        dlogits = (p - onehot) / n: the terms of p and of the one-hot. ``exp`` turns the absolute
        rounding of z = logits - max (eps times the logits' terms L, twice with the max) into a
        relative one of p, so p's terms are p (1 + 2L) per row. The loss is mean(max + log s -
        z[target]) with s = sum(exp(z)) >= 1: the max and the target's logit round by eps L
        each, log s by about eps whatever its size: 2L + log s + 1 per row."""
        counts, sums, counted, at_target, n, shape = self.saved()
        counts, sums = counts.astype(np.float64), sums.astype(np.float64)
        L = np.asarray(logit_terms, np.float64).reshape(len(sums), -1).max(1)  # (N,)
        w = np.full(len(sums), 1 / max(n, 1)) if counted is None else counted / max(n, 1)
        dx = counts / sums[:, None] * ((1 + 2 * L) * w)[:, None]
        dx.reshape(-1)[at_target] += 1 / max(n, 1)
        return {"out": float(np.sum((2 * L + np.log(sums) + 1) * w)), "dx": dx.reshape(shape)}
