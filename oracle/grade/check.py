"""Grade a learner's own answers to the lecture's exercises 1-4 against PyTorch autograd.

    check_solution(path_or_object, exercise=None, dtype=None, batches=4, seed=42, train=None)
        -> Report: one row per tensor (verdict, cause, upstream, hint, figures); printing it gives
           the table, Jupyter shows it as markdown

The learner's work is read as it is (oracle.grade.work: a notebook, a .py of its cells, or the
template's functions); each exercise's code runs apart on the batches of oracle.grade.cases
(oracle.grade.attempts); oracle.grade.blame grades every answer in every batch, and a row is the
worst over the batches (its figures the largest).
"""
import ast

import numpy as np
import torch

from numpy_ninja.atomic import PARAM_NAMES, params_from_mlp
from numpy_ninja.config import DEFAULTS, RunConfig
from numpy_ninja.data import default_data_path, load_dataset
from numpy_ninja.models import mlp
from numpy_ninja.train import batch_rows
from oracle.grade.attempts import cell_attempts, function_attempts, loop_attempts, returned, wanted
from oracle.grade.blame import BatchReference, grade_batch
from oracle.grade.cases import BLOCK_SIZE, N_EMBD, hard_cases
from oracle.grade.exercises import EXERCISES
from oracle.grade.learner import arguments, call
from oracle.grade.locate import bound
from oracle.grade.report import Report
from oracle.grade.sandbox import TIMEOUT, Tick, run_apart
from oracle.grade.verdicts import VERDICTS, Grade
from oracle.grade.work import FUNCTIONS, SolutionError, Work
from oracle.reference.lockstep import Stopped, lockstep

def combine(grades, labels):
    """One row from a tensor's grades in every batch: the worst verdict, the largest figures; for
    a wrong tensor the cause and hint of the largest batch it is wrong in (its n names factors
    unambiguously). Batches where the code stopped before it count only when none reached it."""
    unreached = [label for g, label in zip(grades, labels) if not g.reached]
    if unreached and len(unreached) < len(grades):
        pairs = [(g, label) for g, label in zip(grades, labels) if g.reached]
        row = combine([g for g, _ in pairs], [label for _, label in pairs])
        row["hint"] = ((row["hint"] + " ") if row["hint"] else "") + f"[not reached in batch {'; '.join(unreached)}]"
        return row
    verdict = min((g.verdict for g in grades), key=VERDICTS.index)
    figures = {}
    for key in ("max_abs_diff", "max_ulp", "rel_err"):
        seen = [g.figures[key] for g in grades if g.figures and g.figures[key] is not None]
        figures[key] = max(seen) if seen else None
    row = dict(verdict=verdict, cause=None, upstream=None, hint=None, **figures)
    compared = [g for g in grades if g.figures]
    if compared and all(g.zero for g in compared):  # no ULP distance means anything
        row["max_ulp"] = None
    hit = [(g, label) for g, label in zip(grades, labels) if g.verdict == verdict]
    if verdict == "wrong":
        local = [(g, label) for g, label in hit if g.cause == "local"]
        chosen = local or hit
        g, _ = max(chosen, key=lambda pair: pair[0].n)
        row["cause"] = g.cause
        ups = dict.fromkeys(u for h, _ in chosen for u in h.upstream)
        row["upstream"] = ", ".join(ups) or None
        row["hint"] = g.hint
    elif hit[0][0].hint:
        row["hint"] = hit[0][0].hint
    if verdict in ("wrong", "error") and len(hit) < len(grades):
        row["hint"] = (row["hint"] or "") + f" [in batch {'; '.join(label for _, label in hit)}]"
    if compared and all(g.zero for g in compared):
        row["hint"] = (row["hint"] + "; " if row["hint"] else "") + "its true gradient is zero up to rounding: no ULP distance"
    return row


def check_solution(path_or_object, exercise=None, dtype=None, batches=4, seed=42, train=None,
                   data=None, progress=None, timeout=TIMEOUT):
    """Grade a learner's work: a notebook (.ipynb), a .py of its cells or in the template's form
    (a path), or an object with exercise functions, on `batches` batches (oracle.grade.cases) in
    dtype (default: float32 for cells, as the notebook runs, float64 for functions); exercise: one
    number, or None for every exercise found; train: also train exercise 4's network that many
    steps with its gradients, in lockstep with autograd; timeout: seconds each exercise's code may
    take. Raises a UserError (SolutionError, SourceError) when the work cannot be graded."""
    work = Work.read(path_or_object)
    dtype = np.dtype(dtype or work.dtype)
    if dtype not in (np.float32, np.float64):
        raise SolutionError(f"dtype must be float32 or float64, not {dtype}")
    # a notebook's exercises are all graded (one not done yet is missing); the template's are
    # those it defines
    found = sorted(EXERCISES) if work.kind == "cells" else work.exercises
    numbers = found if exercise is None else [exercise]
    for k in numbers:
        if k not in EXERCISES:
            raise SolutionError(f"there is no exercise {k}; choose 1, 2, 3 or 4")
        if k not in found:
            raise SolutionError(f"the solution does not define {FUNCTIONS[k - 1]}")
    if train and (4 not in found or work.plan and 4 not in work.plan.parts):
        raise SolutionError("training needs exercise 4")
    dataset = load_dataset(data or default_data_path(), BLOCK_SIZE, seed)
    cases = hard_cases(batches, seed, dataset=dataset)
    references = [BatchReference.of(c.params, c.Xb, c.Yb, dtype) for c in cases]
    labels = [c.label for c in cases]
    extra = kernel_extras(dataset, work.backend)
    report = Report([], dtype.name, labels, seed, work.source)
    if work.plan and work.plan.differs:
        cell, line = work.plan.differs[0]
        report.notes.append(f"your forward pass is not the lecture's ({cell.location(line)}: {cell.line(line)}): "
                            "check grades the lecture's network, so gradients that depend on the difference "
                            "can come out wrong")
    for k in numbers:
        ex = EXERCISES[k]
        if work.plan and k not in work.plan.parts:
            if k in work.plan.broken:
                cell, e = work.plan.broken[k]
                grade = grade_failed(f"SyntaxError: {e.msg} ({cell.location(e.lineno or 1)}: "
                                     f"{cell.line(e.lineno or 1)})")
            else:
                grade = Grade("missing", hint="no cell answers it yet")
            report.rows += [dict(exercise=k, name=name, **combine([grade], labels[:1]), where=None)
                            for name in ex.rows]
            continue
        if work.kind == "cells" and k == 4:
            rows, report.train = grade_loop(work, ex, dataset, extra, references[0], batches, seed,
                                            timeout, train if train else 0)
            report.rows += rows
            continue
        run = cell_attempts if work.kind == "cells" else function_attempts
        attempts = run(work, ex, references, timeout, extra)
        per_batch = [grade_batch(ex.graph, ex.rows, a.answers, b, {g: b.truth[g] for g in ex.given},
                                 work.backend) for a, b in zip(attempts, references)]
        for a in attempts:
            report.notes = sorted(set(report.notes) | set(a.notes))
        report.rows += rows_of(ex, per_batch, labels, attempts, work)
    if train and work.kind == "functions":
        report.train = lockstep_training(work, train, seed, dtype, data, progress, timeout)
    return report


def kernel_extras(dataset, backend):
    """What the notebook's setup cells leave besides a batch: the data, its vocabulary, sizes."""
    X, Y = dataset.splits["train"]
    as_backend = torch.from_numpy if backend == "torch" else np.asarray
    itos = dict(enumerate(dataset.vocab.itos))
    return dict(Xtr=as_backend(X), Ytr=as_backend(Y), words=list(dataset.words), itos=itos,
                stoi={s: i for i, s in itos.items()}, chars=list(dataset.vocab.chars),
                vocab_size=len(dataset.vocab), block_size=BLOCK_SIZE)


def grade_failed(message):
    return Grade("error", hint=message)


def rows_of(ex, per_batch, labels, attempts, work):
    """The report's rows of one exercise, with the learner's own names noted, and where each
    gradient was assigned ("where": {"location", "text"}, when the source is known)."""
    rows = []
    for name in ex.rows:
        row = dict(exercise=ex.number, name=name, **combine([g[name] for g in per_batch], labels))
        spelled = next((a.names[name] for a in attempts if name in a.names), None)
        if spelled:
            note = f"read from {spelled}" if spelled.startswith("what") else f"read from your {spelled}"
            row["hint"] = f"{row['hint']} ({note})" if row["hint"] else note
        row["where"] = assigned_at(work, ex, spelled if spelled and not spelled.startswith("what") else f"d{name}")
        rows.append(row)
    return rows


def assigned_at(work, ex, var):
    """{"location", "text"} of the learner's last statement assigning var for exercise ex, or None."""
    if work.kind == "cells":
        places = [(part.cell, stmt) for part in work.plan.parts.get(ex.number, ()) for stmt in part.statements]
    elif work.cells:
        body = work.cells[0].parse().body
        function = next((s for s in body if isinstance(s, ast.FunctionDef) and s.name == ex.function), None)
        places = [(work.cells[0], s) for s in (function.body if function else ())]
    else:
        return None
    last = None
    for cell, stmt in places:
        for node in ast.walk(stmt):
            if isinstance(node, (ast.Assign, ast.AugAssign)) and var in bound(node):
                last = (cell, node.lineno)
    if last is None:
        return None
    cell, line = last
    return dict(location=cell.location(line), text=cell.line(line))


# ---------------------------------------------------------------- exercise 4 of a notebook

def grade_loop(work, ex, dataset, extra, start, batches, seed, timeout, train):
    """Exercise 4's training loop stepped on the hard cases (rows), then `train` steps of the
    learner's own training from its own initialisation, each step's gradients held against
    autograd's at the same parameters and batch (the train summary)."""
    X, Y = dataset.splits["train"]
    train_batches = [(X[r], Y[r]) for r in (batch_rows(seed, len(Y), 32, k) for k in range(train))]

    def cases(n_embd, n_hidden):  # called in the child, with the learner's sizes
        return hard_cases(batches, seed, n_embd=n_embd, n_hidden=n_hidden, dataset=dataset)

    attempts, stopped = loop_attempts(work, ex, timeout * (1 + train / 100), extra, start, cases, train_batches)
    graded, trained = attempts[:batches], attempts[batches:]
    labels = [a.label for a in graded]
    if not graded:
        why = stopped or "exercise 4's loop took no step"
        return [dict(exercise=4, name=name, **combine([grade_failed(why)], ["-"]), where=None)
                for name in ex.rows], None
    per_batch = []
    for a in graded:
        dtype = next(iter(a.params.values())).dtype
        batch = BatchReference.of(a.params, a.Xb, a.Yb, dtype)
        per_batch.append(grade_batch(ex.graph, ex.rows, a.answers, batch, backend=work.backend))
    if stopped and len(graded) < batches:
        per_batch.append({name: grade_failed(stopped) for name in ex.rows})
        labels.append("(stopped)")
    rows = rows_of(ex, per_batch, labels, graded, work)
    return rows, (training_summary(trained, train, stopped) if train else None)


def training_summary(trained, steps, stopped):
    """The learner's own training in lockstep with autograd: at every step, how far its gradients
    are from autograd's at the same parameters and batch, and its losses."""
    worst, losses = 0.0, []
    for k, a in enumerate(trained):
        dtype = next(iter(a.params.values())).dtype
        batch = BatchReference.of(a.params, a.Xb, a.Yb, dtype, scales=False)
        losses.append(batch.loss)
        for name in PARAM_NAMES:
            g = a.answers.get(name)
            if not isinstance(g, np.ndarray) or g.shape != batch.truth[name].shape:
                why = a.error or f"its gradient of {name} is not an array of shape {batch.truth[name].shape}"
                return dict(steps=k, dtype=dtype.name, stopped=f"step {k}: {why}")
            ref = batch.truth[name]
            worst = max(worst, float(np.abs(g - ref).max() / max(np.abs(ref).max(), np.finfo(dtype).tiny)))
    if len(trained) < steps:
        return dict(steps=len(trained), dtype="float32", stopped=f"step {len(trained)}: {stopped}")
    return dict(steps=steps, dtype=dtype.name, max_grad_rel_diff=worst, first_loss=losses[0],
                final_loss=losses[-1])


# ---------------------------------------------------------------- training, the template's form

def lockstep_training(work, steps, seed, dtype, data=None, progress=None, timeout=TIMEOUT):
    """Train exercise 4's network (hidden 200) with the learner's exercise4 and, on the same
    batches from the same start, with autograd, on the schedule of numpy-ninja train's defaults
    (RunConfig: batch 32, lr 0.1 then 0.01 after half the steps); how far the two drift apart.
    The learner's side runs apart, as everything of theirs does."""
    def train_apart(send):
        send(lockstep_here(work, steps, seed, dtype, data, lambda done: send(Tick(done))))
    results, stopped = run_apart(train_apart, timeout * (1 + steps / 100), progress)
    if results:
        return results[0]
    return dict(steps=0, dtype=dtype.name, stopped=stopped or "the code stopped")


def lockstep_here(work, steps, seed, dtype, data, progress):
    from oracle._userfile import import_file
    obj = work.obj if hasattr(work.obj, "exercise4") else import_file(work.obj)
    dataset = load_dataset(data or default_data_path(), BLOCK_SIZE, seed)
    X, Y = dataset.splits["train"]
    config = RunConfig(steps=steps, seed=seed)
    model = mlp(len(dataset.vocab), BLOCK_SIZE, N_EMBD, DEFAULTS.n_hidden, seed, dtype)
    ex = EXERCISES[4]

    def side(gradients):
        params = {k: v.copy() for k, v in params_from_mlp(model).items()}

        def step(k):
            rows = batch_rows(seed, len(Y), config.batch_size, k)
            batch = BatchReference.of(params, X[rows], Y[rows], dtype, scales=False)
            if not np.isfinite(batch.loss):
                raise Stopped(f"the loss became {batch.loss}")
            for name, g in gradients(batch).items():
                params[name] -= np.asarray(config.learning_rate(k) * g, dtype)
            return batch.loss, params
        return step

    def learners(batch):
        result, _, error = call(obj.exercise4, arguments(ex, batch, work.backend))
        if error is not None:
            raise Stopped(f"{type(error).__name__}: {error}")
        grads, _ = returned(result, ex, wanted(ex))
        out = {k: grads.get(k) for k in PARAM_NAMES}
        for k, g in out.items():
            if not isinstance(g, np.ndarray) or g.shape != batch.t[k].shape:
                raise Stopped(f"exercise4's gradient of {k} is not an array of shape {batch.t[k].shape}")
        return out

    curves = lockstep(steps, side(learners), side(lambda batch: {k: batch.truth[k] for k in PARAM_NAMES}),
                      progress)
    if curves["stopped"]:
        return dict(steps=curves["steps"], dtype=dtype.name, stopped=curves["stopped"])
    return dict(steps=steps, dtype=dtype.name, max_param_rel_diff=max(curves["divergence"]),
                max_loss_diff=float(np.max(np.abs(np.subtract(curves["ours"], curves["ref"])))),
                final_loss=curves["ours"][-1], final_loss_autograd=curves["ref"][-1])
