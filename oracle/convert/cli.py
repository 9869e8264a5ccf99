"""`numpy-ninja export CHECKPOINT FILE` and `numpy-ninja import FILE --model TYPE --out DIR`:
registered by the oracle under the entry-point group `numpy_ninja.commands`, so numpy_ninja itself
never imports the oracle or torch. This module imports torch only when a command runs. Exit 0
when the file is written; 1, with one line on stderr, when it cannot be (nothing is left behind);
2 for a command line argparse refuses."""
import shlex
import sys

from numpy_ninja.cli import ArgumentParser, positive_int, seed_int
from numpy_ninja.config import DEFAULTS, DTYPES, MAKEMORE_MODELS, MODEL_DEFAULTS, ConfigError, option_name
from numpy_ninja.console import UserError, error
from numpy_ninja.data import default_data_path, describe_data
from oracle._common import install_hint, missing, one_thread

EXIT_ERROR = 1


def export_parser():
    p = ArgumentParser(
        prog="numpy-ninja export",
        description="Write a checkpoint of one of makemore.py's models (bigram, bengio = "
                    "makemore's mlp, rnn, gru, bow, transformer) as the model.pt makemore.py "
                    "saves: torch.save of its state_dict, makemore's names, Linear weights in "
                    "torch's layout, the causal masks as its buffers, in makemore's float32. "
                    "Written atomically; prints the makemore.py command line that loads it.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint.npz, or a run directory")
    p.add_argument("out", metavar="FILE", help="the file to write (makemore.py reads model.pt)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    return p


def import_parser():
    n_head = MODEL_DEFAULTS["transformer"]["n_head"]
    p = ArgumentParser(
        prog="numpy-ninja import",
        description="Turn makemore.py's model.pt (torch.save of a model's state_dict, read with "
                    "weights_only=True) into a numpy-ninja run directory: the sizes are read from "
                    "its shapes, the vocabulary from the names file. The run is at step 0 with a "
                    "fresh optimizer: numpy-ninja eval and sample use it as it is, train --resume "
                    "fine-tunes it. Its train/val/test split is numpy-ninja's, not makemore.py's.")
    p.add_argument("file", metavar="FILE", help="makemore.py's model.pt")
    p.add_argument("--model", required=True, choices=MAKEMORE_MODELS,
                   help="the model it holds: makemore.py's --type, with bengio for its mlp")
    p.add_argument("--out", required=True, help="run directory, new or empty")
    p.add_argument("--data", default=str(default_data_path()),
                   help="the names file the model was trained on: its vocabulary (default: the "
                        "shipped list)")
    p.add_argument("--n-head", type=positive_int,
                   help=f"the transformer's attention heads, which no shape records (default: "
                        f"{n_head}, makemore's)")
    p.add_argument("--dtype", choices=DTYPES, help="the checkpoint's dtype (default: the file's)")
    p.add_argument("--seed", type=seed_int, help="the run's seed: its split and batches (default: "
                   f"{DEFAULTS.seed})")
    p.add_argument("--steps", type=positive_int, help="the steps train --resume trains it to "
                   "(default: the model's)")
    return p


def run(prog, command):
    """command() with torch on one thread; a user's mistake is one line and EXIT_ERROR."""
    if missing("torch"):
        print(f"{prog} needs PyTorch: {install_hint()}", file=sys.stderr)
        return EXIT_ERROR
    try:
        with one_thread():
            command()
        return 0
    except ConfigError as e:
        error(prog, f"{option_name(e.name)}: {e.message}")
    except UserError as e:
        error(prog, str(e))
    return EXIT_ERROR


def export_main(argv):
    args = export_parser().parse_args(argv)

    def command():
        from oracle.convert.to_makemore import export, makemore_command

        done = export(args.checkpoint, args.out, args.force)
        ckpt = done.checkpoint
        print(f"wrote {done.path}: makemore.py's --type {done.makemore_type} state_dict "
              f"({done.parameters:,} parameters, float32) of {args.checkpoint} at step {ckpt.step:,}")
        line, notes = makemore_command(done)
        print(f"makemore.py loads it with:\n  {line}")
        for note in notes:
            print(f"note: {note}")

    return run("numpy-ninja export", command)


def import_main(argv):
    args = import_parser().parse_args(argv)

    def command():
        from oracle.convert.from_makemore import import_model, makemore_type

        done = import_model(args.file, args.model, args.out, args.data, n_head=args.n_head,
                            dtype=args.dtype, seed=args.seed, steps=args.steps)
        config, where = done.config, shlex.quote(str(done.directory))
        sizes = ", ".join(f"{k} {getattr(config, k)}" for k in ("block_size", "n_layer", "n_embd", "n_embd2")
                          if getattr(config, k) is not None)
        given = "--n-head" if args.n_head else "makemore.py's default; --n-head to change it"
        heads = (f"; n_head {config.n_head}, which no shape records: {given}"
                 if config.model == "transformer" else "")
        print(f"wrote {done.directory / 'checkpoint.npz'}: makemore.py's --type "
              f"{makemore_type(config.model)} from {args.file} as numpy-ninja's {config.model} "
              f"({config.dtype}; {len(done.vocab)} tokens from {describe_data(config.data)}, "
              f"{sizes}{heads})")
        print(f"a run at step 0 of {config.steps:,}, with a fresh optimizer (makemore.py saves none); "
              f"its split is numpy-ninja's (seed {config.seed}), not makemore.py's: the model may "
              "have trained on words of its test split")
        print(f"  numpy-ninja eval --checkpoint {where}\n  numpy-ninja sample --checkpoint {where}\n"
              f"  numpy-ninja train --resume {where}    (fine-tunes it for {config.steps:,} steps)")

    return run("numpy-ninja import", command)
