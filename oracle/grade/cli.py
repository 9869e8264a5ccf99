"""`numpy-ninja check`: grade your own answers to the lecture's exercises 1-4 against PyTorch
autograd. Registered by the oracle under the entry-point group `numpy_ninja.commands`; this
module imports neither torch nor the grading code until the command runs."""
import importlib
import json
import sys
import time
from pathlib import Path

from numpy_ninja.cli import ArgumentParser, positive_int, seed_int
from numpy_ninja.config import DEFAULTS
from numpy_ninja.data import DataError
from oracle.threads import one_thread
from oracle.userfile import cap_memory

PROG = "numpy-ninja check"
INSTALL = f"{PROG} needs PyTorch: pip install 'numpy-ninja[oracle]' (torch 2.13.0)"
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
    p.add_argument("file", nargs="?", help="your solution: a Python file defining exercise1..exercise4")
    p.add_argument("--template", action="store_true", help="print a solution file to fill in, and exit")
    p.add_argument("--exercise", type=int, choices=(1, 2, 3, 4),
                   help="check only this one (default: all the file defines)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of the arrays your functions receive (default: float64)")
    p.add_argument("--batches", type=positive_int, default=4,
                   help="batches to check on: the 3 hard cases, then plain batches of 32 (default: 4)")
    p.add_argument("--seed", type=seed_int, default=DEFAULTS.seed,
                   help=f"initialisation and batches, >= 0 (default: {DEFAULTS.seed})")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    p.add_argument("--out", type=Path, help="also write report.md and report.json into DIR")
    p.add_argument("--train", type=positive_int, metavar="STEPS",
                   help="also train exercise 4's network STEPS steps with your exercise4, in "
                        "lockstep with autograd, and report how far the two drift apart")
    return p


def fail(message, status=EXIT_USAGE):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


class Progress:
    """A line on stderr every 10% of training, and at least every 5 seconds."""

    def __init__(self):
        self.last = time.monotonic()

    def __call__(self, step, total):
        now = time.monotonic()
        if step % max(1, total // 10) == 0 or step == total or now - self.last >= 5:
            self.last = now
            print(f"training: step {step}/{total}", file=sys.stderr, flush=True)


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
        if args.out and args.out.exists() and not args.out.is_dir():
            return fail(f"--out {args.out} exists and is not a directory")
    try:
        importlib.import_module("torch")
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 1
    if args.template:
        from oracle.template import template
        print(template(), end="")
        return 0
    from oracle.check import check_solution, render
    from oracle.learner import SolutionError

    cap_memory()
    try:
        with one_thread():
            report = check_solution(args.file, args.exercise, args.dtype, args.batches, args.seed,
                                    args.train, progress=Progress() if args.train else None)
    except (SolutionError, DataError) as e:
        return fail(e)
    except MemoryError:
        return fail("out of memory: the solution needs more than this machine has")
    for note in report.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    text = json.dumps(report.as_dict()) if args.format == "json" else render(report, args.format)
    print(text)
    if args.out:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "report.md").write_text(render(report, "markdown") + "\n")
            (args.out / "report.json").write_text(json.dumps(report.as_dict(), indent=1) + "\n")
        except OSError as e:
            return fail(f"cannot write into --out {args.out}: {e.strerror or e}")
    return 0 if report.passed else EXIT_WRONG
