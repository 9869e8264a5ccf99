"""The batches `numpy-ninja check` grades on: the lecture's exercise network (context 3, embedding
10, hidden 64) at its initialisation, on the shipped names, each batch built to hold a case
learners get wrong:

    n=2          the smallest batch BatchNorm allows
    tied max     n=32; two output columns with zero weights and equal biases give logits that tie
                 exactly (a zero column is exactly zero in any matrix product; identical nonzero
                 columns are not, in torch's), the bias set to the median of the other columns'
                 row maxima, so that the tie is the maximum of some rows and not of others;
                 contexts that look a character up more than once
    variance     n=32; BatchNorm columns of tiny variance (a hidden unit's weights times 1e-4,
                 its bias 0: a variance far below BatchNorm's eps) and of huge variance (times 1e3)
    plain        n=32, for any further batch

Every batch is resolvable in float32 (BatchNorm1d.check_domain: each BatchNorm column's spread is
large enough beside its values): its rows are drawn again until it is, so the same batches serve
both dtypes.
"""
from dataclasses import dataclass

import numpy as np

from numpy_ninja import atomic, models
from numpy_ninja.data import default_data_path, load_dataset

BLOCK_SIZE, N_EMBD, N_HIDDEN = 3, 10, 64


@dataclass
class Case:
    """One batch: the lecture's parameters (float64; cast for float32), contexts and targets."""
    label: str
    params: dict
    Xb: np.ndarray
    Yb: np.ndarray


def draw_rows(rng, X, Y, n, params, first=(), required=True):
    """n training rows (starting with `first`) whose BatchNorm input float32 resolves, drawn up to
    1,000 times; when none does, RuntimeError, or None if not `required`."""
    for _ in range(1000):
        ix = rng.choice(len(Y), n, replace=False)
        ix[:len(first)] = first
        _, t = atomic.forward(params, X[ix], Y[ix])
        if atomic.resolves(t["hprebn"], np.float32):
            return X[ix], Y[ix]
    if required:
        raise RuntimeError(f"no resolvable batch of {n} rows found")
    return None


def small(params, X, Y, rng):
    """The smallest batch whose BatchNorm input resolves: 2 rows for the lecture's exercise
    network; a wider hidden layer (exercise 4's) needs a few more rows for every column to."""
    for n in range(2, 8):
        rows = draw_rows(rng, X, Y, n, params, required=False)
        if rows is not None:
            return Case(f"n={n}", params, *rows)
    return Case("n=8", params, *draw_rows(rng, X, Y, 8, params))


def tied(params, X, Y, rng):
    """Zero weights and one shared bias for two output columns; contexts with repeated characters."""
    repeats = np.flatnonzero((X[:, 0] == X[:, 1]) | (X[:, 1] == X[:, 2]) | (X[:, 0] == X[:, 2]))
    first = [np.flatnonzero((X == 0).all(1))[0]] + list(rng.choice(repeats, 3, replace=False))
    Xb, Yb = draw_rows(rng, X, Y, 32, params, first)
    p = {k: v.copy() for k, v in params.items()}
    j = rng.choice(len(p["b2"]), 2, replace=False)
    p["W2"][:, j] = 0.0
    _, t = atomic.forward(p, Xb, Yb)
    others = np.delete(t["logits"], j, axis=1).max(1)
    p["b2"][j] = np.median(others)
    return Case("tied max, repeated lookups", p, Xb, Yb)


def variance(params, X, Y, rng):
    """One BatchNorm column of tiny variance and one of huge variance."""
    p = {k: v.copy() for k, v in params.items()}
    tiny, huge = rng.choice(p["W1"].shape[1], 2, replace=False)
    p["W1"][:, tiny] *= 1e-4
    p["b1"][tiny] = 0.0
    p["W1"][:, huge] *= 1e3
    Xb, Yb = draw_rows(rng, X, Y, 32, p)
    _, t = atomic.forward(p, Xb, Yb)
    return Case(f"BatchNorm variance {t['bnvar'].min():.0e} to {t['bnvar'].max():.0e}", p, Xb, Yb)


def plain(params, X, Y, rng):
    return Case("n=32", params, *draw_rows(rng, X, Y, 32, params))


BUILDERS = (small, tied, variance)


def hard_cases(count=4, seed=42, data_path=None, n_embd=N_EMBD, n_hidden=N_HIDDEN, dataset=None):
    """`count` batches: the three hard cases, then plain batches of 32; a function of the seed
    (and of the network's sizes: exercise 4's has the learner's own). dataset: the names at
    BLOCK_SIZE with this seed, if already loaded."""
    data = dataset or load_dataset(data_path or default_data_path(), BLOCK_SIZE, seed)
    X, Y = data.splits["train"]
    model = models.mlp(len(data.vocab), BLOCK_SIZE, n_embd, n_hidden, seed=seed, dtype=np.float64)
    params = atomic.params_from_mlp(model)
    rng = np.random.default_rng([seed, 4])
    builders = (BUILDERS + (plain,) * count)[:count]
    return [build(params, X, Y, rng) for build in builders]
