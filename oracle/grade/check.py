"""Grade a learner's own answers to the lecture's exercises 1-4 against PyTorch autograd.

    check_solution(path_or_module, exercise=None, dtype="float64", batches=4, seed=42, train=None)
        -> Report: one row per tensor (verdict, cause, upstream, hint, figures); printing it gives
           the table, Jupyter shows it as markdown

Each exercise function runs on the batches of oracle.grade.cases; oracle.grade.blame grades
every answer in every batch, and a row is the worst over the batches (its figures the largest).
"""
import numpy as np

from numpy_ninja.atomic import PARAM_NAMES, params_from_mlp
from numpy_ninja.config import DEFAULTS, RunConfig
from numpy_ninja.data import default_data_path, load_dataset
from numpy_ninja.models import mlp
from numpy_ninja.train import batch_rows
from oracle.grade.blame import BatchReference, grade_batch
from oracle.grade.cases import BLOCK_SIZE, N_EMBD, hard_cases
from oracle.grade.exercises import EXERCISES, tensors
from oracle.grade.learner import FUNCTIONS, SolutionError, arguments, as_array, call, solution
from oracle.grade.report import Report
from oracle.grade.verdicts import VERDICTS, Failed
from oracle.reference.lockstep import Stopped, lockstep


def answers_of(ex, module, batch, backend, filename, notes):
    """{name: ndarray | Failed} of one exercise function on one batch."""
    result, local, failure = call(getattr(module, ex.function), arguments(ex, batch, backend),
                                  filename, keep_locals=bool(ex.traced))
    if failure:
        return {name: Failed(failure) for name in ex.rows}
    if ex.returns is not None:
        return {ex.returns: as_array(result)}
    if not isinstance(result, dict):
        what = f"{ex.function} returned {type(result).__name__}, not a dict of gradients"
        return {name: Failed(what) for name in ex.rows}
    names, answers = tensors(ex.graph), {}
    for key, value in result.items():
        name = key[1:] if key not in names and str(key)[1:] in names and str(key).startswith("d") else key
        if name in names:
            answers[name] = as_array(value)
        else:
            notes.add(f"{ex.function} returned {key!r}, which is not one of its gradients (ignored)")
    for name in ex.traced:  # its own intermediate gradients, by the lecture's names
        value = as_array(local.get("d" + name))
        if isinstance(value, np.ndarray):
            answers.setdefault(name, value)
    return {k: v for k, v in answers.items() if v is not None}


def combine(grades, labels):
    """One row from a tensor's grades in every batch: the worst verdict, the largest figures; for
    a wrong tensor the cause and hint of the largest batch it is wrong in (its n names factors
    unambiguously)."""
    verdict = min((g.verdict for g in grades), key=VERDICTS.index)
    figures = {}
    for key in ("max_abs_diff", "max_ulp", "rel_err"):
        seen = [g.figures[key] for g in grades if g.figures and g.figures[key] is not None]
        figures[key] = max(seen) if seen else None
    row = dict(verdict=verdict, cause=None, upstream=None, hint=None, **figures)
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
    return row


def check_solution(path_or_module, exercise=None, dtype="float64", batches=4, seed=42, train=None,
                   data=None, progress=None):
    """Grade a solution (a file's path, or a module or namespace with exercise functions) on
    `batches` batches (oracle.grade.cases) in dtype; exercise: one number, or None for every exercise
    it defines; train: also train exercise 4's network that many steps with its gradients, in
    lockstep with autograd. Raises SolutionError when the solution cannot be used."""
    module, backend, filename = solution(path_or_module)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise SolutionError(f"dtype must be float32 or float64, not {dtype}")
    defined = [k for k in EXERCISES if callable(getattr(module, FUNCTIONS[k - 1], None))]
    numbers = defined if exercise is None else [exercise]
    for k in numbers:
        if k not in EXERCISES:
            raise SolutionError(f"there is no exercise {k}; choose 1, 2, 3 or 4")
        if k not in defined:
            raise SolutionError(f"the solution does not define {FUNCTIONS[k - 1]}")
    if train and 4 not in defined:
        raise SolutionError("training needs exercise4")
    cases = hard_cases(batches, seed, data)
    references = [BatchReference.of(c.params, c.Xb, c.Yb, dtype) for c in cases]
    labels = [c.label for c in cases]
    notes, rows = set(), []
    for k in numbers:
        ex = EXERCISES[k]
        per_batch = [grade_batch(ex.graph, ex.rows, answers_of(ex, module, b, backend, filename, notes),
                                 b, {k: b.truth[k] for k in ex.given}) for b in references]
        for name in ex.rows:
            rows.append(dict(exercise=k, name=name, **combine([g[name] for g in per_batch], labels)))
    report = Report(rows, dtype.name, labels, seed, str(path_or_module) if filename else "",
                    sorted(notes))
    if train:
        report.train = lockstep_training(module, backend, filename, train, seed, dtype, data, progress)
    return report


# ---------------------------------------------------------------- training

def lockstep_training(module, backend, filename, steps, seed, dtype, data=None, progress=None):
    """Train exercise 4's network (hidden 200) with the learner's exercise4 and, on the same
    batches from the same start, with autograd, on the schedule of numpy-ninja train's defaults
    (RunConfig: batch 32, lr 0.1 then 0.01 after half the steps); how far the two drift apart."""
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
        grads, _, failure = call(module.exercise4, arguments(ex, batch, backend), filename)
        if failure:
            raise Stopped(failure)
        grads = grads if isinstance(grads, dict) else {}
        out = {k: as_array(grads.get(k, grads.get("d" + k))) for k in PARAM_NAMES}
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
