"""examples/logsoftmax.py with a classic mistake: the backward forgets the softmax-weighted row sum
of dout (the log-sum-exp's share), dx = dout instead of dout - softmax * sum(dout).

    numpy-ninja check-layer examples/broken/logsoftmax_missing_sum.py:make_layer --features 5 \\
        --twin examples/broken/logsoftmax_missing_sum.py:twin
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/: the correct layer
import logsoftmax  # noqa: E402

twin = logsoftmax.twin


class LogSoftmax(logsoftmax.LogSoftmax):
    def backward(self, dout):
        # out = z - lse
        dz = dout.copy()                                   # d out_i/d z_i = 1
        # MISTAKE: d out_i/d lse = -1 and d lse/d z_j = softmax_j are left out
        return dz


def make_layer(dtype, rng):
    return LogSoftmax()
