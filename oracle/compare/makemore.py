"""`numpy-ninja compare --model bigram|bengio|rnn|gru|bow|transformer`: makemore.py's models
against the oracle's torch copy of makemore's module tree (oracle.reference.makemore.from_numpy).

Two sections. Every parameter gradient on one batch of makemore's sequences (loss over the counted
targets only), each row named and shaped as makemore's state_dict has it (a Linear weight
(fan_out, fan_in)) and held to the policy against the reference's own largest magnitude, as the
lecture's model rows are: none of these gradients is zero by construction, and the models'
``terms`` bound the rounding of a whole deep stack far too loosely to judge by (docs/tolerances.md,
"makemore's models"). Then lockstep training: our model with numpy_ninja.optim.AdamW against the
torch model with torch.optim.AdamW at makemore's settings, on the same batches, cut after their
last counted position as training cuts them (exact: numpy_ninja.train.trimmed).
"""
import numpy as np
import torch

from numpy_ninja.config import SIZES
from numpy_ninja.models import build_model
from numpy_ninja.optim import AdamW
from numpy_ninja.train import NonFiniteLoss, batch_rows, criterion_for, train_steps, trimmed
from oracle.compare.report import DTYPES, LOCKSTEP_F64_MAX, config_for, row
from oracle.reference.lockstep import Stopped, lockstep, relative_difference
from oracle.reference.makemore import from_numpy


def makemore_layout(model, arrays):
    """{name: array} of ours (Linear weights (fan_in, fan_out)) in makemore's layout (views)."""
    linear = model.linear_weights()
    return {name: a.T if name in linear else a for name, a in arrays.items()}


def gradient_rows(args, data, dtype):
    """Every parameter gradient of the model against the torch model's, on the first training
    batch: (rows, {"ours", "ref"}: dlogits of the counted positions as (n, V) images)."""
    config = config_for(args, dtype, block_size=data.block_size)
    model = build_model(config, len(data.vocab))
    twin = from_numpy(model)                                            # the same values
    X, Y = data.splits["train"]
    rows_ix = batch_rows(args.seed, len(Y), args.batch_size, 0)
    Xb, Yb = X[rows_ix], Y[rows_ix]                                     # (B, block_size) each
    criterion = criterion_for(config)
    logits = model(Xb)
    criterion(logits, Yb)
    dlogits = criterion.backward()
    model.backward(dlogits)
    ref_logits, loss = twin(torch.from_numpy(Xb), torch.from_numpy(Yb))
    ref_logits.retain_grad()
    loss.backward()
    ref = {name: p.grad.numpy() for name, p in twin.named_parameters()}
    ours = makemore_layout(model, {name: p.grad for name, p in model.named_parameters()})
    rows = [row("model parameters", name, g, ref[name]) for name, g in ours.items()]
    counted = Yb != -1
    return rows, dict(ours=dlogits[counted], ref=ref_logits.grad.numpy()[counted])


def adamw_side(model, config, data, nudge=None):
    """Our model trained with our gradients and numpy_ninja.optim.AdamW as `numpy-ninja train`
    trains it, as a lockstep side; nudge(gradients, step), if given, changes the flat gradient
    in place before every AdamW step."""
    optimizer = AdamW(model.parameters(), lr=config.learning_rate(0), weight_decay=config.weight_decay)
    if nudge is not None:
        real_step = optimizer.step

        def step_nudged():
            nudge(optimizer.grad, optimizer.step_count)
            real_step()
        optimizer.step = step_nudged
    X, Y = data.splits["train"]
    lossi = np.zeros(config.steps)

    def step(k):
        try:
            train_steps(model, optimizer, X, Y, config, k, k + 1, lossi)
        except NonFiniteLoss as e:
            raise Stopped(str(e)) from None
        return float(lossi[k]), makemore_layout(model, {n: p.data for n, p in model.named_parameters()})
    return step


def torch_side(model, config, data):
    """The torch model holding `model`'s values trained with autograd and torch.optim.AdamW at
    the run's settings (makemore's: betas (0.9, 0.99), eps 1e-8), on the same trimmed batches."""
    twin = from_numpy(model)
    optimizer = torch.optim.AdamW(twin.parameters(), lr=config.learning_rate(0), betas=(0.9, 0.99),
                                  eps=1e-8, weight_decay=config.weight_decay)
    X, Y = data.splits["train"]

    def step(k):
        rows_ix = batch_rows(config.seed, len(Y), config.batch_size, k)
        Xb, Yb = (torch.from_numpy(a) for a in trimmed(X[rows_ix], Y[rows_ix]))
        _, loss = twin(Xb, Yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate(k)
        optimizer.step()
        return loss.item(), {name: p.detach().numpy() for name, p in twin.named_parameters()}
    return step


def rounding_nudge(seed=0):
    """nudge(gradients, step) for adamw_side: every gradient moved by one unit in the last place
    of its own magnitude, in a random direction (what a different summation order does to it)."""
    rng = np.random.default_rng(seed)

    def nudge(flat, step):
        flat[:] = np.nextafter(flat, np.where(rng.random(flat.size) < 0.5, -np.inf, np.inf))
    return nudge


def with_shadow(side, shadow, drifted):
    """The lockstep side `side` that also steps `shadow` and appends to `drifted` the largest
    relative difference of shadow's parameters from side's after each step."""
    def step(k):
        loss, params = side(k)
        _, shadowed = shadow(k)
        drifted.append(max(relative_difference(p, params[name]) for name, p in shadowed.items()))
        return loss, params
    return step


def lockstep_curves(args, data, dtype, progress=lambda doing: None, drift=False):
    """Ours and the torch model trained side by side: both losses and the largest relative
    parameter difference after each step. drift=True also trains a copy of ours whose gradients
    are nudged by a rounding each step (rounding_nudge) and adds "drift", its largest relative
    parameter difference from ours after each step: how far two correct trainings drift apart."""
    config = config_for(args, dtype, block_size=data.block_size)
    model = build_model(config, len(data.vocab))
    ref = torch_side(model, config, data)  # built before ours trains: the same start
    ours, drifted = adamw_side(model, config, data), []
    if drift:
        shadow = adamw_side(build_model(config, len(data.vocab)), config, data, rounding_nudge())
        ours = with_shadow(ours, shadow, drifted)
    with np.errstate(all="ignore"):
        curves = lockstep(args.steps, ours, ref, lambda done: progress(
            f"lockstep training in {config.dtype}, step {done}/{args.steps}"))
    out = dict(ours=curves["ours"], torch=curves["ref"], divergence=curves["divergence"])
    if drift:
        out["drift"] = drifted
    return out, curves["stopped"]


def build_makemore_report(args, data, progress=lambda doing: None):
    """Both sections for one of makemore.py's models on `data`, its sequences: the report dict
    as report.build_report's, its lockstep also holding "optimizer" and "float64_drift", the
    largest relative parameter difference of the float64 training from a copy of itself whose
    gradients are nudged by a rounding each step (inf when the float64 training stopped); and
    the pictures' arrays. progress(what it is doing) is called as it goes."""
    rows, pictures, curves, stopped = [], {}, {}, {}
    for dtype in DTYPES:
        progress(f"the model's parameters in {np.dtype(dtype).name}")
        grads, pictures[np.dtype(dtype).name] = gradient_rows(args, data, dtype)
        rows += grads
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        curves[name], stopped[name] = lockstep_curves(args, data, dtype, progress, drift=name == "float64")
    drift = curves["float64"].pop("drift")
    lock = dict(steps=args.steps, optimizer="adamw", curves=curves,
                max_param_rel_divergence={k: max(c["divergence"], default=0.0) for k, c in curves.items()},
                max_loss_abs_diff={k: float(np.max(np.abs(np.subtract(c["ours"], c["torch"])), initial=0))
                                   for k, c in curves.items()},
                float64_limit=LOCKSTEP_F64_MAX,
                float64_drift=float("inf") if stopped["float64"] else max(drift, default=0.0))
    lock["passed"] = lock["max_param_rel_divergence"]["float64"] <= LOCKSTEP_F64_MAX
    passed = all(r["passed"] for r in rows) and lock["passed"]
    config = config_for(args, block_size=data.block_size)
    sizes = {k: getattr(config, k) for k in SIZES[args.model]}
    return dict(passed=passed, model=args.model, seed=args.seed, batch_size=args.batch_size, **sizes,
                torch=torch.__version__, rows=rows, lockstep=lock), pictures
