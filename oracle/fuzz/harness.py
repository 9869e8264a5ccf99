"""oracle.check_layer: fuzz a layer's hand-written backward against autograd, and hand back the
smallest input that breaks it.

For each example hypothesis draws a dtype, a mode (train/eval), an input shape (batch size from
1, a sequence length for 3-D input), the layer's initialisation (a seed for ``make_layer``, the
parameters as made or perturbed by gaussian noise, and a scale for them), an input of a magnitude
from tiny to large, and the gradient at the output. In eval mode the buffers first see one
training batch. The layer's output, input gradient, parameter gradients and buffers are held against
its torch twin at the tolerance policy (docs/tolerances.md), or, without a twin, torch-free:
against the same layer in float64 and against central differences (numpy_ninja.gradcheck).
Hypothesis then shrinks a failure to the smallest example it can find.

A correct layer is not failed by rounding, whether or not it says what its results are summed from
(``terms``) or which inputs it cannot be checked on (``check_domain``): a result that breaks the
policy is judged again against the float64 reference, its tolerance widened by SAFETY times the
rounding measured at that example (docs/tolerances.md, "Measured rounding"): the reference re-run
at inputs nudged by rounding of the dtype's size, our layer's own rounding simulated in float64
(oracle.fuzz._rounding), and with a twin the twin's own float32 rounding. The measurement is lazy:
a result within the plain policy needs none. A result whose measured rounding reaches its own
size cannot be judged there and is set aside; the report counts the examples with one, and more
than half of them set aside fails the check.

The layer follows numpy_ninja's layer protocol (docs/layer-protocol.md). Torch is imported only
when a twin is given.
"""
import math
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from hypothesis.extra import numpy as hnp

from numpy_ninja.console import UserError
from numpy_ninja.gradcheck import layer_fd_disagreements, restore, state_of
from numpy_ninja.tolerance import check_tensor, rtol_for
from oracle._userfile import available_memory
from oracle.fuzz._rounding import F, eps_of, measured_at, nudged, run_rounded, spread

MAGNITUDES = (1.0, 1e-2, 1e2, 1e-4)   # input sizes; hypothesis shrinks towards the first
PARAM_SCALES = (1.0, 0.1, 10.0, 1e-3)  # the initialisation, scaled
FULL_FD_SIZE = 64  # torch-free: every element by finite differences up to this many per tensor
SHOWN = 256  # a counterexample shows the values of parameters and buffers up to this size
ARRAYS = 16  # arrays of the input's size alive in one example: x, its warm-up batch, out, dout,
#              dx, their twin or float64 copies, and the finite differences' perturbed inputs
PROTOCOL = ("forward", "backward", "named_parameters", "named_buffers", "train")
# Measured rounding (docs/tolerances.md): a result that breaks the policy may differ from the
# float64 reference by the policy's tolerance plus SAFETY times the rounding measured at its
# example, each measure the largest over up to PERTURBATIONS runs.
PERTURBATIONS = 4
SAFETY = 10
REASONS = 3  # set-aside reasons named in the report, the most frequent first


class LayerCheckError(UserError, ValueError):
    """The check cannot run (the layer breaks the protocol, the twin does not match, no input can
    be drawn): one line for the user."""


@dataclass
class Counterexample:
    """The smallest failing example: where the layer disagrees and by how much."""

    shape: list           # the input's shape
    dtype: str
    mode: str             # "train" or "eval"
    tensor: str           # "out", "dx", "grad <name>", a buffer's name, or "(raised)"
    rel_err: float        # the error relative to the tensor's term scale (inf: raised or wrong shape)
    tolerance: float      # the relative error the policy allows there
    message: str          # one line saying what went wrong
    example: dict = field(default_factory=dict)  # how it was drawn: seed, scales, x, dout, state


@dataclass
class LayerReport:
    passed: bool
    examples: int         # inputs run, shrinking included (rejected draws are not counted)
    counterexample: Counterexample = None  # None when passed, or when too many were set aside
    # examples with a result that could not be judged (rounding noise at that input), and why
    set_aside: dict = field(default_factory=lambda: dict(count=0, reason=None))

    def as_dict(self):
        return dict(passed=self.passed, examples=self.examples,
                    counterexample=asdict(self.counterexample) if self.counterexample else None,
                    set_aside=dict(self.set_aside))

    def __str__(self):
        n, why = self.set_aside["count"], self.set_aside["reason"]
        aside = f"  set aside  {n} examples" + (f": {why}" if why else "")
        if self.passed:
            return f"PASSED: {self.examples} examples\n{aside}"
        c = self.counterexample
        if c is None:
            return (f"FAILED: {n} of {self.examples} examples set aside, more than half: too few "
                    f"judged to pass the layer\n{aside}")
        lines = [f"FAILED after {self.examples} examples: {c.message}",
                 f"  shape      {tuple(c.shape)}", f"  dtype      {c.dtype}", f"  mode       {c.mode}",
                 f"  tensor     {c.tensor}", f"  rel_err    {c.rel_err:.3g}", f"  tolerance  {c.tolerance:.3g}"]
        lines += [f"  {k:<10} {v}" for k, v in c.example.items() if k != "state"]
        lines += [f"  {k:<10} {v}" for k, v in c.example.get("state", {}).items()]
        return "\n".join(lines + [aside])


class _Failed(AssertionError):
    def __init__(self, counterexample):
        super().__init__(counterexample.message)
        self.counterexample = counterexample


def check_layer(make_layer, features, *, twin=None, ndim=(2,), input="float",
                dtypes=("float64", "float32"), modes=("train", "eval"), max_examples=100, seed=0,
                shrink=True, raise_on_failure=False, progress=None):
    """Fuzz the layer ``make_layer(dtype, rng)`` builds, against ``twin(layer)`` (a torch module
    whose state_dict names and shapes match the layer's; its values are copied in) or, with no
    twin, torch-free.

    features: the size of the input's last axis (input="float"), or the number of indices
    (input="index": integer input in [0, features)). ndim: the input ranks to try: float
    (N, features) is 2, (N, L, features) 3; index (N,) is 1, (N, L) 2.
    shrink=False reports the first failing example as it was drawn, not the smallest (for a test
    that only asks whether the check fails).
    Returns a LayerReport, failed when more than half of the examples had a result set aside;
    raise_on_failure=True raises AssertionError with a failed one instead.
    Raises LayerCheckError when the check cannot run. progress(examples) is called after each.
    """
    if input not in ("float", "index"):
        raise LayerCheckError(f"input must be 'float' or 'index', got {input!r}")
    lowest = 1 if input == "index" else 2
    if not ndim or any(int(d) < lowest or int(d) > 4 for d in ndim):
        raise LayerCheckError(f"ndim for {input} input must be between {lowest} and 4, got {tuple(ndim)}")
    if int(features) < 1:
        raise LayerCheckError(f"features must be at least 1, got {features}")
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise LayerCheckError(f"dtype must be float32 or float64, got {d!r}")
    for m in modes:
        if m not in ("train", "eval"):
            raise LayerCheckError(f"mode must be train or eval, got {m!r}")
    largest = 8 * 6 ** (max(int(d) for d in ndim) - (2 if input == "float" else 1))
    largest *= int(features) if input == "float" else 1
    if largest * 8 * ARRAYS > available_memory():
        raise LayerCheckError(
            f"features {features}: an input of up to {largest:,} values, with the {ARRAYS} arrays of "
            f"its size an example holds, needs {largest * 8 * ARRAYS / 2**30:.1f} GiB; this machine "
            f"has {available_memory() / 2**30:.1f} GiB available")
    try:
        layer = make_layer(np.dtype(dtypes[0]), np.random.default_rng(0))
    except Exception as e:
        raise LayerCheckError(f"make_layer raised {type(e).__name__}: {e}") from None
    _follows_protocol(layer)
    if twin is not None:
        twin = _guarded(twin)
        _run_twin(twin, layer, state_of(layer))  # names and shapes, before any example
    compare = (_twin_comparison(twin, make_layer) if twin is not None
               else _torch_free_comparison(make_layer))
    count = [0]
    aside = Counter()  # reason -> examples set aside for it
    aside_count = [0]

    @settings(max_examples=max_examples, database=None, deadline=None, verbosity=Verbosity.quiet,
              phases=[p for p in Phase if p is not Phase.explain  # its report is not ours
                      and (shrink or p is not Phase.shrink)],
              report_multiple_bugs=False,  # the smallest failure, not a group of them
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @hypothesis_seed(seed)
    @given(st.data())
    def run(data):
        example = _draw(data, make_layer, int(features), tuple(int(d) for d in ndim), input,
                        tuple(dtypes), tuple(modes))
        count[0] += 1
        failure = compare(data, example)
        if failure is None and example.set_aside:
            aside_count[0] += 1
            aside.update(set(example.set_aside))
        if progress is not None:
            progress(count[0])
        if failure is not None:
            raise _Failed(failure)

    try:
        run()
        report = LayerReport(aside_count[0] <= count[0] / 2, count[0])
    except _Failed as e:
        report = LayerReport(False, count[0], e.counterexample)
    except (Unsatisfiable, FailedHealthCheck):
        raise LayerCheckError(
            f"no input the layer accepts could be drawn in {count[0] or 'any'} tries (its "
            "check_domain refused them all): try other --features, --ndim or modes") from None
    reasons = [f"{reason} ({n})" for reason, n in aside.most_common(REASONS)]
    reasons += [f"{len(aside) - REASONS} other reasons"] if len(aside) > REASONS else []
    report.set_aside = dict(count=aside_count[0], reason="; ".join(reasons) or None)
    if raise_on_failure and not report.passed:
        raise AssertionError(str(report))
    return report


@dataclass
class _Example:
    layer: object
    x: np.ndarray
    dtype: str
    mode: str
    drawn: dict  # what to show of it in a counterexample
    set_aside: list = field(default_factory=list)  # why results were not judged here

    def failure(self, tensor, message, rel_err=math.inf, tol=0.0):
        return Counterexample(list(self.x.shape), self.dtype, self.mode, tensor, rel_err, tol,
                              message, self.drawn)

    def keep_state(self):
        """The parameters and buffers the example starts from, in the counterexample (the values
        of arrays up to SHOWN elements, the shape of larger ones)."""
        self.drawn["state"] = {k: v.tolist() if v.size <= SHOWN else f"{v.dtype} array {v.shape}"
                               for k, v in state_of(self.layer).items()}


def _draw(data, make_layer, features, ndim, kind, dtypes, modes):
    """Build the layer and its input for one example; reject inputs outside its check_domain."""
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    mode = data.draw(st.sampled_from(modes), label="mode")
    rank = data.draw(st.sampled_from(ndim), label="ndim")
    lead = [data.draw(st.integers(1, 8), label="N")]
    lead += [data.draw(st.integers(1, 6), label="L") for _ in range(rank - (2 if kind == "float" else 1))]
    layer_seed = data.draw(st.integers(0, 2**32 - 1), label="layer seed")
    init = data.draw(st.sampled_from(("as made", "perturbed")), label="parameters")
    scale = data.draw(st.sampled_from(PARAM_SCALES), label="parameter scale")
    try:
        layer = make_layer(np.dtype(dtype), np.random.default_rng(layer_seed))
    except Exception as e:
        raise _Failed(Counterexample([], dtype, mode, "(make_layer)", math.inf, 0.0,
                                     f"make_layer raised {type(e).__name__}: {e}",
                                     dict(seed=layer_seed))) from None
    _follows_protocol(layer)
    noise = np.random.default_rng([layer_seed, 1])
    for _, p in layer.named_parameters():
        if init == "perturbed":  # gains of 1 and biases of 0 hide mistakes in their use
            p.data += noise.standard_normal(p.data.shape) * max(np.abs(p.data).max(initial=0), 1)
        p.data *= np.asarray(scale, p.data.dtype)
    drawn = dict(seed=layer_seed, parameters=f"{init}, times {scale}")
    if kind == "index":
        def inputs(shape):
            return data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, features - 1)))
    else:
        magnitude = data.draw(st.sampled_from(MAGNITUDES), label="input magnitude")
        drawn["magnitude"] = magnitude

        def inputs(shape):
            z = data.draw(hnp.arrays(dtype, shape, elements=st.floats(
                -1, 1, width=32, allow_subnormal=False)))
            return z * np.asarray(magnitude, dtype)
    x = inputs(tuple(lead) + ((features,) if kind == "float" else ()))
    drawn["x"] = x.tolist()
    example = _Example(layer, x, dtype, mode, drawn)
    warm = inputs((lead[0] + 2,) + x.shape[1:]) if mode == "eval" else None
    try:  # the layer's own code: whatever it raises here is a finding, not a crash of the check
        if warm is not None:  # running statistics from one training batch, as after some training
            layer.train()
            if _domain(layer, warm, dtype) is None:
                layer(warm)
                drawn["trained first on"] = warm.tolist()
        layer.train(mode == "train")
        reason = _domain(layer, x, dtype)
        if reason is None:
            example.keep_state()
    except Exception as e:
        where = "forward, on a training batch before eval," if warm is not None else "the layer"
        raise _Failed(example.failure("(raised)", f"{where} raised {type(e).__name__}: {e}")) from None
    if reason is not None:
        reject()
    return example


def _follows_protocol(layer):
    missing = [name for name in PROTOCOL if not callable(getattr(layer, name, None))]
    if missing:
        raise LayerCheckError(
            f"{type(layer).__name__} lacks {', '.join(m + '()' for m in missing)}: subclass "
            "numpy_ninja.Module (docs/layer-protocol.md)")


def _domain(layer, x, dtype):
    check = getattr(layer, "check_domain", None)
    return check(x, rtol_for(dtype)) if check is not None else None


def _run_ours(data, ex):
    """Our forward and backward: (out, dx, grads, buffers), or a Counterexample."""
    try:
        out = ex.layer(ex.x)
    except Exception as e:  # the layer's domain accepted x
        return ex.failure("(raised)", f"forward raised {type(e).__name__}: {e}")
    if not isinstance(out, np.ndarray) or out.dtype != np.dtype(ex.dtype):
        return ex.failure("out", f"forward returned {_what(out)}, expected a {ex.dtype} array")
    dout = data.draw(hnp.arrays(ex.dtype, out.shape, elements=st.floats(
        -1, 1, width=32, allow_subnormal=False)), label="dout")
    ex.drawn["dout"] = dout.tolist()
    try:
        dx = ex.layer.backward(dout)
    except Exception as e:
        return ex.failure("(raised)", f"backward raised {type(e).__name__}: {e}")
    float_input = np.issubdtype(ex.x.dtype, np.floating)
    if float_input and (not isinstance(dx, np.ndarray) or dx.shape != ex.x.shape
                        or dx.dtype != ex.x.dtype):
        return ex.failure("dx", f"backward returned {_what(dx)}, expected {ex.dtype} {ex.x.shape}")
    grads = {}
    for name, p in ex.layer.named_parameters():
        if p.grad.shape != p.data.shape or p.grad.dtype != p.data.dtype:
            return ex.failure(f"grad {name}", f"grad {name} is {_what(p.grad)}, expected "
                              f"{p.data.dtype} {p.data.shape}")
        grads[f"grad {name}"] = p.grad
    return out, dout, (dx if float_input else None), grads, dict(ex.layer.named_buffers())


def _what(value):
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape}"
    return type(value).__name__


def _judge(ex, results, terms, ref, measures):
    """The first of results, (tensor, ours) pairs, that fails, as a Counterexample, or None.
    Each is held to the policy against ref; one that breaks it is held again against the float64
    reference, its tolerance widened by SAFETY times the rounding measured at this example:
    measures() yields (ref64, noise, lost) with noise growing as more is measured, so that the
    measuring stops once every result passes or is set aside (a wider tolerance only accepts
    more). Tensors in lost (tensor -> why its rounding cannot be measured), and results whose
    widened tolerance reaches their scale, are set aside: ex.set_aside says why."""
    pending = []
    for tensor, ours in results:
        c = check_tensor(tensor, ours, ref[tensor], terms.get(tensor.removeprefix("grad ")))
        if c.agreement is None:  # another shape
            return ex.failure(tensor, c.message)
        if not c.passed:
            pending.append((tensor, ours, c))
    if not pending:
        return None
    for ref64, noise, lost in measures():
        still = []
        for tensor, ours, _ in pending:
            c = check_tensor(tensor, ours, ref64[tensor], terms.get(tensor.removeprefix("grad ")),
                             SAFETY * noise[tensor])
            if c.set_aside:
                ex.set_aside.append(c.set_aside)
            elif c.passed:  # a tolerance that is only a lower bound still accepts it
                continue
            elif tensor in lost:
                ex.set_aside.append(f"{tensor}: {lost[tensor]}")
            else:
                still.append((tensor, ours, c))
        pending = still
        if not pending:
            return None
    c = pending[0][2]
    return ex.failure(c.name, c.message, c.rel_err, c.rel_tolerance)


def _as64(results):
    return {k: np.asarray(v, np.float64) for k, v in results.items()}


def _added(noise, more, factor=1.0):
    return {k: v + factor * more[k] for k, v in noise.items()}


def _scale(terms, tensor, ref):
    t = terms.get(tensor.removeprefix("grad "))
    return float(np.max(t if t is not None else np.abs(ref[tensor]), initial=0.0))


def _beyond(far, factor, terms, ref, lost, why):
    """lost, with the tensors whose rounding, measured at a coarser eps than the dtype's (factor
    < 1), reached their scale there: its extrapolation to the dtype's eps is not first order."""
    if factor < 1:
        lost = dict(lost)
        for k in ref:
            if k not in lost and far[k].size and 0 < far[k].max() >= _scale(terms, k, ref):
                lost[k] = why
    return lost


class _Simulated:
    """Our layer, made anew in float64 from the example's seed and state (built when first
    needed), run with the rounding of a dtype simulated (oracle.fuzz._rounding.run_rounded)."""

    def __init__(self, make_layer, ex, state, dout):
        self.make_layer, self.ex, self.inputs = make_layer, ex, (state, ex.x, dout)
        self.layer = None

    def spreads(self, eps, rng):
        """Yields how far the results move from the plain float64 run, so far, after each of
        PERTURBATIONS runs with inputs nudged and rounding simulated at eps."""
        try:
            if self.layer is None:
                self.layer = self.make_layer(np.dtype("float64"),
                                             np.random.default_rng(self.ex.drawn["seed"]))
            self.layer.train(self.ex.mode == "train")
            base = run_rounded(self.layer, *self.inputs)
        except Exception:  # a layer that cannot run in float64: its rounding is not measured
            return
        yield from spread((lambda: run_rounded(self.layer, *self.inputs, eps, rng)
                           for _ in range(PERTURBATIONS)), base)

    def fd_noise(self):
        """The rounding of the float64 layer's results and of f, for the finite differences
        (numpy_ninja.gradcheck.layer_fd_disagreements' measure), SAFETY times measured."""
        at, factor = measured_at(np.float64)
        far = None
        for far in self.spreads(at, np.random.default_rng([self.ex.drawn["seed"], 3])):
            pass
        noise = {k: SAFETY * factor * v for k, v in (far or {}).items()}
        noise = {**{k: 0.0 for k in ("out", "dx", F)},
                 **{f"grad {n}": 0.0 for n, _ in self.ex.layer.named_parameters()}, **noise}
        noise["f"], noise["f per term"] = float(noise.pop(F)), SAFETY * eps_of(np.float64)
        return noise


def _results(ex, out, dx, grads, buffers):
    pairs = [("out", out)] + ([("dx", dx)] if dx is not None else [])
    return pairs + list(grads.items()) + list(buffers.items())


def _terms(ex, dout):
    terms = getattr(ex.layer, "terms", None)
    return (terms(np.abs(dout).astype(np.float64)) if terms is not None else None) or {}


def _twin_comparison(twin, make_layer):
    def compare(data, ex):
        state = state_of(ex.layer)  # the state the twin starts from: before our forward
        ours = _run_ours(data, ex)
        if isinstance(ours, Counterexample):
            return ours
        out, dout, dx, grads, buffers = ours
        ref = _run_twin(twin, ex.layer, state, ex.x, dout, ex.mode)
        terms = _terms(ex, dout)
        return _judge(ex, _results(ex, out, dx, grads, buffers), terms, ref,
                      lambda: _twin_rounding(twin, make_layer, ex, state, dout, ref, terms))
    return compare


def _twin_rounding(twin, make_layer, ex, state, dout, ref, terms):
    """Yields (the twin in float64, the rounding measured so far, lost) as measuring goes on:
    the twin's own rounding; then our layer's, simulated; then how far the twin's results move
    when its inputs are nudged (docs/tolerances.md, "Measured rounding")."""
    eps, eps32 = eps_of(ex.dtype), eps_of(np.float32)
    at, factor = measured_at(ex.dtype)
    rng = np.random.default_rng([ex.drawn["seed"], 2])

    def run(dtype, state, x, dout):
        return _as64(_run_twin(twin, ex.layer, state, x, dout, ex.mode, dtype=dtype))

    inputs = (state, ex.x, dout)
    if ex.dtype == "float64":
        ref64, twin32 = _as64(ref), run(np.float32, *inputs)
    else:
        ref64, twin32 = run(np.float64, *inputs), _as64(ref)
    # the twin's own rounding: its float32 computation against its float64 one, brought to the
    # dtype under test by the ratio of the eps (rounding error is first order in eps)
    own = {k: np.abs(twin32[k] - v) for k, v in ref64.items()}
    noise = {k: d * (eps / eps32) for k, d in own.items()}
    lost = _beyond(own, eps / eps32, terms, ref64, {},
                   "float32 keeps no digit of the twin's, so its float64 rounding cannot be measured")
    yield ref64, noise, lost
    coarse = (f"rounding simulated at 2^{np.log2(at):.0f} keeps no digit of it, so its float64 "
              "rounding cannot be measured")
    far = None
    for far in _Simulated(make_layer, ex, state, dout).spreads(at, rng):
        yield ref64, _added(noise, far, factor), _beyond(far, factor, terms, ref64, lost, coarse)
    if far is not None:
        noise, lost = _added(noise, far, factor), _beyond(far, factor, terms, ref64, lost, coarse)
    for far in spread((lambda: run(np.float64, *(nudged(v, at, rng) for v in inputs))
                       for _ in range(PERTURBATIONS)), ref64):
        yield ref64, _added(noise, far, factor), _beyond(far, factor, terms, ref64, lost, coarse)


def _guarded(twin):
    """twin, with its exceptions as LayerCheckError: a twin that cannot be built is no finding."""
    def build(layer):
        try:
            return twin(layer)
        except Exception as e:
            raise LayerCheckError(f"the twin factory raised {type(e).__name__}: {e}") from None
    return build


def _run_twin(twin, layer, state, x=None, dout=None, mode="train", dtype=None):
    """The twin's results on the layer's state, x and dout, keyed as ours are, computed in dtype
    (default dout's; x, dout and the state are cast to it). With x None, only its names and shapes
    are checked. Raises LayerCheckError when they do not match."""
    import torch
    from oracle.reference.twin import load_state, run_torch, torch_dtype

    module = twin(layer)
    if not isinstance(module, torch.nn.Module):
        raise LayerCheckError(f"the twin factory returned {type(module).__name__}, not a torch module")
    ours = [name for name, _ in layer.named_parameters()]
    extra = sorted(set(dict(module.named_parameters())) - set(ours))
    if extra:
        raise LayerCheckError(f"the twin has parameters the layer does not: {', '.join(extra)}")
    if x is not None:
        dtype = np.dtype(dtype or dout.dtype)
        module = module.to(torch_dtype(dtype))
    try:
        load_state(module, state)
    except ValueError as e:
        raise LayerCheckError(str(e)) from None
    if x is None:
        return None
    x = np.asarray(x, dtype) if np.asarray(x).dtype.kind == "f" else x
    ref = run_torch(module.train(mode == "train"), x, dout=np.asarray(dout, dtype))
    out = {"out": ref["out"], **({"dx": ref["dx"]} if ref["dx"] is not None else {})}
    out.update((f"grad {name}", ref["grads"][name]) for name in ours)
    out.update((name, ref["buffers"][name]) for name, _ in layer.named_buffers())
    return out


def _torch_free_comparison(make_layer):
    def compare(data, ex):
        state = state_of(ex.layer)
        ours = _run_ours(data, ex)
        if isinstance(ours, Counterexample):
            return ours
        out, dout, dx, grads, buffers = ours
        # the reference: the same layer in float64, from the same state (float32 values are exact
        # in float64), checked by central differences
        ref_layer = make_layer(np.dtype("float64"), np.random.default_rng(ex.drawn["seed"]))
        ref_layer.train(ex.mode == "train")
        restore(ref_layer, state)
        x64 = ex.x.astype(np.float64) if np.issubdtype(ex.x.dtype, np.floating) else ex.x
        dout64 = dout.astype(np.float64)
        simulated = _Simulated(make_layer, ex, state, dout)
        if ex.dtype != "float64":
            ref_state = state_of(ref_layer)
            ref = {"out": ref_layer(x64)}
            ref_dx = ref_layer.backward(dout64)
            if ref_dx is not None:
                ref["dx"] = ref_dx
            ref.update((f"grad {n}", p.grad) for n, p in ref_layer.named_parameters())
            ref.update(ref_layer.named_buffers())
            ref = _as64(ref)

            def measures():
                # the only float32 computation of the layer is the one under test: the float64
                # layer's own float32 rounding, simulated, is what it may differ by
                rng = np.random.default_rng([ex.drawn["seed"], 2])
                for far in simulated.spreads(eps_of(ex.dtype), rng):
                    yield ref, far, ()

            failure = _judge(ex, _results(ex, out, dx, grads, buffers), _terms(ex, dout), ref,
                             measures)
            if failure is not None:
                return failure
            restore(ref_layer, ref_state)
        rng = np.random.default_rng(ex.drawn["seed"])
        full = max([ex.x.size] + [p.data.size for _, p in ref_layer.named_parameters()]) <= FULL_FD_SIZE
        unjudged = []
        bad = layer_fd_disagreements(ref_layer, x64, dout64, rng, full=full,
                                     measure=simulated.fd_noise, set_aside=unjudged)
        if bad:
            b = bad[0]
            how = ("; confirmed with steps 4, 16 and 64 times larger and 64 times smaller"
                   if b["measured"] else "")
            return ex.failure(b["tensor"], f"{b['tensor']} of the layer in float64 differs from "
                              f"central differences by {b['rel_err']:.3g} (tolerance "
                              f"{b['tolerance']:.3g}{how})", b["rel_err"], b["tolerance"])
        ex.set_aside += unjudged
        return None
    return compare
