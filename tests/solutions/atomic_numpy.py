"""The project's own answers (numpy_ninja.atomic) as a solution, NumPy backend."""
from numpy_ninja import atomic


def params(t):
    return {k: getattr(t, k) for k in atomic.PARAM_NAMES}


def exercise1(t):
    return atomic.manual_backprop(params(t), t.Xb, t.Yb)[1]


def exercise2(logits, Yb):
    return atomic.cross_entropy_backward(logits, Yb)


def exercise3(dhpreact, bngain, bnvar_inv, bnraw, n):
    return atomic.batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv)


def exercise4(t):
    grads = atomic.fast_backprop(params(t), t.Xb, t.Yb)[1]
    return {k: grads[k] for k in atomic.PARAM_NAMES}
