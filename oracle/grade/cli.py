"""`numpy-ninja check`: grade your own answers to the lecture's exercises 1-4 against PyTorch
autograd. Registered by the oracle under the entry-point group `numpy_ninja.commands`; this
module imports neither torch nor the grading code until the command runs."""
import argparse
import json
import sys
from pathlib import Path

from numpy_ninja.cli import ArgumentParser, positive_int, seed_int
from numpy_ninja.config import DEFAULTS
from numpy_ninja.console import Progress, UserError, error
from oracle._common import OutDir, install_hint, missing, one_thread
from oracle.grade.sandbox import TIMEOUT

PROG = "numpy-ninja check"
EXIT_WRONG, EXIT_USAGE = 1, 2


def parser():
    p = ArgumentParser(
        prog=PROG,
        description="Check your own backprop answers to the lecture's exercises 1-4, tensor by "
                    "tensor, against PyTorch autograd, on batches built to hold the hard cases "
                    "(n=2, a tied maximum, characters looked up twice, BatchNorm columns of tiny "
                    "and huge variance). A wrong tensor is blamed `local` when its own step is "
                    "wrong given your gradients of the tensors it feeds, `inherited` when the error "
                    "came from those; a hint says what the difference looks like. Exit status 0 "
                    "when nothing is wrong (missing answers are fine), 1 when a gradient is wrong "
                    "or a function raised, 2 for a usage error. Start with --template.")
    p.add_argument("file", nargs="?", help="your work: the lecture's notebook (.ipynb, as Jupyter or "
                   "Colab saves it), a .py of its cells, or the template's file (--template)")
    p.add_argument("--template", action="store_true", help="print a solution file to fill in, and exit")
    p.add_argument("--exercise", type=int, choices=(1, 2, 3, 4),
                   help="check only this one (default: all the file defines)")
    p.add_argument("--dtype", choices=("float64", "float32"),
                   help="dtype of the tensors your code receives (default: float32 for a notebook's "
                        "cells, as the notebook runs; float64 for the template's functions)")
    p.add_argument("--batches", type=positive_int, default=4,
                   help="batches to check on: the 3 hard cases, then plain batches of 32 (default: 4)")
    p.add_argument("--seed", type=seed_int, default=DEFAULTS.seed,
                   help=f"initialisation and batches, >= 0 (default: {DEFAULTS.seed})")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    p.add_argument("--out", type=Path, help="also write report.md, report.json and report.html (the "
                   "lecture's graph, each tensor coloured by its verdict) into DIR")
    p.add_argument("--timeout", type=positive_float, default=TIMEOUT, metavar="SECONDS",
                   help=f"stop an exercise's code after this long, and report it (default: {TIMEOUT:g})")
    p.add_argument("--train", type=positive_int, metavar="STEPS",
                   help="also train exercise 4's network STEPS steps with your exercise4, in "
                        "lockstep with autograd, and report how far the two drift apart")
    return p


def positive_float(text):
    value = float(text)
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def fail(message, status=EXIT_USAGE):
    error(PROG, message)
    return status


def main(argv):
    args = parser().parse_args(argv)
    if args.file and args.template:
        return fail("give either a solution file or --template, not both")
    if not args.template:
        if not args.file:
            return fail("give a solution file to check (start one with --template)")
        if not Path(args.file).is_file():
            path = Path(args.file)
            what = ("is a directory" if path.is_dir() else "is not a regular file" if path.exists()
                    else "no such file")
            return fail(f"{args.file}: {what}")
    if missing("torch"):
        print(f"{PROG} needs PyTorch: {install_hint()}", file=sys.stderr)
        return 1
    if args.template:
        from oracle.grade.template import template
        print(template(), end="")
        return 0
    from oracle.grade.check import check_solution
    from oracle.grade.report import render

    progress = Progress("training", total=args.train, parts=10) if args.train else None
    out = None
    try:
        out = OutDir(args.out) if args.out else None
        with one_thread():
            report = check_solution(args.file, args.exercise, args.dtype, args.batches, args.seed,
                                    args.train, progress=progress and progress.update,
                                    timeout=args.timeout)
        for note in report.notes:
            print(f"{PROG}: note: {note}", file=sys.stderr)
        print(json.dumps(report.as_dict()) if args.format == "json" else render(report, args.format))
        if out:
            from oracle.grade.picture import render_html
            out.write("report.md", render(report, "markdown") + "\n")
            out.write("report.json", json.dumps(report.as_dict(), indent=1) + "\n")
            out.write("report.html", render_html(report.as_dict()))
    except UserError as e:
        return fail(e)
    except MemoryError:
        return fail("out of memory: the solution needs more than this machine has")
    finally:
        if out:
            out.close()
    return 0 if report.passed else EXIT_WRONG
