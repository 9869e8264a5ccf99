"""A learner's exercise cells run as the notebook runs them: in a namespace holding what the
notebook's earlier cells left (the sizes, the generator g, Xb and Yb, the parameters and every
forward tensor with its .grad, F, torch, and a cmp that records instead of printing), for one of
check's batches at a time; then every gradient the cells leave behind is read by its lecture name.

    kernel(batch, backend, given)          the namespace
    run(parts, namespace)                  the exercise's statements, cell by cell; what they raised
    gradients_left(namespace, wanted)      {tensor: array}, and under which of the learner's names
    failure(exception, parts, namespace, truth)   what stopped it (a Stop): where, and why
    Stepper                                exercise 4: the learner's training loop, one step per batch
"""
import ast
import math
import random
import traceback
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from numpy_ninja.atomic import PARAM_NAMES
from oracle.grade.learner import as_array
from oracle.grade.locate import bound, gradients, lecture_name, read
from oracle.reference.graph import notebook_state

SEED = 2147483647  # the lecture's generator seed
# learners' own names for what the notebook holds, seen in their notebooks: there too
SPELLINGS = {"gamma": "bngain", "beta": "bnbias", "h_prebn": "hprebn", "h_preact": "hpreact",
             "bnmean": "bnmeani", "N": "n"}


class Quiet:
    """Stands in for matplotlib's pyplot: every attribute is a call that draws nothing."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


class Recorder:
    """The notebook's cmp(s, dt, t), recording instead of printing: (label, dt as an array, the
    lecture name of t when t is one of the kernel's tensors)."""

    def __init__(self, names):
        self.names, self.calls = names, []  # names: {id(tensor): lecture name}

    def __call__(self, s, dt, t=None, *args, **kwargs):
        self.calls.append((str(s), as_array(dt), self.names.get(id(t))))


def kernel(batch, backend, given=(), extra=None, spellings=None):
    """The namespace for one batch (an oracle.grade.blame.BatchReference): torch tensors as the
    notebook holds them after its forward cell (each with .grad), or NumPy arrays for a NumPy
    learner; `given`: tensors whose true gradients are there too, as d<name> and under the
    learner's own spellings {tensor: names} (what the learner's exercise 1 left for 2 and 3)."""
    if backend == "torch":
        state = notebook_state({k: batch.t[k] for k in PARAM_NAMES}, batch.Xb, batch.Yb)
        tensors = {k: v for k, v in state.items() if k != "n"}
        grads = {f"d{k}": torch.from_numpy(np.array(batch.truth[k])) for k in given}
    else:
        tensors = dict(batch.t, Xb=batch.Xb, Yb=batch.Yb, loss=np.array(batch.loss, batch.dtype))
        tensors = {k: np.array(v) for k, v in tensors.items()}
        grads = {f"d{k}": np.array(batch.truth[k]) for k in given}
    V, E = batch.t["C"].shape
    ns = dict(torch=torch, F=F, nn=torch.nn, np=np, plt=Quiet(), math=math, random=random,
              vocab_size=V, block_size=batch.Xb.shape[1], n_embd=E, n_hidden=batch.t["W1"].shape[1],
              batch_size=batch.n, n=batch.n, g=torch.Generator().manual_seed(SEED),
              parameters=[tensors[k] for k in PARAM_NAMES], **tensors, **grads)
    ns.update({k: v for k, v in (extra or {}).items() if k not in ns})
    ns.update({k: ns[lecture] for k, lecture in SPELLINGS.items()})
    ns.update({var: ns[f"d{k}"] for k in given for var in (spellings or {}).get(k, ())})
    ns["cmp"] = Recorder({id(v): k for k, v in tensors.items() if k not in ("Xb", "Yb")})
    return ns


def run(parts, ns):
    """Run the statements of each Part in the namespace, in order, as the notebook's cells run: one
    that raises stops there, and the next goes on. Warnings are not shown. Returns [(the index of
    a part that raised, its exception)]."""
    raised = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for i, part in enumerate(parts):
            try:
                exec(compile(ast.Module(body=part.statements, type_ignores=[]), part.cell.label, "exec"), ns)
            except (Exception, SystemExit) as e:
                raised.append((i, e))
    return raised


def gradients_left(ns, wanted, exclude=()):
    """({tensor: array or None}, {tensor: the learner's name when it is not d<tensor>}) for the
    tensors `wanted`: d<tensor> itself, else a variable that spells it another way (dgamma,
    dlogits_fast, dlogits_maxes), else what the learner passed to cmp for it. `exclude`: names
    the kernel put there."""
    found, names = {}, {}
    spelled = {}
    for var, value in ns.items():
        tensor, how = lecture_name(var) if var not in exclude else (None, None)
        if tensor and how != "exact" and (tensor not in spelled or how == "alias"):
            spelled[tensor] = var
    recorded = {}
    for label, value, tensor in ns["cmp"].calls if isinstance(ns.get("cmp"), Recorder) else ():
        tensor = tensor or (label if label in wanted else None)
        if tensor:
            recorded[tensor] = (label, value)
    for tensor in wanted:
        if f"d{tensor}" in ns and f"d{tensor}" not in exclude:
            found[tensor] = as_array(ns[f"d{tensor}"])
        elif tensor in spelled:
            found[tensor], names[tensor] = as_array(ns[spelled[tensor]]), spelled[tensor]
        elif tensor in recorded:
            label, found[tensor] = recorded[tensor]
            names[tensor] = f"what you passed to cmp('{label}', ...)"
        else:
            found[tensor] = None
    return found, names


@dataclass
class Stop:
    """What stopped the learner's code: text, one line (what was raised, where, and which
    gradient made that line fail and why); where, the place; assigned, the tensors whose
    gradients that line was computing; unfilled, the gradients still None when it raised on a
    None (an exercise not filled in yet, not an error); check, whether that line only checks."""
    text: str
    where: str = ""
    assigned: tuple = ()
    unfilled: tuple = ()
    check: bool = False  # the failing line only checks (a cmp, a print, an assert): it gives nothing


def failure(error, parts, ns, truth):
    """The Stop of an exception raised by the statements of `parts` run in `ns`."""
    cells = {part.cell.label: part.cell for part in parts}
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in cells]
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error):
        text = "out of memory"
    missing = getattr(error, "name", None) if isinstance(error, NameError) else None
    unfilled = tuple(sorted(t for var, t in ((v, lecture_name(v)[0]) for v in ns if ns[v] is None) if t)
                     ) if "NoneType" in str(error) else ()
    if not frames:
        return Stop(text, unfilled=unfilled)
    cell, line = cells[frames[-1].filename], frames[-1].lineno
    stmt = innermost(cell.parse(), line)
    where = cell.location(line)
    text += f" ({where}: {cell.line(line)})"
    culprits = []
    for tensor, var in gradients(read(stmt) if stmt else ()).items():
        value, want = ns.get(var), truth.get(tensor)
        if value is None or want is None or not hasattr(value, "shape"):
            continue
        got = tuple(value.shape)
        if got != want.shape:
            culprits.append(f"your {var} is {got} where {tensor} is {want.shape}"
                            + (f" (this batch has n = {want.shape[0]} rows: a size written as a number?)"
                               if want.shape and got and got[0] != want.shape[0] else ""))
        elif str(getattr(value, "dtype", "")).split(".")[-1] != str(want.dtype):
            culprits.append(f"your {var} is {str(value.dtype).split('.')[-1]} where {tensor} is {want.dtype}")
    if culprits:
        text += ": " + "; ".join(culprits)
    if missing and lecture_name(missing)[0]:
        text += f"; no line before it assigns {missing}"
    elif missing:
        text += ("; check runs the exercise cells alone, with the names the lecture's notebook "
                 "defines, and a name of your own setup's is not there")
    assigned = tuple(gradients(bound(stmt)) if stmt else ())
    return Stop(text, where, assigned, unfilled, is_check(stmt) and not assigned)


def is_check(stmt):
    """A line that only looks at gradients: an assert, a print, a cmp, a plot of one."""
    if isinstance(stmt, ast.Assert):
        return True
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    func = stmt.value.func
    return getattr(func, "id", None) in ("print", "cmp", "display") or bool(gradients(read(stmt)))


def innermost(tree, line):
    """The innermost statement of a parsed cell that spans line `line`."""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if best is None or node.lineno >= best.lineno:
                best = node
    return best


# ---------------------------------------------------------------- exercise 4

class Stepper:
    """Exercise 4: the learner's training loop, stepped by check. The loop (a `for` statement
    among the exercise's statements) is rewritten to run one step per entry of its plan instead
    of its own range: right after the loop draws its batch (assigns Xb or Yb), the step's batch
    replaces it (and n, batch_size), and the parameters take the step's values: a hard case's, the
    learner's own initialisation again (INIT), or, with None, whatever the last update left. After
    each step, record(step, found, names, stop) receives what it left: step is {"params" (before
    the update), "Xb", "Yb", "label"}, found and names as gradients_left's, stop what stopped it
    (a Stop, or None).

    steps: called at the first step (the loop's own initialisation has run by then) with the
    learner's parameter shapes {name: shape}, returns the plan [(Xb, Yb, values, label)]."""

    INIT = "the learner's initialisation"

    def __init__(self, ns, loop_statement, steps, record, wanted):
        self.ns, self.steps_for, self.record, self.wanted = ns, steps, record, wanted
        self.plan = self.current = self.start = self.init = None
        self.done = set()
        loop = next((n for n in ast.walk(loop_statement) if isinstance(n, ast.For)), None)
        if loop is None:
            raise ValueError("exercise 4's training loop is not a `for` loop over its steps")
        loop.iter = ast.Call(ast.Name("__ninja_steps__", ast.Load()), [], [])
        at = next((i + 1 for i, s in enumerate(loop.body) if bound(s) & {"Xb", "Yb"}), 0)
        loop.body.insert(at, ast.Expr(ast.Call(ast.Name("__ninja_batch__", ast.Load()), [], [])))
        ast.fix_missing_locations(loop_statement)
        ns["__ninja_steps__"], ns["__ninja_batch__"] = self.steps, self.batch

    def steps(self):
        k = 0
        while self.plan is None or k < len(self.plan):
            self.finish()
            self.current = k
            yield k
            k += 1
        self.finish()

    def batch(self):
        ns = self.ns
        params = {k: ns.get(k) for k in PARAM_NAMES}
        if self.plan is None:
            self.plan = self.steps_for({k: tuple(getattr(v, "shape", ())) for k, v in params.items()})
            self.init = {k: v.detach().clone() for k, v in params.items()}
        Xb, Yb, values, _ = self.plan[self.current]
        ns["Xb"], ns["Yb"] = torch.from_numpy(np.array(Xb)), torch.from_numpy(np.array(Yb))
        ns["n"] = ns["batch_size"] = len(Yb)
        values = self.init if values is Stepper.INIT else values or {}
        with torch.no_grad():
            for k, value in values.items():
                params[k].copy_(torch.as_tensor(np.asarray(value)))
        self.start = {k: as_array(v) for k, v in params.items()}

    def finish(self, stop=None):
        """Report the step that ran, once, with what stopped it."""
        k = self.current
        if k is None or k in self.done or self.start is None:
            return
        self.done.add(k)
        found, names = gradients_left(self.ns, self.wanted)
        found.update(self.grads_list())
        Xb, Yb, _, label = self.plan[k]
        self.record(dict(params=self.start, Xb=np.array(Xb), Yb=np.array(Yb), label=label), found, names, stop)

    def grads_list(self):
        """The loop's `grads`, paired with its `parameters` by identity: the order the update uses."""
        grads, params = self.ns.get("grads"), self.ns.get("parameters")
        if not isinstance(grads, (list, tuple)) or not isinstance(params, (list, tuple)):
            return {}
        names = {id(self.ns.get(k)): k for k in PARAM_NAMES}
        return {names[id(p)]: as_array(g) for p, g in zip(params, grads) if id(p) in names and g is not None}
