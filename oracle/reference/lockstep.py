"""Two trainings side by side, step by step on the same batches, and how far apart they drift:
ours against autograd's (compare), a learner's gradients against autograd's (check --train), or
a training against a copy of itself nudged by one rounding a step (what compare can judge)."""
import numpy as np


class Stopped(Exception):
    """One side cannot take its step (its message says why)."""


def relative_difference(a, b):
    """max |a - b| over max |b|: how far one parameter array is from its reference."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def lockstep(steps, ours, ref, progress=None):
    """Run ours(step) and ref(step) for steps 0..steps-1; each takes one training step and returns
    (its batch loss, {name: its parameters after the step}), the same names on both sides, or
    raises Stopped.

    Returns {"steps": the steps both took, "ours", "ref": their losses, "divergence": the largest
    relative_difference of a parameter after each step, "stopped": why it ended early, or None}.
    progress(steps done) is called after each step."""
    curves = dict(ours=[], ref=[], divergence=[], stopped=None)
    for step in range(steps):
        try:
            ours_loss, ours_params = ours(step)
            ref_loss, ref_params = ref(step)
        except Stopped as e:
            curves["stopped"] = f"step {step}: {e}"
            break
        curves["ours"].append(ours_loss)
        curves["ref"].append(ref_loss)
        curves["divergence"].append(max(relative_difference(p, ref_params[k])
                                        for k, p in ours_params.items()))
        if progress is not None:
            progress(step + 1)
    curves["steps"] = len(curves["divergence"])
    return curves
