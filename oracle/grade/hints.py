"""What a wrong gradient's difference from the expected one looks like, in words.

diagnose(ours, expected, context) tries, in order, checks that each stand for a class of mistake
on any tensor: the shape (the axis to sum, the keepdims that makes it broadcast right, the
transpose), entries that are not finite, the dtype, a gradient that should be zero, the opposite
sign, a constant factor (named: n, 1/n, n/(n-1), (n-1)/n, 2, 1/2, ...), one branch missing or
scaled (the difference is what one consumer sends back), one term of a one-step formula scaled
(the part through one node of the broken-up graph), a factor that is one of the forward tensors,
and differences confined to rows looked up more than once, rows whose maximum is tied, or the
target entries. A candidate explanation holds when it is within the same tolerance as a verdict.
"""
from dataclasses import dataclass, field, replace
from math import prod

import numpy as np

from numpy_ninja.tolerance import tolerance, within


@dataclass
class Context:
    """What a diagnosis of one tensor's gradient in one batch may use."""
    name: str
    n: int                  # batch size
    dtype: object           # the dtype the answer should have
    scale: float            # the terms its step is measured against
    forward: dict           # forward tensors and parameters by name (NumPy), for named factors
    branches: dict = field(default_factory=dict)  # consumer -> the gradient it sends back
    terms: dict = field(default_factory=dict)     # "a -> b" -> the part through a node of a block
    gather: tuple = None    # (consumer, index name, indices): the tensor is looked up at indices
    tied_rows: np.ndarray = None   # (n,) bool: rows whose largest logit is tied
    targets: np.ndarray = None     # Yb: the entries [range(n), Yb] the loss picks
    backend: str = "numpy"         # the learner's: hints name its functions
    later: dict = field(default_factory=dict)  # the learner's gradients of tensors further from the loss
    truth: np.ndarray = None       # the true gradient (expected is recomputed from the learner's)


def named_factors(n):
    """Factors a gradient is often off by: (label, value, what it usually means); without the
    batch size n, only 2 and 1/2."""
    halves = [("2", 2.0, "twice the expected"), ("1/2", 0.5, "half the expected")]
    if n is None:
        return halves
    return [("n", n, "the 1/n of the mean is missing"),
            ("1/n", 1 / n, "an extra 1/n"),
            ("(n-1)/n", (n - 1) / n, "1/n where the variance has 1/(n-1): Bessel's correction"),
            ("n/(n-1)", n / (n - 1),
             "1/(n-1) where it should be 1/n: Bessel's correction belongs to the variance only"),
            ("n-1", n - 1, ""), ("1/(n-1)", 1 / (n - 1), "")] + halves


def close(ctx, ours, ref, scale=None):
    """ours matches ref within the verdict's tolerance, measured against scale (default ctx.scale)."""
    ours, ref = np.asarray(ours, ctx.dtype), np.asarray(ref, ctx.dtype)
    return within(ours, ref, ctx.scale if scale is None else scale, ctx.dtype)[1]


def allowed(ctx):
    """The largest difference an entry may have: the verdict's tolerance as an absolute value."""
    return tolerance(ctx.dtype, ctx.scale)


def rounding_hint(dtype):
    """The hint of an `approximate` row."""
    return "float32 rounding only" if np.dtype(dtype) == np.float32 else "rounding only"


# ---------------------------------------------------------------- shapes

def same_broadcast(got, want):
    """An answer of shape `got` broadcasts exactly as one of shape `want` would: (H,) for (1, H)
    (broadcasting prepends axes; the lecture's own dbnmeani is one). (N,) for (N, 1) does not."""
    extra = len(want) - len(got)
    return extra > 0 and tuple(want[:extra]) == (1,) * extra and tuple(want[extra:]) == tuple(got)


def broadcasts(small, big):
    """An array of shape `small` broadcasts to `big` without growing it."""
    return len(small) <= len(big) and all(s in (1, b) for s, b in zip(small[::-1], big[::-1]))


def axes_text(axes):
    return f"axis {axes[0]}" if len(axes) == 1 else f"axes {tuple(axes)}"


def shape_hint(name, got, want, matches=lambda fix: False):
    """Why an answer of shape `got` is not the gradient of `name` (shape `want`). matches(fix)
    tells whether fix(answer), reshaped to `want`, is the expected gradient."""
    got, want = tuple(got), tuple(want)
    head = f"shape {got}, but {name} is {want}"
    if len(got) == len(want) == 2 and got == want[::-1]:
        right = " (its transpose is right)" if matches(lambda a: a.T) else ""
        return f"transposed: {head}{right}"
    squeezed = [s for s in got if s != 1] == [s for s in want if s != 1]
    if prod(got) == prod(want) and squeezed:
        right = "; the values are right" if matches(lambda a: a) else ""
        if len(got) < len(want):
            text = f"{head}: keep the summed axis (keepdims=True)"
            if want[-1] == 1 and len(want) >= 2:
                text += (f"; as {got} it broadcasts along the last axis of an (N, k) array, "
                         "pairing each value with a column instead of a row")
            return text + right
        return f"{head}: sum without keepdims (or reshape to {want})" + right
    pad_got = (1,) * (len(want) - len(got)) + got
    pad_want = (1,) * (len(got) - len(want)) + want
    if len(got) <= len(want) and all(g in (1, w) for g, w in zip(pad_got, want)):
        axes = [i for i, (g, w) in enumerate(zip(pad_got, want)) if g == 1 and w > 1]
        right = "; the values are right" if matches(lambda a: np.broadcast_to(a, want)) else ""
        return (f"{head}: {name} is summed over {axes_text(axes)} in the forward, so every entry "
                f"along that axis gets the same gradient: broadcast it to {want} "
                f"(e.g. ones_like({name}) * ...)" + right)
    if len(want) <= len(got) and all(w in (1, g) for g, w in zip(got, pad_want)):
        axes = [i for i, (g, w) in enumerate(zip(got, pad_want)) if w == 1 and g > 1]
        keep = len(want) == len(got)
        summed = lambda a: a.sum(tuple(axes), keepdims=True).reshape(want)  # noqa: E731
        right = "; the sum is then right" if matches(summed) else ""
        return (f"{head}: {name} is broadcast along {axes_text(axes)} in the forward, so sum its "
                f"gradient over {axes_text(axes)}" + (" with keepdims=True" if keep else "") + right)
    if len(got) == len(want):
        ones_got = [i for i, s in enumerate(got) if s == 1]
        ones_want = [i for i, s in enumerate(want) if s == 1]
        if ones_got and ones_want and ones_got != ones_want:
            return f"{head}: summed over {axes_text(ones_got)} instead of {axes_text(ones_want)}"
    return head


# ---------------------------------------------------------------- values

def aliased(ours, expected, ctx):
    """Equal, bit for bit, to one of the learner's gradients computed from it (further from the
    loss): the two names hold one array, and the in-place update of the later one changed this
    one (the lecture's `dhprebn = dbndiff` before a `+=`, without a copy)."""
    copy = ".clone()" if ctx.backend == "torch" else ".copy()"
    for other, theirs in ctx.later.items():
        if theirs.shape == ours.shape and np.array_equal(theirs, ours) and np.any(ours):
            return (f"equals your d{other} exactly: the two are one array (d{other} = d{ctx.name} "
                    f"without {copy}), so a `+=` on d{other} changed d{ctx.name} too; "
                    f"write d{other} = d{ctx.name}{copy}")


def expected_zero(ours, expected, ctx):
    if np.abs(expected).max(initial=0) <= allowed(ctx):
        return f"the gradient of {ctx.name} is zero (up to rounding) here, and yours is not"


def all_zero(ours, expected, ctx):
    if not np.any(ours):
        return "all zeros"


def factor(ours, expected, ctx):
    if close(ctx, ours, -expected):
        return "opposite sign"
    for label, k, note in named_factors(ctx.n):
        for sign in (1, -1):
            if close(ctx, ours, sign * k * expected, ctx.scale * max(1.0, k)):
                what = f"off by a factor {label}" + (" and of opposite sign" if sign < 0 else "")
                return what + (f" ({note})" if note else "")
    k = float(np.vdot(ours, expected) / np.vdot(expected, expected))
    if close(ctx, ours, k * expected, ctx.scale * max(1.0, abs(k))):
        return f"off by a constant factor {k:.6g}"


def scaled_part(ours, expected, parts, ctx, kind):
    """The difference is (m - 1) times one part of the expected gradient (a branch, a term)."""
    multipliers = [(0.0, None, ""), (-1.0, None, "")] + [(k, label, note) for label, k, note in named_factors(ctx.n)]
    for where, part in parts.items():
        if not np.any(part):
            continue
        for m, label, note in multipliers:
            if close(ctx, ours, expected + (m - 1) * part, ctx.scale * (1 + abs(m - 1))):
                if m == 0:
                    return f"misses the {kind} through {where}: add the gradient that comes back from it"
                if m == -1:
                    return f"the {kind} through {where} has the opposite sign"
                return (f"the {kind} through {where} is off by a factor {label}"
                        + (f" ({note})" if note else ""))


def branches(ours, expected, ctx):
    if len(ctx.branches) > 1:
        return scaled_part(ours, expected, ctx.branches, ctx, "branch") or two_parts(
            ours, expected, ctx.branches, ctx, "branch")


def two_parts(ours, expected, parts, ctx, kind):
    """Two parts of the expected gradient missing, of opposite sign or off by a named factor at
    once: (m1 - 1) p1 + (m2 - 1) p2 is the difference."""
    multipliers = [(0.0, "missing"), (-1.0, "of opposite sign")] + [
        (k, f"off by a factor {label}") for label, k, _ in named_factors(ctx.n)]
    names = [w for w, p in parts.items() if np.any(p)]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for m1, what1 in multipliers:
                for m2, what2 in multipliers:
                    guess = expected + (m1 - 1) * parts[a] + (m2 - 1) * parts[b]
                    if close(ctx, ours, guess, ctx.scale * (1 + abs(m1 - 1) + abs(m2 - 1))):
                        return f"two {kind}es wrong at once: the one through {a} {what1}, the one through {b} {what2}"


def terms(ours, expected, ctx):
    return scaled_part(ours, expected, ctx.terms, ctx, "term")


def forward_factor(ours, expected, ctx):
    for fname, f in ctx.forward.items():
        f = np.asarray(f, np.float64)
        if f.ndim == 0 or np.ptp(f) == 0 or not broadcasts(f.shape, expected.shape):
            continue
        big = float(np.abs(f).max())
        if close(ctx, ours, expected * f, ctx.scale * max(1.0, big)):
            return f"an extra factor {fname} (or a 1/{fname} missing)"
        if np.all(f != 0):
            inv = float(np.abs(1 / f).max())
            if close(ctx, ours, expected / f, ctx.scale * max(1.0, inv)):
                return f"a factor {fname} is missing"


def transposed(ours, expected, ctx):
    if ours.ndim == 2 and ours.shape[0] == ours.shape[1] and close(ctx, ours.T, expected):
        return "transposed"


def confined(ours, expected, ctx):
    """Right everywhere except in a set of entries that has a meaning."""
    bad = np.abs(ours.astype(np.float64) - expected.astype(np.float64)) > allowed(ctx)
    rows = np.flatnonzero(bad.reshape(len(bad), -1).any(1)) if bad.ndim else []
    if not len(rows):
        return None
    if ctx.gather is not None:
        consumer, index, idx = ctx.gather
        repeated = np.flatnonzero(np.bincount(np.ravel(idx), minlength=len(ours)) > 1)
        if set(rows) <= set(repeated):
            accumulate = (f"d{ctx.name}.index_add_(0, {index}.view(-1), d{consumer}.view(-1, "
                          f"d{ctx.name}.shape[1])), or += one lookup at a time in a loop"
                          if ctx.backend == "torch" else
                          f"np.add.at(d{ctx.name}, {index}, d{consumer}), or += one lookup at a time")
            return (f"right except at rows looked up more than once in {index} (rows "
                    f"{list_text(rows)}): each lookup adds its gradient, so accumulate them "
                    f"({accumulate}); d{ctx.name}[{index}] += d{consumer} keeps only one of them")
    if ctx.tied_rows is not None and len(ours) == ctx.n and set(rows) <= set(np.flatnonzero(ctx.tied_rows)):
        return (f"right except in rows whose largest logit is tied (rows {list_text(rows)}): there "
                "the max passes its gradient to exactly one of the tied entries, as autograd does")
    if ctx.targets is not None and ours.ndim == 2 and len(ours) == ctx.n and ours.shape[1] > ctx.targets.max():
        target = np.zeros(ours.shape, bool)
        target[np.arange(ctx.n), ctx.targets] = True
        if not (bad & ~target).any():
            off = (ours.astype(np.float64) - expected)[target]
            text = "right except at the target entries [range(n), Yb]"
            if np.ptp(off) <= allowed(ctx):
                text += f", where it is off by {off[0]:+.6g}"
                if abs(abs(off[0]) * ctx.n - 1) < 1e-3:
                    text += f" ({'+' if off[0] > 0 else '-'}1/n)"
            return text
    return None


def list_text(items, most=6):
    items = [int(i) for i in items]
    return ", ".join(map(str, items[:most])) + (", ..." if len(items) > most else "")


def elsewhere(ours, expected, ctx):
    """No pattern: where and by how much."""
    diff = np.abs(ours.astype(np.float64) - expected)
    at = np.unravel_index(np.argmax(diff), diff.shape)
    count = int((diff > allowed(ctx)).sum())
    where = "[" + ", ".join(map(str, at)) + "]"
    return (f"differs at {count} of {diff.size} entries; the most at {where}: "
            f"{float(ours[at]):.6g} instead of {float(expected[at]):.6g}")


CHECKS = (expected_zero, all_zero, factor, aliased, branches, terms, forward_factor, transposed, confined)


def diagnose(ours, expected, ctx):
    """Why `ours` (a learner's gradient of ctx.name, any shape and dtype) is not `expected`."""
    expected = np.asarray(expected, np.float64)
    if ours.shape != expected.shape:
        def matches_to(target):
            def matches(fix):
                try:
                    return close(ctx, np.reshape(fix(ours), target.shape), target)
                except ValueError:
                    return False
            return matches
        # "the values are right" only when they are: compared with the true gradient, not with
        # the one recomputed from the learner's own (possibly wrong) upstream gradients
        right = matches_to(np.asarray(ctx.truth, np.float64) if ctx.truth is not None else expected)
        text = shape_hint(ctx.name, ours.shape, expected.shape, right)
        if ctx.truth is not None and not right(lambda a: a) and matches_to(expected)(lambda a: a):
            text += "; its values follow from your upstream gradients, which are wrong"
        if ours.ndim == expected.ndim and ours.shape[1:] == expected.shape[1:] and expected.shape[0] == ctx.n:
            text += (f"; this batch has n = {ctx.n} rows: a size written as a number? "
                     f"(n, or {ctx.name}.shape, follows the batch)")
        return text
    prefix = ""
    if ours.dtype != np.dtype(ctx.dtype):
        prefix = (f"dtype {ours.dtype}, but {ctx.name} is {np.dtype(ctx.dtype)} (zeros(shape) gives "
                  f"the default dtype; zeros_like({ctx.name}) keeps {ctx.name}'s)")
        coarser = replace(ctx, dtype=np.float32) if ours.dtype == np.float32 else ctx
        if np.all(np.isfinite(ours)) and close(coarser, ours, expected):
            return prefix + f"; the values are right{' to float32 precision' if coarser is not ctx else ''}"
        prefix += "; and "
    finite = np.isfinite(ours)
    if not finite.all():
        return prefix + f"{int((~finite).sum())} of {ours.size} entries are NaN or infinite"
    for check in CHECKS:
        text = check(ours, expected, ctx)
        if text:
            return prefix + text
    return prefix + elsewhere(ours, expected, ctx)
