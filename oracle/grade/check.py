"""Grade a learner's own answers to the lecture's exercises 1-4 against PyTorch autograd.

    check_solution(path_or_module, exercise=None, dtype="float64", batches=4, seed=42, train=None)
        -> Report: one row per tensor (verdict, cause, upstream, hint, figures); printing it gives
           the table, Jupyter shows it as markdown
    cmp(name, dt, t)      the lecture's cmp, plus the ULP distance and, when not close, a hint

Each exercise function runs on the batches of oracle.cases; oracle.blame grades every answer in
every batch, and a row is the worst over the batches (its figures the largest).
"""
from dataclasses import dataclass, field

import numpy as np

from numpy_ninja.atomic import GRAD_NAMES, PARAM_NAMES, params_from_mlp
from numpy_ninja.data import default_data_path, load_dataset
from numpy_ninja.config import DEFAULTS, RunConfig
from numpy_ninja.models import mlp
from numpy_ninja.tolerance import ulp_distance
from numpy_ninja.train import batch_rows
from oracle.atomic import STEPS, block
from oracle.blame import VERDICTS, Failed, Oracle, grade_batch
from oracle.cases import BLOCK_SIZE, N_EMBD, hard_cases
from oracle.hints import Context, diagnose
from oracle.learner import FUNCTIONS, SolutionError, as_array, call, hand_out, namespace, solution

CROSS_ENTROPY = block("logit_maxes", "loss", "loss = F.cross_entropy(logits, Yb)")
BATCHNORM = block("bnmeani", "hpreact", "bnmean = hprebn.mean(0, keepdim=True)\n"
                  "bnvar = hprebn.var(0, keepdim=True, unbiased=True)\n"
                  "bnraw = (hprebn - bnmean) * (bnvar + 1e-5)**-0.5\n"
                  "hpreact = bngain * bnraw + bnbias")


@dataclass(frozen=True)
class Exercise:
    """An exercise: the graph its answers backpropagate through, and the tensors it reports."""
    number: int
    graph: tuple
    rows: tuple

    @property
    def function(self):
        return f"exercise{self.number}"

    def arguments(self, oracle, backend):
        if self.number == 2:
            return hand_out(oracle.t["logits"], backend), hand_out(oracle.Yb, backend)
        if self.number == 3:
            t = oracle.t
            return tuple(hand_out(v, backend) for v in (oracle.truth["hpreact"], t["bngain"],
                                                        t["bnvar_inv"], t["bnraw"])) + (oracle.n,)
        return (namespace(oracle, backend),)

    def given(self, oracle):
        """True gradients handed to the learner (exercise 3's dhpreact)."""
        return {"hpreact": oracle.truth["hpreact"]} if self.number == 3 else {}


EXERCISES = {
    1: Exercise(1, STEPS, GRAD_NAMES),
    2: Exercise(2, (CROSS_ENTROPY,), ("logits",)),
    3: Exercise(3, (BATCHNORM,), ("hprebn",)),
    4: Exercise(4, STEPS[:3] + (BATCHNORM,) + STEPS[10:12] + (CROSS_ENTROPY,),
                tuple(k for k in GRAD_NAMES if k in PARAM_NAMES)),
}


def tensors(graph):
    """The tensors of a graph that have a gradient."""
    return {x for s in graph for x in s.inputs} | {s.out for s in graph if s.out != "loss"}


def answers_of(ex, module, oracle, backend, filename, notes):
    """{name: ndarray | Failed} of one exercise function on one batch."""
    result, local, failure = call(getattr(module, ex.function), ex.arguments(oracle, backend),
                                  filename, keep_locals=ex.number == 4)
    if failure:
        return {name: Failed(failure) for name in ex.rows}
    if ex.number in (2, 3):
        return {ex.rows[0]: as_array(result)}
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
    for name in names - set(ex.rows):  # exercise 4's own intermediate gradients, by the lecture's names
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


@dataclass
class Report:
    """The graded rows; printing it gives the table, Jupyter the markdown."""
    rows: list
    dtype: str
    batches: list
    seed: int
    source: str = ""
    notes: list = field(default_factory=list)
    train: dict = None

    @property
    def passed(self):
        return not any(r["verdict"] in ("wrong", "error") for r in self.rows)

    def as_dict(self):
        return dict(passed=self.passed, rows=self.rows, dtype=self.dtype, batches=self.batches,
                    seed=self.seed, file=self.source, notes=self.notes, train=self.train)

    def __str__(self):
        return render(self, "table")

    def _repr_markdown_(self):
        return render(self, "markdown")


COLUMNS = ("exercise", "name", "verdict", "cause", "upstream", "max_abs_diff", "max_ulp", "rel_err", "hint")


def fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2e}"
    return str(value)


def summary(report):
    """The last line: passed, or where to start."""
    counts = {v: sum(r["verdict"] == v for r in report.rows) for v in VERDICTS}
    tally = ", ".join(f"{counts[v]} {v}" for v in reversed(VERDICTS) if counts[v])
    if report.passed:
        return f"PASSED: nothing wrong ({tally})"
    first = next((r for r in report.rows if r["cause"] == "local" or r["verdict"] == "error"), None)
    where = f"; start with exercise {first['exercise']} {first['name']}" if first else ""
    if first and first["verdict"] == "error":
        where = f"; start with the error of exercise {first['exercise']}: {first['hint']}"
    inherited = next((r for r in report.rows if r["cause"] == "inherited" and r["upstream"]), None)
    if not first and inherited:  # the wrong step is not a graded row (exercise 4's intermediates)
        where = (f"; start with exercise {inherited['exercise']} d{inherited['upstream']}, "
                 f"where {inherited['name']}'s error comes from")
    return f"FAILED ({tally}){where}"


def train_lines(train):
    if train is None:
        return []
    if train.get("stopped"):
        return [f"training stopped: {train['stopped']}"]
    return [f"training {train['steps']} steps in lockstep with autograd ({train['dtype']}): largest "
            f"parameter relative difference {train['max_param_rel_diff']:.2e}, largest loss "
            f"difference {train['max_loss_diff']:.2e}; final loss yours {train['final_loss']:.4f}, "
            f"autograd {train['final_loss_autograd']:.4f}"]


def render(report, style):
    """The report as a terminal table or as markdown."""
    count = len(report.batches)
    head = [f"{report.source or 'solution'}: {report.dtype}, {count} batch{'es' if count != 1 else ''} "
            f"({'; '.join(report.batches)}), seed {report.seed}", ""]
    body = [[fmt(r[c]) for c in COLUMNS] for r in report.rows]
    if style == "markdown":
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in b) + " |" for b in body]
        tail = [f"- {line}" for line in train_lines(report.train) + [summary(report)]]
    else:
        widths = [max(len(x) for x in col) for col in zip(COLUMNS, *body)]
        lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [COLUMNS] + body]
        tail = train_lines(report.train) + [summary(report)]
    return "\n".join(head + lines + [""] + tail)


def check_solution(path_or_module, exercise=None, dtype="float64", batches=4, seed=42, train=None,
                   data=None, progress=None):
    """Grade a solution (a file's path, or a module or namespace with exercise functions) on
    `batches` batches (oracle.cases) in dtype; exercise: one number, or None for every exercise
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
    oracles = [Oracle.of(c.params, c.Xb, c.Yb, dtype) for c in cases]
    labels = [c.label for c in cases]
    notes, rows = set(), []
    for k in numbers:
        ex = EXERCISES[k]
        per_batch = [grade_batch(ex.graph, ex.rows, answers_of(ex, module, o, backend, filename, notes),
                                 o, ex.given(o)) for o in oracles]
        for name in ex.rows:
            rows.append(dict(exercise=k, name=name, **combine([g[name] for g in per_batch], labels)))
    report = Report(rows, dtype.name, labels, seed, str(path_or_module) if filename else "",
                    sorted(notes))
    if train:
        report.train = lockstep(module, backend, filename, train, seed, dtype, data, progress)
    return report


# ---------------------------------------------------------------- training

def schedule(steps, seed, n_train):
    """The training settings of the project's loop for the lecture's exercise 4 (RunConfig's
    defaults: batch 32, lr 0.1 then 0.01 after half the steps): (rows of a step's batch,
    learning rate of a step)."""
    config = RunConfig(steps=steps, seed=seed)
    return (lambda step: batch_rows(seed, n_train, config.batch_size, step),
            config.learning_rate)


def lockstep(module, backend, filename, steps, seed, dtype, data=None, progress=None):
    """Train exercise 4's network (hidden 200) with the learner's exercise4 and, on the same
    batches from the same start, with autograd; how far the two drift apart."""
    dataset = load_dataset(data or default_data_path(), BLOCK_SIZE, seed)
    X, Y = dataset.splits["train"]
    model = mlp(len(dataset.vocab), BLOCK_SIZE, N_EMBD, DEFAULTS.n_hidden, seed, dtype)
    ours = {k: v.copy() for k, v in params_from_mlp(model).items()}
    ref = {k: v.copy() for k, v in ours.items()}
    rows_of, rate = schedule(steps, seed, len(Y))
    ex = EXERCISES[4]
    drift = loss_diff = 0.0
    for step in range(steps):
        rows = rows_of(step)
        o = Oracle.of(ours, X[rows], Y[rows], dtype, scales=False)
        grads, _, failure = call(module.exercise4, ex.arguments(o, backend), filename)
        grads = grads if isinstance(grads, dict) else {}
        if failure or not np.isfinite(o.loss):
            why = failure or f"the loss became {o.loss}"
            return dict(steps=step, dtype=dtype.name, stopped=f"step {step}: {why}")
        for k in PARAM_NAMES:
            g = as_array(grads.get(k, grads.get("d" + k)))
            if not isinstance(g, np.ndarray) or g.shape != ours[k].shape:
                why = f"exercise4's gradient of {k} is not an array of shape {ours[k].shape}"
                return dict(steps=step, dtype=dtype.name, stopped=f"step {step}: {why}")
            ours[k] -= np.asarray(rate(step) * g, dtype)
        r = Oracle.of(ref, X[rows], Y[rows], dtype, scales=False)
        for k in PARAM_NAMES:
            ref[k] -= np.asarray(rate(step) * r.truth[k], dtype)
        drift = max([drift] + [float(np.abs(ours[k] - ref[k]).max() / np.abs(ref[k]).max()) for k in PARAM_NAMES])
        loss_diff = max(loss_diff, abs(o.loss - r.loss))
        if progress:
            progress(step + 1, steps)
    return dict(steps=steps, dtype=dtype.name, max_param_rel_diff=drift, max_loss_diff=loss_diff,
                final_loss=o.loss, final_loss_autograd=r.loss)


# ---------------------------------------------------------------- the notebook's cmp

def cmp(s, dt, t, n=None):
    """The lecture's cmp(s, dt, t): dt your gradient (torch tensor or NumPy array), t the tensor
    whose .grad autograd filled. Prints the lecture's line plus the largest ULP distance and,
    when not close, a hint; n (the batch size) names factors such as 1/n (default: t's first
    dimension, unless s names a parameter)."""
    ref = getattr(t, "grad", None)
    if ref is None:
        print(f"{s:15s} | {s}.grad is None: call {s}.retain_grad() before loss.backward()")
        return
    ref = ref.detach().cpu().numpy()
    ours = as_array(dt)
    if not isinstance(ours, np.ndarray):
        print(f"{s:15s} | dt is {type(dt).__name__}, not an array")
        return
    if n is None and s not in PARAM_NAMES and ref.ndim:
        n = ref.shape[0]
    ctx = Context(s, n, ref.dtype, float(np.abs(ref).max(initial=0)), {})
    extra = ref.ndim - ours.ndim
    if extra > 0 and ref.shape[:extra] == (1,) * extra and ref.shape[extra:] == ours.shape:
        ours = ours.reshape(ref.shape)  # (H,) for (1, H): broadcasts the same way, as the lecture's cmp finds
    if ours.shape != ref.shape:
        print(f"{s:15s} | exact: False | approximate: False | maxdiff: -     | {diagnose(ours, ref, ctx)}")
        return
    cast = ours.astype(ref.dtype)
    ex = bool(np.array_equal(ours, ref))
    app = bool(np.allclose(cast, ref, rtol=1e-5, atol=1e-8))
    maxdiff = float(np.abs(cast.astype(np.float64) - ref).max(initial=0))
    ulp = int(ulp_distance(cast, ref).max(initial=0))
    line = f"{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s} | maxdiff: {maxdiff} | ulp: {ulp}"
    if not app:
        line += " | " + diagnose(ours, ref, ctx)
    print(line)
