"""`numpy-ninja check-layer FILE:FACTORY --features F [--twin FILE:FACTORY]`: oracle.check_layer
from the command line. Registered under the entry-point group `numpy_ninja.commands`; torch is
imported only with --twin. Exit 0 when the layer passes, 1 with a counterexample, 2 when the check
cannot run (one line on stderr)."""
import argparse
import json
import math
import sys

from numpy_ninja.cli import ArgumentParser, positive_int
from numpy_ninja.console import Progress, UserError, error
from numpy_ninja.train import blas_threads
from oracle._common import install_hint, missing, one_thread
from oracle._userfile import cap_memory, import_file

PROG = "numpy-ninja check-layer"


def int_list(text):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def name_list(*allowed):
    def parse(text):
        names = tuple(text.split(","))
        for n in names:
            if n not in allowed:
                raise argparse.ArgumentTypeError(f"{n!r} is not one of {', '.join(allowed)}")
        return names
    return parse


def parser():
    p = ArgumentParser(
        prog=PROG,
        description="Fuzz a hand-written layer against autograd: hypothesis draws batch sizes, "
                    "sequence lengths, modes, dtypes, initialisations, input magnitudes and "
                    "upstream gradients, compares the output, the input gradient, every parameter "
                    "gradient and buffer with a torch twin (or, without --twin, torch-free with "
                    "float64 and central differences), and shrinks a failure to the smallest "
                    "input. Exit 0: passed; 1: a counterexample; 2: the check cannot run. The "
                    "layer protocol: docs/layer-protocol.md.")
    p.add_argument("layer", metavar="FILE:FACTORY",
                   help="a Python file and a function in it: FACTORY(dtype, rng) returns the layer")
    p.add_argument("--features", type=positive_int, required=True,
                   help="size of the input's last axis (float input), or the number of indices "
                        "(index input)")
    p.add_argument("--twin", metavar="FILE:FACTORY",
                   help="FACTORY(layer) returns a torch module whose state_dict names and shapes "
                        "match the layer's (values are copied in); needs PyTorch")
    p.add_argument("--ndim", type=int_list, default=None,
                   help="input ranks to try, e.g. 2,3 for (N, F) and (N, L, F) (default: 2 for "
                        "float input, 1,2 for index input)")
    p.add_argument("--input", choices=("float", "index"), default="float",
                   help="float arrays, or integer indices in [0, features) (default: float)")
    p.add_argument("--dtype", type=name_list("float64", "float32"), default=("float64", "float32"),
                   help="dtypes to try (default: float64,float32)")
    p.add_argument("--mode", type=name_list("train", "eval"), default=("train", "eval"),
                   help="modes to try (default: train,eval)")
    p.add_argument("--max-examples", type=positive_int, default=200,
                   help="examples to try before shrinking (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="hypothesis seed (default: 0)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    return p


def load(spec, what):
    """The function FACTORY of the Python file FILE, from "FILE:FACTORY"."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise UserError(f"{what} must be FILE:FACTORY, got {spec!r}")
    module = import_file(path)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise UserError(f"{path} has no function {name}")
    return factory


def finite_or_none(value):
    """JSON has no infinity: a non-finite error (the layer raised) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    return value


def main(argv):
    args = parser().parse_args(argv)
    if missing("hypothesis"):  # the search itself
        print(f"{PROG} needs hypothesis: pip install 'numpy-ninja[oracle]'", file=sys.stderr)
        return 2
    from oracle.fuzz.harness import check_layer

    cap_memory()
    try:
        make_layer = load(args.layer, "the layer")
        twin = None
        if args.twin:
            if missing("torch"):
                raise UserError(f"--twin needs PyTorch: {install_hint()}, or leave it out to check "
                                "torch-free")
            twin = load(args.twin, "--twin")
        ndim = args.ndim or ((2,) if args.input == "float" else (1, 2))
        progress = Progress(PROG, unit="example", delay=5, every=5)
        with one_thread() if twin else blas_threads(1):  # tiny tensors (oracle._common.one_thread)
            report = check_layer(make_layer, args.features, twin=twin, ndim=ndim, input=args.input,
                                 dtypes=args.dtype, modes=args.mode, max_examples=args.max_examples,
                                 seed=args.seed, progress=progress.update)
    except UserError as e:
        error(PROG, str(e))
        return 2
    except MemoryError:
        error(PROG, "out of memory: the layer needs more than this machine has")
        return 2
    if args.format == "json":
        print(json.dumps(finite_or_none(report.as_dict())))
    else:
        print(f"{args.layer}, features {args.features}, against "
              f"{'the twin ' + args.twin if args.twin else 'float64 and central differences'}")
        print(report)
    return 0 if report.passed else 1
