"""Gradients by central finite differences, independent of any autograd."""
import numpy as np


def numerical_grad(f, x, h=1e-6):
    """d f() / d x by central differences, perturbing x in place (restored afterwards).

    f takes no arguments and returns a scalar that depends on x. Use float64.
    """
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):  # index x itself: a reshape of a non-C-ordered x would be a copy
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad


def rel_error(a, b):
    """max |a - b| relative to the larger of the two arrays' scales (0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max(initial=0.0) / scale)


STEP = 1e-6  # central-difference step, relative to each element's magnitude
# a direction beyond the measured rounding is measured again at larger steps, and fails only if
# each shows an error beyond its own rounding and of the same share of the change (within a factor
# AGREE); and at a smaller one, whose rounding is larger, only if it does not show a clearly
# different share
LARGER, SMALLER = (4, 16, 64), 1 / 64
AGREE = 3


def state_of(layer):
    """Copies of a layer's parameters and buffers by name (numpy_ninja's layer protocol)."""
    state = {name: p.data.copy() for name, p in layer.named_parameters()}
    state.update((name, np.array(b, copy=True)) for name, b in layer.named_buffers())
    return state


def restore(layer, state):
    """Copy the arrays of ``state_of`` back into the layer's own parameters and buffers."""
    for name, p in layer.named_parameters():
        p.data[...] = state[name]
    for name, b in layer.named_buffers():
        b[...] = state[name]


def layer_fd_disagreements(layer, x, dout, rng, full=False, measure=None, set_aside=None):
    """A float64 layer's input and parameter gradients against central differences of
    f = sum(layer(x) * dout), torch-free: along one random direction per tensor (v^T J u, as
    torch's gradcheck fast mode), and with full=True along every element as well.

    Each element steps by STEP times its magnitude (at least a thousandth of the tensor's largest,
    or of 1): a step sized to the whole tensor would be large next to an element near zero,
    where the function may bend on the scale of an eps (BatchNorm's). Along a perturbation p
    (the exact difference of the two perturbed arrays), N(t) = f(x + tu) - f(x - tu) = g.p + c t^3 + ...,
    so e(t) = (8 (N(t) - g.p(t)) - (N(2t) - g.p(2t))) / 6 cancels the truncation error to O(t^5)
    and leaves what a wrong gradient adds.

    A direction passes when |e| is within the a-priori bound on its rounding: taking a layer's
    output to carry at most 8 roundings of its terms and the sum log2(n) more, k = (8 + log2 n)
    eps, each f carries at most k F, F = sum |dout| * (the terms of out), four of them weighted
    8, 8, 1, 1 over 6: 3 k F; and the gradient's own rounding, k times its terms along p,
    weighted (8 + 2) / 6 since p(2t) = 2 p(t).

    A direction beyond it, with ``measure`` given, is judged again against the rounding measured
    at this input (docs/tolerances.md, "Measured rounding"). measure() is called once, at the
    first such direction, and returns noise["f"], the rounding error of one evaluation of f;
    noise["f per term"], times sum |out * dout| where f is evaluated (the final sum's rounding);
    and noise[name], shaped like the gradient, its own rounding error. The measured bound is
    3 noise["f"] + noise["f per term"] sum |out * dout| (weighted as above) + sum(noise[name]
    |p(t)|) (a gradient error d adds exactly d.p(t) to e). A direction whose first-order change
    is within it cannot be judged at this input. One whose e(t) exceeds it is measured again
    with steps 4, 16 and 64 times larger and 64 times smaller (LARGER, SMALLER): a wrong
    gradient is wrong by the same share of the change at any step, while truncation, and a feature
    of the function about as wide as the steps (a softmax of scores in the millions, tied), are
    not. It fails when every larger step shows an error beyond its own rounding bound and within a
    factor AGREE of the same share, and the smaller step (64 times more rounding, relative) shows
    the same share give or take its bound; otherwise the differences do not converge at this
    input. A tensor that does not fail but has such a direction has its reason
    appended to the list ``set_aside``.

    Returns [{"tensor", "rel_err", "tolerance"}] for the tensors that fail, both relative to the
    change along p(t): sum |g terms| |p(t)| (or, measured, at least the differences' own).
    """
    base = state_of(layer)
    out = layer(x)
    dx = layer.backward(dout)
    grads = {} if dx is None else {"dx": (x, dx)}
    grads.update((f"grad {name}", (p.data, p.grad.copy())) for name, p in layer.named_parameters())
    terms = layer.terms(np.abs(dout)) or {}
    k = (8 + np.log2(max(out.size, 2))) * np.finfo(np.float64).eps
    F = float(np.sum(np.abs(dout) * terms.get("out", np.abs(out))))
    noise = []  # measure(), once it was needed

    def f(target, delta):
        """f at target + delta, and the magnitude of its terms, sum |out * dout|."""
        restore(layer, base)
        if target is x:
            prod = layer(x + delta) * dout
        else:
            saved = target.copy()
            target += delta
            prod = layer(x) * dout
            target[...] = saved
        return float(np.sum(prod)), float(np.sum(np.abs(prod)))

    def measured(r, name):
        if not noise:
            noise.append(measure())
        n = noise[0]
        return 3 * n["f"] + n["f per term"] * r.magnitude + float(np.sum(n[name] * r.abs_p))

    bad = []
    for name, (target, g) in grads.items():
        if not target.size:
            continue
        g_terms = terms.get(name.removeprefix("grad "), np.abs(g))
        t = STEP * np.maximum(np.abs(target), 1e-3 * max(float(np.abs(target).max()), 1))
        directions = [rng.standard_normal(target.shape)]
        if full:
            directions += [np.eye(1, target.size, i).reshape(target.shape) for i in range(target.size)]
        worst, unjudged = None, set()
        for u in directions:
            r = _richardson(f, target, g, g_terms, u, t)
            bound = 3 * k * F + 10 / 6 * k * r.size
            size = r.size
            if abs(r.e) <= bound:
                continue
            if measure is not None:
                size = max(r.size, r.fd)  # a gradient wrongly 0 has no size of its own
                own = measured(r, name)
                if 0 < own >= size:
                    unjudged.add(f"{name}: central differences cannot tell it from rounding at "
                                 "such inputs")
                    continue
                if abs(r.e) <= own:
                    continue
                if not _confirmed(f, target, g, g_terms, u, t, lambda r: measured(r, name), r.e / size):
                    unjudged.add(f"{name}: central differences do not converge at such inputs")
                    continue
                bound = max(bound, own)
            rel = abs(r.e) / size if size else float("inf")
            if worst is None or rel > worst["rel_err"]:
                worst = dict(tensor=name, rel_err=rel, tolerance=bound / size if size else 0.0,
                             measured=measure is not None)
        if worst:
            bad.append(worst)
        elif set_aside is not None:
            set_aside += sorted(unjudged)
    restore(layer, base)
    return bad


class _Along:
    """What the differences along one direction and step give (see _richardson)."""

    def __init__(self, e, size, fd, magnitude, abs_p):
        self.e, self.size, self.fd, self.magnitude, self.abs_p = e, size, fd, magnitude, abs_p


def _richardson(f, target, g, g_terms, u, t):
    """Along u with steps t and 2t: e = (8 (N(t) - g.p(t)) - (N(2t) - g.p(2t))) / 6; the size
    sum |g terms| |p(t)|; the change as the differences see it, |8 N(t) - N(2t)| / 6; the
    magnitude of f's terms at the four points, weighted as e weighs them; and |p(t)|."""
    e, fd, magnitude = 0.0, 0.0, 0.0
    for weight, step in ((8, t), (-1, 2 * t)):
        p = (target + step * u) - (target - step * u)  # the perturbation as represented
        (fp, mp), (fm, mm) = f(target, step * u), f(target, -step * u)
        e += weight * (fp - fm - float(np.sum(g * p)))
        fd += weight * (fp - fm)
        magnitude += abs(weight) * (mp + mm) / 6
        if weight == 8:
            abs_p = np.abs(p)
            size = float(np.sum(g_terms * abs_p))
    return _Along(e / 6, size, abs(fd) / 6, magnitude, abs_p)


def _confirmed(f, target, g, g_terms, u, t, bound_of, rel):
    """Whether the relative error rel that e(t) shows is seen again: at each step LARGER times t,
    beyond that step's rounding bound and within a factor AGREE of rel; at SMALLER times t,
    within a factor AGREE of rel give or take its (larger) rounding bound."""
    lo, hi = sorted((rel / AGREE, rel * AGREE))
    for m in LARGER + (SMALLER,):
        r = _richardson(f, target, g, g_terms, u, m * t)
        size = max(r.size, r.fd)
        if not size:
            return False
        bound = bound_of(r)
        slack = bound / size if m < 1 else 0.0
        if not lo - slack <= r.e / size <= hi + slack or (m > 1 and abs(r.e) <= bound):
            return False
    return True
