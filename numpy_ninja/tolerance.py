"""How close two arrays are, and how close they must be: the tolerance policy (docs/tolerances.md),
and ``check_tensor``, the one comparison every check makes (the suite, compare, check-layer).

float64: relative error at most 1e-10. float32: max |ours - ref| <= ATOL + RTOL * scale, torch's
allclose constants applied against the scale. The relative error is max |ours - ref| over a
scale: by default the reference's largest magnitude; for a tensor whose true value is zero or
cancels (logit_maxes's gradient, a bias before BatchNorm, BatchNorm's input gradient) pass the
magnitude of the terms it is summed from (``Module.terms``).

Element by element allclose cannot hold in float32: an element that is a sum of terms of size
`scale` cancelling to something small carries rounding of order eps32 * scale whatever its own
size, and two correct implementations summing in different orders differ there. The
element-wise verdict is still reported, as `allclose`.
"""
from dataclasses import asdict, dataclass

import numpy as np

F64_RTOL = 1e-10
RTOL, ATOL = 1e-5, 1e-8  # torch.allclose defaults


def rtol_for(dtype):
    """The relative tolerance the policy holds a dtype to."""
    return F64_RTOL if np.dtype(dtype) == np.float64 else RTOL


def tolerance(dtype, scale):
    """The largest |ours - ref| the policy accepts for a tensor of this dtype and term scale."""
    if np.dtype(dtype) == np.float64:
        return F64_RTOL * scale
    return ATOL + RTOL * scale


@dataclass
class Agreement:
    exact: bool           # bitwise equal
    allclose: bool        # element-wise: |ours - ref| <= ATOL + RTOL * |ref| everywhere
    max_abs_diff: float
    max_rel_err: float    # max |ours - ref| / scale
    max_ulp: int          # largest distance in units in the last place of the dtype
    scale: float

    def passes(self, dtype):
        """The policy's tolerance for this dtype."""
        return self.max_abs_diff <= tolerance(dtype, self.scale)

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


@dataclass
class Comparison:
    """One result held against its reference by check_tensor."""
    name: str
    dtype: str            # the dtype whose policy applies: ours'
    agreement: Agreement  # None when the shapes differ
    passed: bool
    message: str = ""     # one line saying why it fails; "" when it passes

    @property
    def rel_tolerance(self):
        """The largest relative error the policy accepts here (against agreement.scale)."""
        a = self.agreement
        return tolerance(self.dtype, a.scale) / a.scale if a and a.scale else 0.0


def check_tensor(name, ours, ref, terms=None):
    """ours against the reference ref under the policy for ours' dtype (ref is cast to it).
    terms: the magnitudes of the terms the result is summed from (an array, or its largest
    value), which its error is measured against (``Module.terms``); None: ref's own magnitude."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    dtype = ours.dtype.name
    if ours.shape != ref.shape:
        return Comparison(name, dtype, None, False,
                          f"{name} has shape {ours.shape}, the reference {ref.shape}")
    scale = None if terms is None else float(np.max(terms, initial=0.0))
    c = Comparison(name, dtype, agreement(ours, ref.astype(ours.dtype, copy=False), scale), True)
    a = c.agreement
    if not a.passes(dtype):
        c.passed = False
        c.message = (f"{name} differs by {a.max_rel_err:.3g} of its scale (tolerance "
                     f"{c.rel_tolerance:.3g})" if a.scale else
                     f"{name} is {a.max_abs_diff:.3g} at most where the reference is exactly 0")
    return c


def disagreements(results):
    """The Comparisons that fail among results, an iterable of (name, ours, ref, terms)."""
    return [c for c in (check_tensor(*r) for r in results) if not c.passed]


def within(ours, ref, scale, dtype):
    """The tolerance `numpy-ninja check` holds a learner's answer to (same shape and dtype as
    ref): Agreement.passes against `scale`, or in float32 also the lecture's own allclose.
    Returns (Agreement, passed)."""
    a = agreement(ours, ref, scale)
    return a, a.passes(dtype) or (np.dtype(dtype) != np.float64 and a.allclose)
