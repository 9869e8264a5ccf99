"""An exercise attempted: the learner's code for it run apart (oracle.grade.sandbox) on each of
check's batches, and what it left: per batch, {tensor: array, None (missing), Failed or
NotReached}, the learner's own names for them, and what stopped the code.

Cells run in the notebook's namespace (oracle.grade.notebook); the template's functions receive
their arguments with that namespace as their globals, and their local variables are read when
they return or raise. Exercise 4 in a notebook is its training loop, stepped once per batch."""
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from numpy_ninja.atomic import GRAD_NAMES
from numpy_ninja.console import UserError
from oracle._userfile import describe, import_file
from oracle.grade.learner import arguments, as_array, call
from oracle.grade.locate import bound, gradients
from oracle.grade.notebook import Stepper, Stop, failure, gradients_left, kernel, run
from oracle.grade.sandbox import run_apart
from oracle.grade.sources import Cell
from oracle.grade.verdicts import Failed, NotReached


@dataclass
class Attempt:
    """What one batch's run left: answers {tensor: ndarray | None | Failed | NotReached}, the
    learner's names where they are not d<tensor>, the line that stopped it; for exercise 4 in a
    notebook, the step it ran: params (before its update), Xb, Yb."""
    answers: dict
    names: dict = field(default_factory=dict)
    error: str = None
    params: dict = None
    Xb: np.ndarray = None
    Yb: np.ndarray = None
    notes: list = field(default_factory=list)
    label: str = ""


def wanted(exercise):
    """The tensors whose gradients are read: its rows, and, where it returns a dict, the graph's
    other tensors (its intermediates, by the lecture's names)."""
    return list(exercise.rows) + sorted(exercise.traced)


def given(exercise):
    """The true gradients a notebook's exercise 2 or 3 finds in the kernel: what the learner's own
    exercise 1 left there, right."""
    return [k for k in GRAD_NAMES if k not in exercise.rows] if exercise.number in (2, 3) else []


def settle(found, stops, rows):
    """The answers of a run that Stops ended (each a part that raised, with the parts after it, for
    a later cell may give what an earlier one failed to): a Stop whose gradients a later part gives,
    on a line that only checks (a cmp, a print), or that computed none and came after every row
    was given, is only a note. Of the others: an
    exercise not filled in yet (it raised on its own None) is missing; otherwise the tensors the
    failing line was computing get the error, those not reached say so, and one row always carries
    the error, so a raise never passes. Returns (answers, notes)."""
    found, notes, live = dict(found), [], []
    for stop, later in stops:
        given_later = set(stop.assigned) <= {t for part in later for s in part.statements
                                             for t in gradients(bound(s))}
        if (stop.assigned and given_later) or stop.check or (
                not stop.assigned and all(found.get(r) is not None for r in rows)):
            notes.append(f"{stop.text}: passed over, your gradients are graded as the cells after it left them")
        else:
            live.append(stop)
    if not live:
        return found, notes
    if any(stop.unfilled for stop in live):
        unfilled = next(stop.unfilled for stop in live if stop.unfilled)
        hint = f"not filled in yet (your d{unfilled[0]} is None)"
        return {t: NotReached(hint) if v is None else v for t, v in found.items()}, notes
    for stop in live:
        for tensor in stop.assigned:
            found[tensor] = Failed(stop.text)
    for tensor, value in found.items():
        if value is None:
            found[tensor] = NotReached(f"not reached: the code stopped at {live[0].where or 'an error'}")
    if not any(isinstance(found.get(r), Failed) for r in rows):
        first = next((r for r in rows if isinstance(found.get(r), NotReached)), rows[0])
        found[first] = Failed(live[0].text)
    return found, notes


def run_batches(work, timeout, count):
    """Call work(send) apart; returns `count` results, those the run did not get to filled with
    why it stopped."""
    results, stopped = run_apart(work, timeout)
    for message in results:
        if isinstance(message, UserError):  # the file did not import
            raise message
    return results + [stopped or "the code stopped"] * (count - len(results)), stopped


def cell_attempts(work, exercise, batches, timeout, extra):
    """Exercises 1-3 of a notebook: their statements run in the kernel of each batch."""
    parts, rows, want = work.plan.parts[exercise.number], list(exercise.rows), wanted(exercise)
    true_given = given(exercise)

    def attempt_all(send):
        for batch in batches:
            ns = kernel(batch, work.backend, true_given, extra, work.plan.spellings)
            raised = run(parts, ns)
            exclude = {f"d{k}" for k in true_given} | {v for k in true_given for v in work.plan.spellings.get(k, ())}
            found, names = gradients_left(ns, want, exclude=exclude)
            stops = [(failure(e, parts, ns, batch.truth), parts[i + 1:]) for i, e in raised]
            answers, notes = settle(found, stops, rows)
            send(Attempt(answers, names, stops[0][0].text if stops else None, notes=notes))

    results, _ = run_batches(attempt_all, timeout, len(batches))
    return [r if isinstance(r, Attempt) else Attempt({k: Failed(r) for k in rows}, error=r) for r in results]


def function_attempts(work, exercise, batches, timeout, extra):
    """The template's exerciseN functions (or any object's), called on each batch with the
    kernel as their globals."""
    rows, want = list(exercise.rows), wanted(exercise)
    cell = work.cells[0] if work.cells else None

    def attempt_all(send):
        obj = work.obj
        if not hasattr(obj, exercise.function):  # a path: imported here, apart
            try:
                obj = import_file(obj)
            except UserError as e:
                send(e)
                return
        own = set(vars(obj)) if isinstance(obj, ModuleType) else None
        for batch in batches:
            if own is not None:  # the notebook's names, unless the file defines its own
                vars(obj).update({k: v for k, v in kernel(batch, work.backend, (), extra).items() if k not in own})
            result, local, error = call(getattr(obj, exercise.function), arguments(exercise, batch, work.backend))
            found, notes = returned(result, exercise, want)
            names = {}
            from_locals, local_names = gradients_left(local, want)
            for tensor, value in from_locals.items():
                if found.get(tensor) is None and value is not None:
                    found[tensor], names[tensor] = value, local_names.get(tensor, f"d{tensor}")
            stops = []
            if error is not None:
                stops = [(failure(error, [Part(cell)], local, batch.truth) if cell else Stop(describe(error)), [])]
            answers, more = settle(found, stops, rows)
            send(Attempt(answers, names, stops[0][0].text if stops else None, notes=notes + more))

    results, _ = run_batches(attempt_all, timeout, len(batches))
    return [r if isinstance(r, Attempt) else Attempt({k: Failed(r) for k in rows}, error=r) for r in results]


@dataclass
class Part:
    """A whole file as one part, for notebook.failure."""
    cell: Cell


def returned(result, exercise, want):
    """({tensor: array} of what a function returned, notes on keys that are not gradients)."""
    if exercise.returns is not None:
        return {exercise.returns: as_array(result)}, []
    if result is None:
        return {}, []
    if not isinstance(result, dict):
        what = f"{exercise.function} returned {type(result).__name__}, not a dict of gradients"
        return {k: Failed(what) for k in exercise.rows}, []
    found, notes = {}, []
    for key, value in result.items():
        key = str(key)
        name = key if key in want else key[1:] if key.startswith("d") and key[1:] in want else None
        if name:
            found[name] = as_array(value)
        else:
            notes.append(f"{exercise.function} returned {key!r}, which is not one of its gradients (ignored)")
    return found, notes


class NotTheLecturesNetwork(Exception):
    """Exercise 4's loop trains another network than the lecture's: check cannot step it."""


def lecture_sizes(shapes, vocab_size, block_size):
    """(n_embd, n_hidden) of the learner's parameters {name: shape} when they are the lecture's
    network's, else NotTheLecturesNetwork saying why."""
    C, W1 = shapes.get("C", ()), shapes.get("W1", ())
    if len(C) != 2 or len(W1) != 2:
        raise NotTheLecturesNetwork("exercise 4's loop has no parameters C and W1 of the lecture's shapes")
    E, H = C[1], W1[1]
    expected = dict(C=(vocab_size, E), W1=(block_size * E, H), b1=(H,), W2=(H, vocab_size),
                    b2=(vocab_size,), bngain=(1, H), bnbias=(1, H))
    for name, shape in expected.items():
        if shapes.get(name) != shape:
            raise NotTheLecturesNetwork(
                f"check grades the lecture's network: your {name} is {shapes.get(name) or 'missing'} "
                f"where the lecture's is {shape}")
    return E, H


def loop_attempts(work, exercise, timeout, extra, start, cases, train_batches):
    """Exercise 4 of a notebook: the learner's training loop, stepped once per hard case
    (cases(n_embd, n_hidden): check's batches and parameters for the learner's sizes), then once
    per batch of train_batches [(Xb, Yb)] from the learner's own initialisation. start: a batch
    whose kernel the cell runs in (its loop makes its own parameters). Returns one Attempt per
    step that ran, and why it stopped early (or None)."""
    parts, rows, want = work.plan.parts[4], list(exercise.rows), wanted(exercise)

    def steps_for(shapes):
        E, H = lecture_sizes(shapes, extra["vocab_size"], extra["block_size"])
        graded = [(c.Xb, c.Yb, c.params, c.label) for c in cases(E, H)]
        return graded + [(Xb, Yb, Stepper.INIT if i == 0 else None, f"training step {i}")
                         for i, (Xb, Yb) in enumerate(train_batches)]

    def attempt_all(send):
        ns = kernel(start, work.backend, (), extra)

        def record(step, found, names, stop):
            answers, notes = settle(found, [(stop, [])] if stop else [], rows)
            send(Attempt(answers, names, stop and stop.text, step["params"], step["Xb"], step["Yb"],
                         notes=notes, label=step["label"]))

        stepper = Stepper(ns, work.plan.loop, steps_for, record, want)
        raised = run(parts, ns)
        error = next((e for i, e in raised if parts[i].statements and work.plan.loop in parts[i].statements), None)
        if isinstance(error, NotTheLecturesNetwork):
            stop = Stop(str(error))
        else:
            stop = failure(error, parts, ns, {}) if error else None
        stepper.finish(stop)
        if not stepper.done:
            send(stop.text if stop else "exercise 4's training loop never took a step")

    results, stopped = run_apart(attempt_all, timeout)
    attempts = [r for r in results if isinstance(r, Attempt)]
    return attempts, stopped or next((r for r in results if isinstance(r, str)), None)
