"""One exercise in one batch: each of the learner's gradients against autograd (the verdict), and
for a wrong one, which step is wrong.

The cause of a wrong gradient dx: recompute x's step from the learner's own gradients of the
tensors x feeds (a vector-Jacobian product through each consumer's forward line by autograd,
summed over the consumers). If the learner's dx differs from that, the step is wrong (`local`);
if it equals it, the error came from upstream (`inherited`, from the consumers whose gradients
are wrong). A consumer whose gradient the learner did not give (missing, or its function
raised) counts with its true gradient. "Differs" uses the verdict's tolerance, measured against
the terms of that one step (oracle.reference.scales.atomic_term_scales with the learner's
gradients given), so one step's rounding never makes a step wrong.

Verdicts: `exact` (bitwise equal to autograd), `approximate` (within the tolerance of
numpy_ninja.tolerance.within against the tensor's term scale), `wrong`, `missing`, `error`. Far down the
graph the term scale is large, and in float32 its bound lets real mistakes through; so an answer
that also fails the lecture's element-wise allclose is `wrong` when its own step is wrong, both
from the learner's upstream gradients and from the true ones.
"""
from dataclasses import dataclass

import numpy as np
import torch

from numpy_ninja.atomic import PARAM_NAMES
from numpy_ninja.tolerance import tolerance, within
from oracle.grade.exercises import consumers_of
from oracle.grade.hints import Context, diagnose, rounding_hint, same_broadcast
from oracle.grade.verdicts import Failed, Grade, NotReached
from oracle.reference.graph import autograd_forward, vjp
from oracle.reference.scales import atomic_term_scales

@dataclass
class BatchReference:
    """One batch as autograd sees it: t the forward tensors and parameters (NumPy), values the
    same as torch tensors (with Xb, Yb, n), truth every gradient, scales their term scales."""
    Xb: np.ndarray
    Yb: np.ndarray
    dtype: object
    loss: float
    t: dict
    values: dict
    truth: dict
    scales: dict

    @property
    def n(self):
        return len(self.Xb)

    @classmethod
    def of(cls, params, Xb, Yb, dtype, scales=True):
        """Autograd on the lecture's graph with the parameters cast to dtype (scales: with the
        term scales, which grading needs and training does not)."""
        params = {k: np.asarray(v).astype(dtype) for k, v in params.items()}
        loss, t, truth = autograd_forward(params, Xb, Yb)
        values = {k: torch.from_numpy(v) for k, v in t.items()}
        values.update(Xb=torch.from_numpy(Xb), Yb=torch.from_numpy(Yb), n=len(Xb))
        return cls(Xb, Yb, np.dtype(dtype), loss, t, values, truth,
                   atomic_term_scales(t, Xb, Yb) if scales else {})


def as_answer(value, want, dtype):
    """The learner's array in the shape and dtype of the true gradient, or None when it cannot
    stand in for it (another size or shape, not finite)."""
    if value.shape != want.shape:
        same = [s for s in value.shape if s != 1] == [s for s in want.shape if s != 1]
        if value.size != want.size or not same:
            return None
        value = value.reshape(want.shape)
    value = value.astype(dtype)
    return value if np.all(np.isfinite(value)) else None


def path_terms(block, values, x, dout):
    """For x entering a multi-line block: {"a -> b": the part of x's gradient that flows through
    those nodes}, one entry per set of paths that a group of inner nodes carries (not all)."""
    paths = []

    def walk(node, path):
        if node == block.out:
            paths.append(path)
        for s in block.steps:
            if node in s.inputs:
                walk(s.out, path + (s.out,))
    walk(x, ())
    groups = {}
    for s in block.steps[:-1]:
        through = frozenset(p for p in paths if s.out in p)
        if through and len(through) < len(paths):
            groups.setdefault(through, []).append(s.out)
    out = {}
    for nodes in groups.values():
        g = vjp(block.steps, values, nodes[0], block.out, dout)
        out[" -> ".join(nodes)] = vjp(block.steps, values, x, nodes[0], g).numpy()
    return out


@dataclass
class Learner:
    """What grading one answer may use of the learner's others: their arrays (as given, and
    reshaped where they can stand in for the true gradient), the true gradients handed to them,
    the graph's consumers, and the backend they wrote in (for hints in its own words)."""
    arrays: dict
    usable: dict
    given: dict
    consumers: dict
    backend: str

    def above(self, name):
        """The tensors whose gradients flow into name's: its consumers, theirs, and so on."""
        seen, todo = set(), [s.out for s in self.consumers.get(name, [])]
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                todo += [s.out for s in self.consumers.get(c, [])]
        return seen - {"loss"}


def grade_batch(graph, rows, answers, batch, given=None, backend="numpy"):
    """Grade the learner's answers for one exercise in one batch.

    graph: the steps it backpropagates through; rows: the tensors reported; answers: {name:
    ndarray | Failed | NotReached} (a name absent is missing), possibly with more of the graph's
    tensors than rows (their gradients count for the cause); given: true gradients the exercise
    hands the learner (exercise 3's dhpreact); backend: "numpy" or "torch", the learner's, for
    hints. Returns {name: Grade} for rows and every answered tensor."""
    dtype, truth, given = batch.dtype, batch.truth, dict(given or {})
    consumers = consumers_of(graph)
    grades, arrays, usable = {}, {}, {}
    for name in dict.fromkeys(list(rows) + list(answers)):
        value = answers.get(name)
        if value is None:
            grades[name] = Grade("missing", n=batch.n)
        elif isinstance(value, NotReached):
            grades[name] = Grade("missing", hint=value.message, n=batch.n, reached=False)
        elif isinstance(value, Failed):
            grades[name] = Grade("error", hint=value.message, n=batch.n)
        elif value.dtype.kind not in "fiu":
            grades[name] = Grade("error", hint=f"not a numeric array (dtype {value.dtype})", n=batch.n)
        else:
            arrays[name] = value
            fit = as_answer(value, truth[name], dtype)
            if fit is not None:
                usable[name] = fit
    # One step is measured against its own terms, computed from the learner's gradients, times K:
    # a learner's code may compute the forward tensors again, in its own order, and then its
    # BatchNorm input carries the rounding of its K = block * n_embd products, K times the eps that
    # BatchNorm1d.check_domain allows for, which reaches a step through the forward tensors it reads.
    K = batch.t["embcat"].shape[1]
    terms = atomic_term_scales(batch.t, batch.Xb, batch.Yb, {**given, **usable})
    local_scales = {k: K * v for k, v in terms.items()}

    def upstream(c):
        if c == "loss":
            return torch.ones((), dtype=batch.values["C"].dtype)
        g = usable.get(c, given.get(c, truth.get(c)))
        return torch.as_tensor(np.asarray(g, dtype))

    learner = Learner(arrays, usable, given, consumers, backend)
    for name, value in arrays.items():
        grades[name] = judge(name, value, batch, local_scales[name], upstream, learner)
    for name, g in grades.items():  # the tensors an error came from, now that all are graded
        if g.verdict == "wrong" and g.cause == "inherited" and not g.upstream:
            g.upstream = wrong_consumers(name, consumers, grades)
    for name in rows:
        if grades[name].cause == "inherited" and not grades[name].hint:
            grades[name].hint = inherited_hint(name, grades, rows, consumers)
    return grades


def judge(name, value, batch, local_scale, upstream, learner):
    """The Grade of one answered tensor (an ndarray of any shape and dtype)."""
    dtype, T, n = batch.dtype, batch.truth[name], batch.n
    steps, arrays, usable = learner.consumers.get(name, []), learner.arrays, learner.usable
    fit = usable.get(name)
    alike = same_broadcast(value.shape, T.shape)
    note = f"shape {value.shape} where {name} is {T.shape}: it broadcasts the same way" if alike else None
    problem = ("shape" if value.shape != T.shape and not alike else
               "not finite" if not np.all(np.isfinite(value)) else
               "dtype" if value.dtype != np.dtype(dtype) else "")
    shown = fit if fit is not None else value.astype(dtype) if value.shape == T.shape else None
    figures, a, ok = None, None, False
    zero = bool(np.abs(T).max(initial=0) <= tolerance(dtype, batch.scales[name]))  # rounding-level zero
    if shown is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            a, ok = within(shown, T, batch.scales[name], dtype)
        if np.isfinite(a.max_abs_diff):
            figures = dict(max_abs_diff=a.max_abs_diff, max_ulp=None if zero else a.max_ulp,
                           rel_err=a.max_rel_err if np.isfinite(a.max_rel_err) else None)
            # a gradient zero up to rounding: its ULP distances count the representable numbers
            # around 0 between two roundings, which means nothing
    rounding = note or rounding_hint(dtype)
    if not problem and a.exact:
        return Grade("exact", figures, hint=note, n=n, zero=zero)
    if not problem and ok and a.allclose:
        return Grade("approximate", figures, hint=rounding, n=n, zero=zero)
    coarse = coarser_precision(name, value if shown is None else shown.astype(value.dtype), T, batch, learner)
    if coarse and problem in ("", "dtype"):
        return Grade("approximate", figures, hint=coarse, n=n, zero=zero)
    parts = {s.out: vjp(s.steps, batch.values, name, s.out, upstream(s.out)).numpy() for s in steps}
    expected = sum(parts.values())
    step_ok = fit is not None and within(fit, np.asarray(expected, dtype), local_scale, dtype)[1]
    if not problem and ok and (step_ok or right_step(fit, name, steps, batch, local_scale)):
        return Grade("approximate", figures, hint=rounding, n=n, zero=zero)
    grade = Grade("wrong", figures, n=n, zero=zero)
    broken = tuple(s.out for s in steps if s.out in arrays and s.out not in usable)
    # a wrong shape made by an upstream answer of a wrong shape, broadcast through a right step
    misshapen = tuple(s.out for s in steps if s.out in arrays and arrays[s.out].shape != oracle_shape(s.out, batch)
                      and not same_broadcast(arrays[s.out].shape, oracle_shape(s.out, batch)))
    same_dtype = tuple(s.out for s in steps if s.out in arrays and arrays[s.out].dtype == value.dtype)
    unseen = tuple(s.out for s in steps if s.out != "loss" and s.out not in arrays and s.out not in learner.given)
    if broken:  # its step cannot be recomputed from what the learner gave
        grade.cause, grade.upstream = "inherited", broken
        grade.hint = (f"cannot be checked while your {', '.join('d' + b for b in broken)} has the "
                      "wrong shape or entries that are not finite: fix that first")
    elif problem == "shape" and misshapen:
        grade.cause, grade.upstream = "inherited", misshapen
        grade.hint = (f"its shape {value.shape} comes from your "
                      f"{', '.join(f'd{m} {arrays[m].shape}' for m in misshapen)}: fix that first")
    elif step_ok and problem == "dtype" and same_dtype:
        grade.cause, grade.upstream = "inherited", same_dtype
    elif step_ok and not problem:
        grade.cause = "inherited"
    elif unseen:  # checked against the true gradient it receives: its own step or that one may be wrong
        grade.cause, grade.upstream = "unknown", unseen
        grade.hint = (f"cannot tell whether this step is wrong: your {', '.join('d' + u for u in unseen)} "
                      f"{'is' if len(unseen) == 1 else 'are'} missing (give it to see where the error starts)")
    else:
        grade.cause = "local"
        ctx = context(name, batch, local_scale, parts, steps, upstream, learner)
        grade.hint = grade.local_hint = diagnose(value, expected, ctx)
    return grade


def coarser_precision(name, value, T, batch, learner):
    """Why an answer that is not right to the check's dtype is right to a coarser one: its own
    dtype (float32 where the check runs in float64), or the float32 rounding of an answer of the
    learner's that flows into it; None when neither holds."""
    if np.dtype(batch.dtype) != np.float64 or value.shape != T.shape or not np.all(np.isfinite(value)):
        return None
    if not within(value.astype(np.float32), T.astype(np.float32), batch.scales[name], np.float32)[1]:
        return None
    if value.dtype == np.float32:
        return (f"{value.dtype}, where the check runs in float64: right to float32 precision "
                "(torch.zeros(shape) and F.one_hot(...) / n make torch's default dtype, float32; "
                f"zeros_like({name}) keeps {name}'s)")
    coarse = sorted(u for u in learner.above(name) if u in learner.arrays and learner.arrays[u].dtype == np.float32)
    if coarse:
        return (f"right to float32 precision: it carries the float32 rounding of your "
                f"{', '.join('d' + c for c in coarse)}")
    return None


def oracle_shape(name, batch):
    return batch.truth[name].shape if name in batch.truth else ()


def right_step(fit, name, steps, batch, scale):
    """The answer is its step applied to the true gradients of its consumers (whatever the
    learner returned for those)."""
    def true(c):
        if c == "loss":
            return torch.ones((), dtype=batch.values["C"].dtype)
        return torch.as_tensor(batch.truth[c])
    expected = sum(vjp(s.steps, batch.values, name, s.out, true(s.out)).numpy() for s in steps)
    return within(fit, np.asarray(expected, batch.dtype), scale, batch.dtype)[1]


def wrong_consumers(name, consumers, grades):
    """The consumers of `name` whose gradients are wrong (where an inherited error came from);
    if none is wrong beyond the tolerance, the one furthest from it."""
    steps = consumers.get(name, [])
    wrong = tuple(s.out for s in steps if s.out in grades and grades[s.out].verdict in ("wrong", "error"))
    if wrong:
        return wrong
    rel = {s.out: grades[s.out].figures["rel_err"] for s in steps
           if s.out in grades and grades[s.out].figures}
    return (max(rel, key=rel.get),) if rel else ()


def context(name, batch, scale, parts, steps, upstream, learner):
    """What the diagnosis of `name` may use."""
    ctx = Context(name, batch.n, batch.dtype, scale, batch.t,
                  branches=parts if len(parts) > 1 else {}, backend=learner.backend,
                  truth=batch.truth[name],
                  later={k: v for k, v in learner.arrays.items() if name in learner.above(k)})
    for s in steps:
        if len(s.steps) > 1:
            ctx.terms.update(path_terms(s, batch.values, name, upstream(s.out)))
        if s.lookup and s.lookup[0] == name:
            ctx.gather = (s.out, s.lookup[1], batch.values[s.lookup[1]].numpy())
    if name not in PARAM_NAMES:  # a tensor with a row per example
        logits = batch.t["logits"]
        ctx.tied_rows = (logits == logits.max(1, keepdims=True)).sum(1) > 1
        ctx.targets = batch.Yb
    return ctx


def inherited_hint(name, grades, rows, consumers):
    """Where an inherited error starts: the local (or failing) tensors up the chain of wrong
    upstream gradients; past one within tolerance, the chain goes on through its own consumers."""
    roots, seen, todo = [], set(), list(grades[name].upstream)
    while todo:
        up = todo.pop(0)
        if up in seen or up not in grades:
            continue
        seen.add(up)
        g = grades[up]
        if g.cause == "local" or g.verdict == "error":
            roots.append(up)
        else:
            todo += list(g.upstream or wrong_consumers(up, consumers, grades))
    text = "right given your " + ", ".join(f"d{u}" for u in grades[name].upstream)
    if roots and roots != list(grades[name].upstream):
        text += f"; the error starts at {', '.join(roots)}"
    for r in roots:
        if r not in rows and grades[r].local_hint:
            text += f"; your d{r} is wrong: {grades[r].local_hint}"
    return text
