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

The layer follows numpy_ninja's layer protocol (docs/layer-protocol.md). Torch is imported only
when a twin is given.
"""
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from hypothesis.extra import numpy as hnp

from numpy_ninja import Module
from numpy_ninja.console import UserError
from numpy_ninja.gradcheck import layer_fd_disagreements, restore, state_of
from numpy_ninja.tolerance import check_tensor, rtol_for
from oracle._userfile import available_memory

MAGNITUDES = (1.0, 1e-2, 1e2, 1e-4)   # input sizes; hypothesis shrinks towards the first
PARAM_SCALES = (1.0, 0.1, 10.0, 1e-3)  # the initialisation, scaled
FULL_FD_SIZE = 64  # torch-free: every element by finite differences up to this many per tensor
SHOWN = 256  # a counterexample shows the values of parameters and buffers up to this size
ARRAYS = 16  # arrays of the input's size alive in one example: x, its warm-up batch, out, dout,
#              dx, their twin or float64 copies, and the finite differences' perturbed inputs
PROTOCOL = ("forward", "backward", "named_parameters", "named_buffers", "train")


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
    counterexample: Counterexample = None

    def as_dict(self):
        return dict(passed=self.passed, examples=self.examples,
                    counterexample=asdict(self.counterexample) if self.counterexample else None)

    def __str__(self):
        if self.passed:
            return f"PASSED: {self.examples} examples"
        c = self.counterexample
        lines = [f"FAILED after {self.examples} examples: {c.message}",
                 f"  shape      {tuple(c.shape)}", f"  dtype      {c.dtype}", f"  mode       {c.mode}",
                 f"  tensor     {c.tensor}", f"  rel_err    {c.rel_err:.3g}", f"  tolerance  {c.tolerance:.3g}"]
        lines += [f"  {k:<10} {v}" for k, v in c.example.items() if k != "state"]
        lines += [f"  {k:<10} {v}" for k, v in c.example.get("state", {}).items()]
        return "\n".join(lines)


class _Failed(AssertionError):
    def __init__(self, counterexample):
        super().__init__(counterexample.message)
        self.counterexample = counterexample


def check_layer(make_layer, features, *, twin=None, ndim=(2,), input="float",
                dtypes=("float64", "float32"), modes=("train", "eval"), max_examples=100, seed=0,
                raise_on_failure=False, progress=None):
    """Fuzz the layer ``make_layer(dtype, rng)`` builds, against ``twin(layer)`` (a torch module
    whose state_dict names and shapes match the layer's; its values are copied in) or, with no
    twin, torch-free.

    features: the size of the input's last axis (input="float"), or the number of indices
    (input="index": integer input in [0, features)). ndim: the input ranks to try: float
    (N, features) is 2, (N, L, features) 3; index (N,) is 1, (N, L) 2.
    Returns a LayerReport; raise_on_failure=True raises AssertionError with it instead.
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
    compare = _twin_comparison(twin) if twin is not None else _torch_free_comparison(make_layer)
    count = [0]

    @settings(max_examples=max_examples, database=None, deadline=None, verbosity=Verbosity.quiet,
              phases=[p for p in Phase if p is not Phase.explain],  # its report is not ours
              report_multiple_bugs=False,  # the smallest failure, not a group of them
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @hypothesis_seed(seed)
    @given(st.data())
    def run(data):
        example = _draw(data, make_layer, int(features), tuple(int(d) for d in ndim), input,
                        tuple(dtypes), tuple(modes))
        count[0] += 1
        failure = compare(data, example)
        if progress is not None:
            progress(count[0])
        if failure is not None:
            raise _Failed(failure)

    try:
        run()
        report = LayerReport(True, count[0])
    except _Failed as e:
        report = LayerReport(False, count[0], e.counterexample)
    except (Unsatisfiable, FailedHealthCheck):
        raise LayerCheckError(
            f"no input the layer accepts could be drawn in {count[0] or 'any'} tries (its "
            "check_domain refused them all): try other --features, --ndim or modes") from None
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


def _first_disagreement(ex, pairs, terms):
    """The first of (tensor, ours, ref) that breaks the policy, measured against the layer's terms."""
    for tensor, ours, ref in pairs:
        c = check_tensor(tensor, ours, ref, terms.get(tensor.removeprefix("grad ")))
        if c.passed:
            continue
        if c.agreement is None:  # another shape
            return ex.failure(tensor, c.message)
        if not c.agreement.scale:
            return ex.failure(tensor, c.message + _unsaid(ex.layer))
        return ex.failure(tensor, c.message + _unsaid(ex.layer), c.agreement.max_rel_err,
                          c.rel_tolerance)
    return None


def _unsaid(layer):
    """A reminder, in a failure's message, of what a layer can say that the check would use."""
    missing = [m for m in ("terms", "check_domain")
               if getattr(type(layer), m, None) in (None, getattr(Module, m))]
    if not missing:
        return ""
    return (f"; the layer defines no {' or '.join(missing)}: if the input is one it cannot be checked "
            "on (a kink, a constant row to normalise) or the result cancels, see "
            "docs/layer-protocol.md")


def _results(ex, out, dx, grads, buffers):
    pairs = [("out", out)] + ([("dx", dx)] if dx is not None else [])
    return pairs + list(grads.items()) + list(buffers.items())


def _terms(ex, dout):
    terms = getattr(ex.layer, "terms", None)
    return (terms(np.abs(dout).astype(np.float64)) if terms is not None else None) or {}


def _twin_comparison(twin):
    def compare(data, ex):
        state = state_of(ex.layer)  # the state the twin starts from: before our forward
        ours = _run_ours(data, ex)
        if isinstance(ours, Counterexample):
            return ours
        out, dout, dx, grads, buffers = ours
        ref = _run_twin(twin, ex.layer, state, ex.x, dout, ex.mode)
        pairs = [(name, value, ref[name]) for name, value in _results(ex, out, dx, grads, buffers)]
        return _first_disagreement(ex, pairs, _terms(ex, dout))
    return compare


def _guarded(twin):
    """twin, with its exceptions as LayerCheckError: a twin that cannot be built is no finding."""
    def build(layer):
        try:
            return twin(layer)
        except Exception as e:
            raise LayerCheckError(f"the twin factory raised {type(e).__name__}: {e}") from None
    return build


def _run_twin(twin, layer, state, x=None, dout=None, mode="train"):
    """The twin's results on the layer's state, x and dout, keyed as ours are (with x None, only
    its names and shapes are checked). Raises LayerCheckError when they do not match."""
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
        module = module.to(torch_dtype(dout.dtype))
    try:
        load_state(module, state)
    except ValueError as e:
        raise LayerCheckError(str(e)) from None
    if x is None:
        return None
    ref = run_torch(module.train(mode == "train"), x, dout=dout)
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
        if ex.dtype != "float64":
            ref_state = state_of(ref_layer)
            ref = {"out": ref_layer(x64)}
            ref_dx = ref_layer.backward(dout64)
            if ref_dx is not None:
                ref["dx"] = ref_dx
            ref.update((f"grad {n}", p.grad) for n, p in ref_layer.named_parameters())
            ref.update(ref_layer.named_buffers())
            pairs = [(name, value, ref[name]) for name, value in _results(ex, out, dx, grads, buffers)]
            failure = _first_disagreement(ex, pairs, _terms(ex, dout))
            if failure is not None:
                return failure
            restore(ref_layer, ref_state)
        rng = np.random.default_rng(ex.drawn["seed"])
        full = max([ex.x.size] + [p.data.size for _, p in ref_layer.named_parameters()]) <= FULL_FD_SIZE
        bad = layer_fd_disagreements(ref_layer, x64, dout64, rng, full=full)
        if bad:
            b = bad[0]
            return ex.failure(b["tensor"], f"{b['tensor']} of the layer in float64 differs from "
                              f"central differences by {b['rel_err']:.3g} (tolerance "
                              f"{b['tolerance']:.3g}){_unsaid(ex.layer)}", b["rel_err"], b["tolerance"])
        return None
    return compare
