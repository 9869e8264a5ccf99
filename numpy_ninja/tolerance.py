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

A check that has measured how much rounding a result can carry at its input (check-layer does, for
a layer that says nothing of its terms: docs/tolerances.md, "Measured rounding") passes it as
``noise``, an element-wise absolute allowance added to the policy's tolerance. Where that
allowance reaches the result's scale, any answer of the result's size would pass: the result is
then set aside, not judged.
"""
import math
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
    passed: bool          # not shown wrong (a result set aside is not)
    message: str = ""     # one line saying why it fails; "" when it passes
    # at the element nearest to (or furthest beyond) its tolerance: |ours - ref| there, and the
    # noise allowance there (0 without one)
    abs_diff: float = 0.0
    noise: float = 0.0
    set_aside: str = ""   # why the result is not judged: its noise allowance reaches its scale

    @property
    def rel_err(self):
        """|ours - ref| relative to agreement.scale at that element (the largest without noise)."""
        a = self.agreement
        return self.abs_diff / a.scale if a and a.scale else (math.inf if self.abs_diff else 0.0)

    @property
    def rel_tolerance(self):
        """The largest relative error accepted at that element (against agreement.scale): the
        policy's, plus the noise allowance there."""
        a = self.agreement
        return (tolerance(self.dtype, a.scale) + self.noise) / a.scale if a and a.scale else 0.0


def check_tensor(name, ours, ref, terms=None, noise=None):
    """ours against the reference ref under the policy for ours' dtype (ref is cast to it).
    terms: the magnitudes of the terms the result is summed from (an array, or its largest
    value), which its error is measured against (``Module.terms``); None: ref's own magnitude.
    noise: an absolute allowance for rounding measured at this input (an array broadcasting to
    ours, or a number), added element by element to the policy's tolerance; where its largest
    value reaches the scale the result is set aside (``Comparison.set_aside``), not judged."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    dtype = ours.dtype.name
    if ours.shape != ref.shape:
        return Comparison(name, dtype, None, False,
                          f"{name} has shape {ours.shape}, the reference {ref.shape}")
    scale = None if terms is None else float(np.max(terms, initial=0.0))
    ref = ref.astype(ours.dtype, copy=False)
    c = Comparison(name, dtype, agreement(ours, ref, scale), True)
    a = c.agreement
    policy = tolerance(dtype, a.scale)
    if noise is None:
        c.abs_diff = a.max_abs_diff
        if not a.passes(dtype):
            c.passed = False
            c.message = (f"{name} differs by {a.max_rel_err:.3g} of its scale (tolerance "
                         f"{c.rel_tolerance:.3g})" if a.scale else
                         f"{name} is {a.max_abs_diff:.3g} at most where the reference is exactly 0")
        return c
    noise = np.broadcast_to(np.where(np.isnan(noise), np.inf, noise), ours.shape)
    if noise.size and 0 < noise.max() >= a.scale:
        c.set_aside = f"{name} is rounding noise at such inputs"
        return c
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    over = np.where(np.isnan(diff), np.inf, diff - (policy + noise))
    if not over.size:
        return c
    at = np.unravel_index(np.argmax(over), over.shape)
    c.abs_diff, c.noise = float(diff[at]), float(noise[at])
    if over[at] > 0:
        c.passed = False
        c.message = (f"{name} differs by {c.rel_err:.3g} of its scale (tolerance "
                     f"{c.rel_tolerance:.3g}: the policy's {policy / a.scale:.3g} plus "
                     f"{c.noise / a.scale:.3g} for the rounding measured there)" if a.scale else
                     f"{name} is {c.abs_diff:.3g} where the reference is exactly 0")
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
