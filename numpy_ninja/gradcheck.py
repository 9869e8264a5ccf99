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


def layer_fd_disagreements(layer, x, dout, rng, full=False):
    """A float64 layer's input and parameter gradients against central differences of
    f = sum(layer(x) * dout), torch-free: along one random direction per tensor (v^T J u, as
    torch's gradcheck fast mode), and with full=True along every element as well.

    Each element steps by STEP times its magnitude (at least a thousandth of the tensor's largest,
    or of 1): a step sized to the whole tensor would be large next to an element near zero,
    where the function may bend on the scale of an eps (BatchNorm's). Along a perturbation p
    (the exact difference of the two perturbed arrays), N(t) = f(x + tu) - f(x - tu) = g.p + c t^3 + ...,
    so e = (8 (N(t) - g.p(t)) - (N(2t) - g.p(2t))) / 6 cancels the truncation error to O(t^5)
    and leaves what a wrong gradient adds. Its rounding, taking a layer's output to carry at most
    8 roundings of its terms and the sum log2(n) more, k = (8 + log2 n) eps: each f at most
    k F, F = sum |dout| * (the terms of out), four of them weighted 8, 8, 1, 1 over 6: 3 k F;
    and the gradient's own rounding, k times its terms along p, weighted (8 + 2) / 6 since
    p(2t) = 2 p(t). Returns [{"tensor", "rel_err", "tolerance"}] for the tensors beyond it, both
    relative to the first-order change along p(t): sum |g terms| |p(t)|.
    """
    base = state_of(layer)
    out = layer(x)
    dx = layer.backward(dout)
    grads = {} if dx is None else {"dx": (x, dx)}
    grads.update((f"grad {name}", (p.data, p.grad.copy())) for name, p in layer.named_parameters())
    terms = layer.terms(np.abs(dout)) or {}
    k = (8 + np.log2(max(out.size, 2))) * np.finfo(np.float64).eps
    F = float(np.sum(np.abs(dout) * terms.get("out", np.abs(out))))

    def f(target, delta):
        restore(layer, base)
        if target is x:
            return float(np.sum(layer(x + delta) * dout))
        saved = target.copy()
        target += delta
        value = float(np.sum(layer(x) * dout))
        target[...] = saved
        return value

    bad = []
    for name, (target, g) in grads.items():
        if not target.size:
            continue
        g_terms = terms.get(name.removeprefix("grad "), np.abs(g))
        t = STEP * np.maximum(np.abs(target), 1e-3 * max(float(np.abs(target).max()), 1))
        directions = [rng.standard_normal(target.shape)]
        if full:
            directions += [np.eye(1, target.size, i).reshape(target.shape) for i in range(target.size)]
        worst = None
        for u in directions:
            e, size = 0.0, 0.0
            for weight, step in ((8, t), (-1, 2 * t)):
                p = (target + step * u) - (target - step * u)  # the perturbation as represented
                e += weight * (f(target, step * u) - f(target, -step * u) - float(np.sum(g * p)))
                if weight == 8:
                    size = float(np.sum(g_terms * np.abs(p)))
            e /= 6
            bound = 3 * k * F + 10 / 6 * k * size
            if abs(e) > bound:
                rel = abs(e) / size if size else float("inf")
                if worst is None or rel > worst["rel_err"]:
                    worst = dict(tensor=name, rel_err=rel, tolerance=bound / size if size else 0.0)
        if worst:
            bad.append(worst)
    restore(layer, base)
    return bad
