"""The lecture's cmp(name, dt, t), better: the same line, plus the largest ULP distance and, when
not close, a hint. For a notebook: ``from oracle.grade import cmp``."""
import numpy as np

from numpy_ninja.atomic import PARAM_NAMES
from numpy_ninja.tolerance import ulp_distance
from oracle.grade.hints import Context, diagnose, same_broadcast
from oracle.grade.learner import as_array


def cmp(s, dt, t, n=None):
    """The lecture's cmp(s, dt, t): dt your gradient (torch tensor or NumPy array), t the tensor
    whose .grad autograd filled. Prints the lecture's line plus the largest ULP distance and,
    when not close, a hint; n (the batch size) names factors such as 1/n (default: t's first
    dimension, unless s names a parameter)."""
    ref = getattr(t, "grad", None)
    if ref is None:
        print(f"{s:15s} | {s}.grad is None: call {s}.retain_grad() before loss.backward()")
        return
    ref = ref.detach().cpu().numpy()
    ours = as_array(dt)
    if not isinstance(ours, np.ndarray):
        print(f"{s:15s} | dt is {type(dt).__name__}, not an array")
        return
    if n is None and s not in PARAM_NAMES and ref.ndim:
        n = ref.shape[0]
    ctx = Context(s, n, ref.dtype, float(np.abs(ref).max(initial=0)), {})
    if same_broadcast(ours.shape, ref.shape):
        ours = ours.reshape(ref.shape)  # as the lecture's cmp finds: it broadcasts the same way
    if ours.shape != ref.shape:
        print(f"{s:15s} | exact: False | approximate: False | maxdiff: -     | {diagnose(ours, ref, ctx)}")
        return
    cast = ours.astype(ref.dtype)
    ex = bool(np.array_equal(ours, ref))
    app = bool(np.allclose(cast, ref, rtol=1e-5, atol=1e-8))
    maxdiff = float(np.abs(cast.astype(np.float64) - ref).max(initial=0))
    ulp = int(ulp_distance(cast, ref).max(initial=0))
    line = f"{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s} | maxdiff: {maxdiff} | ulp: {ulp}"
    if not app:
        line += " | " + diagnose(ours, ref, ctx)
    print(line)
