"""Rounding, simulated and measured, for check_layer (docs/tolerances.md, "Measured rounding").
Private to oracle.fuzz.

- ``nudged``: an input, parameter or buffer moved by rounding of a dtype's size: each float element
  times 1 + eps u, u uniform in [-1, 1].
- ``Rounding``: a float64 array whose every NumPy operation rounds at a chosen eps (its result, and
  the addends of a sum or a matrix product, times 1 + eps u): a float32 layer's rounding, simulated
  in a float64 run of its own code (Monte Carlo arithmetic, Parker 1997).
- ``run_rounded``: a float64 layer's results on a state and input, with both simulated.
- ``spread``: how far such runs move each result, element by element.
"""
import numpy as np

from numpy_ninja.gradcheck import restore

F = "sum(out * dout)"  # the finite differences' function, measured alongside the results
# float64's rounding is simulated at this size, and what it moves brought down to float64's eps
# linearly (rounding error is first order in eps): a nudge of float64's own eps, made in float64,
# lands on float64's grid and often moves nothing at all
COARSE = 2.0 ** -40


def eps_of(dtype):
    return float(np.finfo(dtype).eps)


def measured_at(dtype):
    """(the eps at which a dtype's rounding is simulated, the factor that brings what it moves
    to the dtype's own eps): float32 at its own eps; float64 at COARSE, times eps64 / COARSE."""
    eps = eps_of(dtype)
    return (COARSE, eps / COARSE) if eps < COARSE else (eps, 1.0)


def nudged(value, eps, rng):
    """value (an array, or a dict of them) as float64 with each float element times 1 + eps u, u
    uniform in [-1, 1]; integer arrays as they are."""
    if isinstance(value, dict):
        return {k: nudged(v, eps, rng) for k, v in value.items()}
    value = np.asarray(value)
    if value.dtype.kind != "f":
        return value
    return value.astype(np.float64) * (1 + eps * rng.uniform(-1, 1, value.shape))


def spread(samples, base):
    """Element by element, how far the results of each run of ``samples`` (an iterable of result
    dicts) move from ``base`` at most, NaN counting as infinitely far; yields the spread so far
    after each run, so that a caller can stop as soon as it has seen enough. A run that raises
    measures nothing (the layer ran on this input: what fails is the simulation)."""
    far = {k: np.zeros(np.shape(v)) for k, v in base.items()}
    for sample in samples:
        try:
            moved = sample()
        except Exception:
            continue
        for k, v in far.items():
            d = np.abs(np.asarray(moved[k], np.float64) - base[k])
            np.maximum(v, np.where(np.isnan(d), np.inf, d), out=v)
        yield far


class Rounding(np.ndarray):
    """A float64 array whose rounding operations (NumPy's ufuncs, np.dot, np.vdot, np.inner,
    np.einsum) have their result nudged by 1 + eps u, u uniform in [-1, 1], and the addends of a
    sum, a product reduction or a matrix product nudged too. Exact operations (max, min, abs,
    negation, sign, floor...) are not nudged. Operations done outside NumPy are not either.
    ``eps`` and ``rng`` are set by ``run_rounded`` for the length of one run."""

    eps, rng = 0.0, None
    EXACT = {np.maximum, np.minimum, np.fmax, np.fmin, np.negative, np.positive, np.absolute,
             np.sign, np.copysign, np.floor, np.ceil, np.trunc, np.rint}
    SUMS = {np.dot, np.vdot, np.inner, np.einsum}

    @classmethod
    def nudge(cls, a, wrap=True):
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            return a
        a = a.view(np.ndarray) * (1 + cls.eps * cls.rng.uniform(-1, 1, a.shape))
        return a.view(Rounding) if wrap else a

    @classmethod
    def nudge_in_place(cls, out):
        for o in out:
            if isinstance(o, np.ndarray) and o.dtype.kind == "f":
                o *= 1 + cls.eps * cls.rng.uniform(-1, 1, o.shape)

    @staticmethod
    def plain(a):
        return a.view(np.ndarray) if isinstance(a, Rounding) else a

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        sums = ufunc is np.matmul or (method != "__call__" and ufunc in (np.add, np.multiply))
        args = [self.nudge(a, False) if sums else self.plain(a) for a in inputs]
        if method == "at":  # np.add.at(target, indices, values): the target is updated in place
            args[0] = self.plain(inputs[0])
        if out is not None:
            kwargs["out"] = tuple(self.plain(o) for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            if method != "at" and ufunc not in self.EXACT:
                self.nudge_in_place(kwargs["out"])
            return out[0] if len(out) == 1 else out
        if method == "at":
            return None
        if ufunc in self.EXACT:
            return np.asarray(result).view(Rounding) if isinstance(result, np.ndarray) else result
        if isinstance(result, tuple):
            return tuple(self.nudge(np.asarray(r)) for r in result)
        return self.nudge(np.asarray(result))

    def __array_function__(self, func, types, args, kwargs):
        if func in self.SUMS:
            args = [self.nudge(a, False) for a in args]
            out = kwargs.get("out")
            if out is not None:
                kwargs = dict(kwargs, out=self.plain(out))
            result = func(*args, **kwargs)
            if out is not None:
                self.nudge_in_place([kwargs["out"]])
                return out
            return self.nudge(np.asarray(result))
        result = super().__array_function__(func, types, args, kwargs)
        if isinstance(result, (list, tuple)):
            return type(result)(r.view(Rounding) if type(r) is np.ndarray else r for r in result)
        return result.view(Rounding) if type(result) is np.ndarray else result


def run_rounded(layer, state, x, dout, eps=0.0, rng=None):
    """The float64 layer's results on state, x and dout, float64 arrays keyed as check_layer keys
    them ("out", "dx", "grad <name>", buffer names) and F. With eps, every float input, parameter,
    buffer and dout is nudged by rounding of that size first, and every NumPy operation of the
    layer rounds at it (Rounding)."""
    params = list(layer.named_parameters())
    if eps:
        state, x, dout = (nudged(v, eps, rng) for v in (state, x, dout))
    restore(layer, state)
    x = np.asarray(x, np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
    dout = np.asarray(dout, np.float64)
    plain = [p.data for _, p in params]
    if eps:
        Rounding.eps, Rounding.rng = eps, rng
        for _, p in params:
            p.data = p.data.view(Rounding)
        x = x.view(Rounding) if x.dtype.kind == "f" else x
        dout = dout.view(Rounding)
    try:
        out = layer(x)
        dx = layer.backward(dout)
        results = {"out": np.array(out, np.float64),
                   F: float(np.sum(np.asarray(out, np.float64) * np.asarray(dout, np.float64)))}
    finally:
        for (_, p), data in zip(params, plain):
            p.data = data
    if dx is not None:
        results["dx"] = np.array(dx, np.float64)
    results.update((f"grad {name}", np.array(p.grad, np.float64)) for name, p in params)
    results.update((name, np.array(b, np.float64)) for name, b in layer.named_buffers())
    return results
