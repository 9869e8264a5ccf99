"""Training with our own gradients: optimizer steps, BatchNorm calibration, split losses."""
import math

import numpy as np
from threadpoolctl import threadpool_limits

from .data import IGNORE
from .nn import BatchNorm1d, CrossEntropyLoss, Sequential

DRAW_STEPS = 1000  # the batch indices of this many steps are drawn at once


def batch_indices(seed, n_train, batch_size, step):
    """Row indices of the batches of the DRAW_STEPS steps from step - step % DRAW_STEPS on, shape
    (DRAW_STEPS, batch_size).

    The stream is a pure function of (seed, step // DRAW_STEPS), so a resumed run draws exactly
    the batches an uninterrupted one would: no generator state needs saving.
    """
    rng = np.random.default_rng([seed, step // DRAW_STEPS])
    return rng.integers(0, n_train, size=(DRAW_STEPS, batch_size))


def batch_rows(seed, n_train, batch_size, step):
    """The row indices of step `step`'s batch, (batch_size,): one row of batch_indices."""
    return batch_indices(seed, n_train, batch_size, step)[step % DRAW_STEPS]


class NonFiniteLoss(ArithmeticError):
    def __init__(self, step, loss):
        self.step = step
        super().__init__(f"the loss became {loss} at step {step}")


def trimmed(X, Y):
    """A batch of makemore's sequences cut after its last counted position (the last column
    with a target that is not IGNORE): an exact saving. A position only sees itself and earlier
    ones, so the positions after the last counted one change no counted logit and their
    gradients are exactly zero: the loss and every gradient are the whole batch's (a position
    embedding's rows past the cut get the zero gradient any unused row gets). Views."""
    counted = np.flatnonzero((Y != IGNORE).any(0))
    T = int(counted[-1]) + 1 if counted.size else Y.shape[1]
    return X[:, :T], Y[:, :T]


def criterion_for(config):
    """The loss a RunConfig's model trains on: padding targets of a sequence are not counted."""
    return CrossEntropyLoss(ignore_index=IGNORE) if config.sequences else CrossEntropyLoss()


@np.errstate(all="ignore")  # overflow shows up as a non-finite loss or model, reported by the caller
def train_steps(model, optimizer, Xtr, Ytr, config, start, stop, lossi, should_stop=lambda: False):
    """Run optimizer steps start..stop-1 of the RunConfig's schedule in place; lossi[step]
    receives each batch loss.

    Returns the step reached (stop, or earlier when should_stop() turns true between steps).
    Raises NonFiniteLoss, leaving the parameters as they were before the failing step.
    """
    model.train()
    criterion = criterion_for(config)
    cut = trimmed if config.sequences else lambda X, Y: (X, Y)
    step = start
    while step < stop:
        # a run of steps within one draw of batches and at one rate: its batches gathered at once
        end = min(stop, (step // DRAW_STEPS + 1) * DRAW_STEPS, config.rate_changes_after(step) or stop)
        first = step % DRAW_STEPS
        rows = batch_indices(config.seed, len(Ytr), config.batch_size, step)[first:first + end - step]
        Xb, Yb = Xtr.take(rows, axis=0), Ytr.take(rows, axis=0)
        optimizer.lr = config.learning_rate(step)
        losses = []  # into lossi once per run of steps: one conversion, not one per step
        try:
            for k in range(end - step):
                if should_stop():
                    return step + k
                X, Y = cut(Xb[k], Yb[k])
                loss = criterion(model(X), Y)
                if not math.isfinite(loss):
                    raise NonFiniteLoss(step + k, loss)
                model.backward(criterion.backward())
                optimizer.step()
                losses.append(loss)
        finally:
            lossi[step:step + len(losses)] = losses
        step = end
    return stop


def blas_threads(n):
    """A context in which NumPy's BLAS runs on n threads. The training step's matrices are small:
    a second thread saves little, and when another process keeps the other core busy the first
    waits on a thread that does not run (the README's "Threads")."""
    return threadpool_limits(limits=n, user_api="blas")


def is_finite(model):
    """Whether every parameter and running statistic of the model is finite."""
    return all(np.isfinite(a).all() for a in model.state_dict().values())


def calibrate_batchnorm(model, X):
    """Set every BatchNorm's running mean and variance to the statistics of the whole of X
    (the lecture's calibration after training): one forward in training mode with momentum 1,
    through the layers up to the last BatchNorm (those after it do not change the statistics)."""
    bns = [m for m in model.layers if isinstance(m, BatchNorm1d)]
    saved = [bn.momentum for bn in bns]
    try:
        for bn in bns:
            bn.momentum = 1.0
        model.train()
        if bns:
            Sequential(model.layers[:model.layers.index(bns[-1]) + 1])(X)
    finally:
        for bn, m in zip(bns, saved):
            bn.momentum = m
        model.eval()


def split_loss(model, X, Y, chunk=None):
    """Mean cross-entropy (nats) of the model in eval mode over all of (X, Y), every counted
    target weighing the same; None if nothing is counted. chunk: targets per forward (default
    65,536 context windows, or 4,096 sequence positions: a sequence model's wider activations
    are faster in smaller pieces)."""
    chunk = chunk or (4096 if Y.ndim > 1 else 65536)
    criterion = CrossEntropyLoss(ignore_index=IGNORE)
    n = int(np.count_nonzero(Y != IGNORE))
    if n == 0:
        return None
    model.eval()
    rows = max(1, chunk // int(np.prod(Y.shape[1:], dtype=np.int64)))
    total = 0.0
    for i in range(0, len(Y), rows):
        Xc, Yc = X[i:i + rows], Y[i:i + rows]
        if Y.ndim > 1:
            Xc, Yc = trimmed(Xc, Yc)
        counted = int(np.count_nonzero(Yc != IGNORE))
        if counted:
            total += criterion(model(Xc), Yc) * counted
    return total / n
