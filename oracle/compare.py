"""How close two arrays are: the figures the tests and the compare report use.

The tolerance policy (DESIGN.md): float64 relative error at most 1e-10; float32 within torch's
allclose defaults. Relative error is max |ours - ref| over a scale: by default the reference's
largest magnitude; for a tensor whose true value is zero (logit_maxes's gradient, a bias before
BatchNorm) pass the scale of the terms it is summed from.

float32 passes with allclose's rtol and atol applied against that scale,
max |ours - ref| <= ATOL + RTOL * scale. Element by element the bound cannot hold: an element
that is a sum of terms of size `scale` cancelling to something small carries rounding of order
eps32 * scale whatever its own size, and two correct implementations summing in different orders
differ there (measured: the output layer's weight gradient of the exercise-4 network at
2e-7 * scale). The element-wise verdict is still reported, as `allclose`.
"""
from dataclasses import asdict, dataclass

import numpy as np

F64_RTOL = 1e-10
RTOL, ATOL = 1e-5, 1e-8  # torch.allclose defaults


@dataclass
class Agreement:
    exact: bool           # bitwise equal
    allclose: bool        # element-wise: |ours - ref| <= ATOL + RTOL * |ref| everywhere
    max_abs_diff: float
    max_rel_err: float    # max |ours - ref| / scale
    max_ulp: int          # largest distance in units in the last place of the dtype
    scale: float

    def passes(self, dtype):
        """The DESIGN.md tolerance for this dtype."""
        if np.dtype(dtype) == np.float64:
            return self.max_rel_err <= F64_RTOL
        return self.max_abs_diff <= ATOL + RTOL * self.scale

    def as_dict(self):
        return asdict(self)


def ulp_distance(a, b):
    """Elementwise count of representable floats between a and b (same float dtype)."""
    ints = {4: np.int32, 8: np.int64}[a.dtype.itemsize]
    ia, ib = (np.ascontiguousarray(v).view(ints).astype(np.int64) for v in (a, b))
    # map the sign-magnitude bit patterns onto a monotone integer line
    lowest = np.int64(np.iinfo(ints).min)
    oa, ob = (np.where(i < 0, lowest - i, i) for i in (ia, ib))
    return np.abs(oa - ob)


def agreement(ours, ref, scale=None):
    """Compare ours with the reference; both arrays of the same shape and dtype."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    if ours.shape != ref.shape or ours.dtype != ref.dtype:
        raise ValueError(f"shape/dtype differ: {ours.shape} {ours.dtype} vs {ref.shape} {ref.dtype}")
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    if scale is None:
        scale = float(np.abs(ref).max(initial=0.0))
    max_abs = float(diff.max(initial=0.0))
    rel = 0.0 if max_abs == 0 else (max_abs / scale if scale > 0 else float("inf"))
    return Agreement(
        exact=bool(np.array_equal(ours, ref)),
        allclose=bool(np.all(diff <= ATOL + RTOL * np.abs(ref.astype(np.float64)))),
        max_abs_diff=max_abs, max_rel_err=rel,
        max_ulp=int(ulp_distance(ours, ref).max(initial=0)), scale=scale)


def resolvable(x, dtype, layers=1):
    """False when a channel of BatchNorm input x (N, ..., C) has a spread over the batch too small,
    relative to its values, for the dtype to resolve x - mean to the tolerance checked: x - mean
    carries a relative error of eps * magnitude / spread, and through `layers` BatchNorm layers
    these add up, so spread / magnitude >= 10 * layers * eps / rtol (one layer: 0.12 in float32,
    2.2e-5 in float64). Below it the output is rounding noise amplified by up to 1/sqrt(eps), in
    any implementation; test_properties covers the exactly-constant channel separately."""
    rtol = F64_RTOL if dtype == np.float64 else RTOL
    x2 = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
    return not np.any(x2.std(0) < 10 * layers * np.finfo(dtype).eps / rtol * np.abs(x2).max(0))


def within(ours, ref, scale, dtype):
    """The tolerance `numpy-ninja check` holds a learner's answer to (same shape and dtype as
    ref): Agreement.passes against `scale`, or in float32 also the lecture's own allclose.
    Returns (Agreement, passed)."""
    a = agreement(ours, ref, scale)
    return a, a.passes(dtype) or (np.dtype(dtype) != np.float64 and a.allclose)
