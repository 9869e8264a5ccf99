"""The numpy-vs-PyTorch report behind `numpy-ninja compare`: tensor by tensor, and step by step.

Sections, for the lecture's models: the broken-up graph (all 26 gradients), the one-step backward
of exercises 2 and 3, every parameter gradient of a model against its torch twin, and lockstep
training of the two with SGD; for makemore.py's models the last two, with AdamW
(oracle.compare.makemore). Each row
holds the tolerance policy for its dtype (numpy_ninja.tolerance.check_tensor); a tensor whose true
gradient is zero is measured against the terms it is summed from (oracle.reference.scales).
"""
import numpy as np
import torch
import torch.nn.functional as F

import numpy_ninja as nn
from numpy_ninja import atomic
from numpy_ninja.config import LECTURE_MODELS, SIZES, RunConfig
from numpy_ninja.data import load_dataset
from numpy_ninja.models import build_model
from numpy_ninja.optim import SGD
from numpy_ninja.tolerance import check_tensor
from numpy_ninja.train import NonFiniteLoss, batch_rows, train_steps
from oracle.reference.graph import autograd_backprop
from oracle.reference.lockstep import Stopped, lockstep
from oracle.reference.scales import atomic_term_scales, term_scales
from oracle.reference.twin import build_twin, run_twin, torch_dtype

DTYPES = (np.float32, np.float64)
LOCKSTEP_F64_MAX = 1e-8  # float64 parameters of the two trainings stay this close (relative)
ZERO_ATOMIC = {"logit_maxes": "true gradient is zero", "b1": "true gradient is zero (bias before BatchNorm)"}


def row(section, name, ours, ref, terms=None, note=""):
    c = check_tensor(name, ours, ref, terms)
    return dict(section=section, name=name, dtype=c.dtype, shape=list(np.shape(ref)),
                passed=c.passed, note=note, **c.agreement.as_dict())


MAKEMORE_SIZES = ("n_layer", "n_head", "n_embd", "n_embd2")  # compare's options of makemore's sizes


def config_for(args, dtype=np.float32, model=None, block_size=None):
    """The RunConfig of the report's settings: the model's defaults, the given sizes (--hidden
    for the lecture's models, makemore's for theirs), `dtype`; a sequence model's block_size."""
    model = model or args.model
    sizes = (dict(n_hidden=args.hidden) if model in LECTURE_MODELS else
             {k: getattr(args, k) for k in MAKEMORE_SIZES if k in SIZES[model]})
    return RunConfig(model=model, seed=args.seed, batch_size=args.batch_size, steps=args.steps,
                     dtype=np.dtype(dtype).name, block_size=block_size, **sizes)


def graph_rows(args, dtype):
    """Sections 1 and 2: the lecture's MLP as the broken-up graph, on one batch of real data."""
    config = config_for(args, dtype, model="mlp")
    data = load_dataset(args.data, config.block_size, args.seed)
    X, Y = data.splits["train"]
    rows_ix = batch_rows(args.seed, len(Y), args.batch_size, 0)
    Xb, Yb = X[rows_ix], Y[rows_ix]
    mlp = build_model(config, len(data.vocab))
    params = atomic.params_from_mlp(mlp)
    _, ours = atomic.manual_backprop(params, Xb, Yb)
    _, ref = autograd_backprop(params, Xb, Yb)
    _, t = atomic.forward(params, Xb, Yb)
    terms = atomic_term_scales(t, Xb, Yb)
    out = [row("broken-up graph", k, ours[k], ref[k], terms[k] if k in ZERO_ATOMIC else None,
               ZERO_ATOMIC.get(k, "")) for k in atomic.GRAD_NAMES]
    out.append(row("one-step backward", "dlogits (exercise 2)",
                   atomic.cross_entropy_backward(t["logits"], Yb), ref["logits"]))
    out.append(row("one-step backward", "dhprebn (exercise 3)",
                   atomic.batchnorm_backward(ref["hpreact"], t["bngain"], t["bnraw"], t["bnvar_inv"]),
                   ref["hprebn"]))
    return out, dict(ours=ours["logits"], ref=ref["logits"])


def model_rows(args, data, dtype):
    """Section 3: every parameter gradient of the model against its twin, on one batch."""
    model = build_model(config_for(args, dtype), len(data.vocab))
    X, Y = data.splits["train"]
    rows_ix = batch_rows(args.seed, len(Y), args.batch_size, 0)
    ref = run_twin(model, X[rows_ix], targets=Y[rows_ix])
    criterion = nn.CrossEntropyLoss()
    logits = model(X[rows_ix])
    criterion(logits, Y[rows_ix])
    model.backward(criterion.backward())
    logit_terms = model.layers[-1].terms(np.zeros(logits.shape))["out"]
    scales = term_scales(model, criterion.terms(logit_terms)["dx"])
    zero = {f"{i}.bias" for i, (a, b) in enumerate(zip(model.layers, model.layers[1:]))
            if isinstance(a, nn.Linear) and isinstance(b, nn.BatchNorm1d) and a.bias is not None}
    return [row("model parameters", name, p.grad, ref["grads"][name],
                scales[name] if name in zero else None, "true gradient is zero (bias before BatchNorm)"
                if name in zero else "") for name, p in model.named_parameters()]


def sgd_side(model, config, data, perturb=None):
    """One side of a lockstep: step(step) trains `model` one step of the run's schedule with our
    gradients (then perturb(parameters) if given) and returns (the batch loss, its parameters)."""
    optimizer = SGD(model.parameters(), config.lr)
    X, Y = data.splits["train"]
    lossi = np.zeros(config.steps)  # float64: the loss as computed

    def step(k):
        try:
            train_steps(model, optimizer, X, Y, config, k, k + 1, lossi)
        except NonFiniteLoss as e:
            raise Stopped(str(e)) from None
        if perturb is not None:
            perturb(optimizer.data)
        return float(lossi[k]), {name: p.data for name, p in model.named_parameters()}
    return step


def twin_side(model, config, data):
    """The torch twin of `model` trained with autograd and the same SGD schedule, as a lockstep side."""
    twin = build_twin(model, torch_dtype(config.dtype))
    X, Y = (torch.from_numpy(a) for a in data.splits["train"])

    def step(k):
        rows_ix = batch_rows(config.seed, len(Y), config.batch_size, k)
        loss = F.cross_entropy(twin(X[rows_ix]), Y[rows_ix])
        twin.zero_grad(set_to_none=True)
        loss.backward()
        lr = config.learning_rate(k)
        with torch.no_grad():
            for p in twin.parameters():
                p -= lr * p.grad
        return loss.item(), {name: p.detach().numpy() for name, p in twin.named_parameters()}
    return step


def lockstep_curves(args, data, dtype, progress=lambda doing: None):
    """Section 4: ours and the twin trained side by side on identical batches. Per step: both
    losses and the largest relative difference between corresponding parameters."""
    config = config_for(args, dtype)
    model = build_model(config, len(data.vocab))
    twin = twin_side(model, config, data)  # built before ours trains: the same start
    curves = lockstep(args.steps, sgd_side(model, config, data), twin, lambda done: progress(
        f"lockstep training in {config.dtype}, step {done}/{args.steps}"))
    return dict(ours=curves["ours"], torch=curves["ref"], divergence=curves["divergence"])


def lockstep_drift(args, data, progress=lambda doing: None):
    """How far the float64 training of the lockstep section drifts from itself when every step of
    a copy of it is perturbed by one unit in the last place per parameter (random direction): the
    largest relative parameter difference over the steps, measured as the lockstep measures ours
    against torch. Two correct implementations differ by about a rounding per step, so when this
    exceeds LOCKSTEP_F64_MAX the lockstep cannot tell a wrong gradient from rounding. NumPy only."""
    config = config_for(args, np.float64)
    rng = np.random.default_rng(0)

    def nudge(flat):
        flat[:] = np.nextafter(flat, np.where(rng.random(flat.size) < 0.5, -np.inf, np.inf))

    sides = [sgd_side(build_model(config, len(data.vocab)), config, data, perturb)
             for perturb in (None, nudge)]
    with np.errstate(all="ignore"):
        curves = lockstep(args.steps, *sides, progress=lambda done: progress(
            f"checking that the lockstep can be judged, step {done}/{args.steps}"))
    return float("inf") if curves["stopped"] else max(curves["divergence"], default=0.0)


def build_report(args, data, progress=lambda doing: None):
    """All four sections, on `data` (load_dataset at the model's block size); returns the report
    dict that report.json holds, and the pictures' arrays. progress(what it is doing) is called
    as it goes."""
    rows, pictures, curves = [], {}, {}
    for dtype in DTYPES:
        progress(f"the broken-up graph in {np.dtype(dtype).name}")
        graph, pictures[np.dtype(dtype).name] = graph_rows(args, dtype)
        rows += graph
    for dtype in DTYPES:
        progress(f"the model's parameters in {np.dtype(dtype).name}")
        rows += model_rows(args, data, dtype)
    for dtype in DTYPES:
        curves[np.dtype(dtype).name] = lockstep_curves(args, data, dtype, progress)
    f64 = curves["float64"]
    lock = dict(steps=args.steps, curves=curves,
                max_param_rel_divergence={k: max(c["divergence"]) for k, c in curves.items()},
                max_loss_abs_diff={k: float(np.max(np.abs(np.subtract(c["ours"], c["torch"]))))
                                   for k, c in curves.items()},
                float64_limit=LOCKSTEP_F64_MAX)
    lock["passed"] = max(f64["divergence"]) <= LOCKSTEP_F64_MAX
    passed = all(r["passed"] for r in rows) and lock["passed"]
    return dict(passed=passed, model=args.model, seed=args.seed, batch_size=args.batch_size,
                torch=torch.__version__, rows=rows, lockstep=lock), pictures

