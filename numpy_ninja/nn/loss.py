"""The loss: mean cross-entropy of logits against integer targets, and its gradient."""
import numpy as np

from ._util import filled, row_starts, scalar
from .module import Module


class CrossEntropyLoss(Module):
    """Mean cross-entropy of logits (N, V) against integer targets (N,). ``loss =
    criterion(logits, targets)`` returns the loss as a Python float; ``criterion.backward()``
    (no argument: the backward pass starts here) returns dloss/dlogits."""

    def forward(self, logits, targets):
        n, V = logits.shape
        starts = row_starts(n, V)  # flat index of each row's first entry
        # max-subtracted, no overflow (each row's maximum taken at its argmax: a faster reduction)
        z = logits - logits.reshape(-1).take(starts + logits.argmax(1))[:, None]
        at_target = starts + targets
        picked = z.reshape(-1).take(at_target)
        counts = np.exp(z, out=z)
        sums = np.dot(counts, filled(V, 1, counts.dtype))  # (n,)
        # loss = mean(log(sum(exp z)) - z[target])
        loss = (np.log(sums) - picked).sum() / n  # pairwise sum: accurate over a whole split too
        self.cache = (counts, sums, at_target)
        return float(loss)

    def backward(self):
        """dlogits = (softmax(logits) - onehot(targets)) / N  (exercise 2)."""
        counts, sums, at_target = self.saved()
        n = len(sums)
        dlogits = counts / (sums * scalar(n, sums.dtype))[:, None]
        dlogits.reshape(-1)[at_target] -= scalar(1 / n, sums.dtype)
        return dlogits

    def terms(self, logit_terms):
        """The terms of the last forward's results, given logit_terms >= 0 (N, V), the magnitudes
        of the terms the logits are summed from (the last layer's ``terms(...)["out"]``; the
        logits' own magnitudes when they are exact): "out", the loss's (a float), and "dx",
        dlogits' (N, V) (docs/tolerances.md).

        dlogits = (p - onehot) / N: the terms of p and of the one-hot. ``exp`` turns the absolute
        rounding of z = logits - max (eps times the logits' terms L, twice with the max) into a
        relative one of p, so p's terms are p (1 + 2L) per row. The loss is mean(max + log s -
        z[target]) with s = sum(exp(z)) >= 1: the max and the target's logit round by eps L
        each, log s by about eps whatever its size: 2L + log s + 1 per row."""
        counts, sums, at_target = self.saved()
        counts, sums, n = counts.astype(np.float64), sums.astype(np.float64), len(sums)
        L = np.asarray(logit_terms, np.float64).max(1)  # (N,)
        dx = counts / sums[:, None] * (1 + 2 * L)[:, None]
        dx.reshape(-1)[at_target] += 1
        return {"out": float(np.mean(2 * L + np.log(sums) + 1)), "dx": dx / n}
