"""The numpy-ninja command: parses the command line and dispatches; the training run itself is
numpy_ninja.run."""
import argparse
import importlib.metadata
import math
import os
import sys

from . import run
from .checkpoint import load_checkpoint
from .config import DEFAULTS, DTYPES, LECTURE_MODELS, MAKEMORE_MODELS, MODEL_DEFAULTS, ConfigError, RunConfig, option_name
from .console import UserError, error
from .data import (DataError, build_examples, count_examples, data_path, data_ref, default_data_path,
                   describe_data, load_words, split_words, words_sha256)
from .files import reason
from .resources import check_memory
from .run import EXIT_INTERRUPTED, SPLITS, loss_table
from .sample import CHUNK, sample_names
from .train import split_loss

EXIT_ERROR, EXIT_BROKEN_PIPE = 1, 141


class CLIError(UserError):
    """A command line that cannot be carried out."""


# ---------------------------------------------------------------- train

TRAIN_SETTINGS = ("data", "model", "steps", "batch_size", "seed", "dtype", "lr", "lr_final",
                  "lr_decay_step", "weight_decay", "block_size", "n_embd", "n_hidden", "n_embd2",
                  "n_layer", "n_head", "checkpoint_every")
RESUME_SETTINGS = ("lr", "lr_final")  # what --resume may change, from the checkpoint's step on


def cmd_train(args):
    given = {k: getattr(args, k) for k in TRAIN_SETTINGS if getattr(args, k) is not None}
    if args.resume is not None:
        fixed = [option_name(k) for k in given if k not in RESUME_SETTINGS] + (["--out"] if args.out else [])
        if fixed:
            raise CLIError(f"--resume continues with the run's own configuration (only --lr and "
                           f"--lr-final may change); drop {' '.join(fixed)}")
        return run.resume(args.resume, given.get("lr"), given.get("lr_final"), args.quiet, args.threads)
    if "data" in given:
        given["data"] = data_ref(given["data"])
    return run.train(RunConfig(**given), args.out, args.quiet, args.threads)


# ---------------------------------------------------------------- eval, sample

def check_vocab(words, vocab, path):
    unknown = sorted(set("".join(words)) - set(vocab.chars))
    if unknown:
        raise CLIError(f"{path}: characters the model has never seen: {''.join(unknown)!r}")


def run_words(config, given, option="--data"):
    """The words to evaluate a run on: `given` (--data) as it is, else the run's own data, which
    must still be the list it was trained on. option: how the command takes other data (None:
    it does not)."""
    if given is not None:
        return given, load_words(given)
    path = data_path(config.data)
    words = load_words(path)
    if words_sha256(words) != config.data_sha256:
        advice = f"; to evaluate on it as it is now, pass {option} {path}" if option else ""
        raise CLIError(f"{describe_data(config.data)} has changed since the model was trained (its "
                       f"words differ){advice}")
    return path, words


def check_lengths(words, config, path):
    """A sequence model reads words of at most block_size - 1 characters."""
    longest = max(words, key=len)
    if config.sequences and len(longest) >= config.block_size:
        raise CLIError(f"{path}: the word {longest!r} has {len(longest)} characters; this model reads "
                       f"words of at most {config.block_size - 1}")


def cmd_eval(args):
    ckpt = load_checkpoint(args.checkpoint)
    config = ckpt.config
    path, words = run_words(config, args.data)
    check_vocab(words, ckpt.vocab, path)
    check_lengths(words, config, path)
    parts = dict(zip(SPLITS, split_words(words, config.seed)))
    check_memory(config, len(ckpt.vocab), count_examples(words, config.sequences), training=False)
    losses = {k: split_loss(ckpt.model, *build_examples(ws, ckpt.vocab, config.block_size, config.sequences))
              for k, ws in parts.items()}
    print(loss_table(losses))
    return 0


MARKS = {"train": " *", "held out": " +"}  # after a sampled name found in the training split, or
#                                             in the validation or test split (a real name not trained on)


def cmd_sample(args):
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise CLIError(f"--temperature must be a finite number > 0, got {args.temperature}")
    ckpt = load_checkpoint(args.checkpoint)
    config = ckpt.config
    unknown = [c for c in dict.fromkeys(args.prefix) if c not in ckpt.vocab.chars]  # as typed
    if unknown:
        raise CLIError(f"--prefix: characters the model has never seen: {''.join(unknown)!r}")
    if config.sequences and len(args.prefix) >= config.block_size - 1:
        raise CLIError(f"--prefix: this model writes names of at most {config.block_size - 1} "
                       f"characters; leave room for at least one after the prefix")
    check_memory(config, len(ckpt.vocab), min(args.n, CHUNK), training=False)  # a chunk's contexts
    try:
        _, words = run_words(config, None, option=None)
        train, val, test = split_words(words, config.seed)
        known, note = {"train": set(train), "held out": set(val) | set(test)}, None
    except (DataError, CLIError) as e:
        known, note = {}, f"(names are not marked as in the training or test set: {e})"
    counts = dict.fromkeys(MARKS, 0)
    for name in sample_names(ckpt.model, ckpt.vocab, config.block_size, args.n, args.seed,
                             prefix=args.prefix, temperature=args.temperature, top_k=args.top_k,
                             sequences=config.sequences):
        split = next((k for k in MARKS if name in known.get(k, ())), None)
        if split:
            counts[split] += 1
        print(name + MARKS.get(split, ""))
    new = args.n - sum(counts.values())
    print(note or f"{counts['train']} in the training set (*), {counts['held out']} in the validation "
                  f"or test set (+), {new} new, of {args.n}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- parser

def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def seed_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def per_model(key, show=str):
    """The defaults of a setting, model by model, for --help: '3 for mlp; 8 for wavenet'."""
    groups = {}
    for m, d in MODEL_DEFAULTS.items():
        if d.get(key) is not None:
            groups.setdefault(show(d[key]), []).append(m)
    return "; ".join(f"{value} for {', '.join(ms)}" for value, ms in groups.items())


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors in one line (and exit status 2), pointing at --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = ArgumentParser(
        prog="numpy-ninja",
        description="Train, evaluate and sample the makemore character-level models with "
                    "NumPy and hand-written backpropagation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=ArgumentParser)
    d = DEFAULTS
    t = sub.add_parser("train", help="train a model (defaults: the lecture's exercise 4)",
                       description=f"Train on our own gradients. Defaults reproduce the lecture's "
                       f"exercise 4: context {d.block_size}, embedding {d.n_embd}, hidden {d.n_hidden}, "
                       f"batch {d.batch_size}, {d.steps:,} SGD steps, lr {d.lr} then {d.lr_final} from "
                       f"step {d.lr_decay_step:,}. The lecture's models ({', '.join(LECTURE_MODELS)}) "
                       f"train with SGD on context windows; makemore.py's "
                       f"({', '.join(MAKEMORE_MODELS)}; bengio is makemore's mlp) with AdamW on whole "
                       "words, their sizes and rates makemore's defaults.")
    t.add_argument("--data", help=f"names file, one word per line (default: the shipped list, now "
                                  f"{default_data_path()})")
    t.add_argument("--model", choices=tuple(MODEL_DEFAULTS), help=f"network (default: {d.model})")
    t.add_argument("--out", help="run directory, new or empty (default: a new folder runs/YYYYmmdd-HHMMSS)")
    t.add_argument("--steps", type=int, help=f"optimizer steps (default: {per_model('steps', '{:,}'.format)})")
    t.add_argument("--batch-size", type=int, help=f"examples (words, for makemore's models) per step "
                                                  f"(default: {d.batch_size})")
    t.add_argument("--seed", type=int, help=f"seed of the split, the initialisation and the batches, "
                                            f">= 0 (default: {d.seed})")
    t.add_argument("--dtype", choices=DTYPES, help=f"floating-point type (default: {d.dtype})")
    t.add_argument("--lr", type=float, help=f"learning rate (default: {per_model('lr')}); with "
                                            "--resume, the rate from the checkpoint's step on")
    t.add_argument("--lr-final", type=float, help=f"learning rate from the decay step on (default: "
                                                  f"{per_model('lr_final')}); may be given with --resume")
    t.add_argument("--lr-decay-step", type=int, help="step from which --lr-final applies (default: "
                   + per_model("lr_decay_frac", lambda f: f"{float(f):.0%}% of the steps") + ")")
    t.add_argument("--weight-decay", type=float, help="AdamW's decoupled weight decay (default: "
                   f"{MODEL_DEFAULTS[MAKEMORE_MODELS[0]]['weight_decay']}, makemore's; the lecture's "
                   "models train with SGD, without it)")
    t.add_argument("--block-size", type=int, help=f"context length (default: {per_model('block_size')}); "
                   "for makemore's models the sequence length, the longest word plus one")
    t.add_argument("--n-embd", type=int, help=f"embedding size (default: {per_model('n_embd')})")
    t.add_argument("--n-hidden", type=int, help=f"hidden units (default: {per_model('n_hidden')})")
    t.add_argument("--n-embd2", type=int, help=f"hidden size (default: {per_model('n_embd2')})")
    t.add_argument("--n-layer", type=int, help=f"transformer blocks (default: {per_model('n_layer')})")
    t.add_argument("--n-head", type=int, help=f"attention heads (default: {per_model('n_head')})")
    t.add_argument("--checkpoint-every", type=int,
                   help=f"write checkpoint.npz every N steps (default: {per_model('checkpoint_every', '{:,}'.format)})")
    t.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR with its own "
                   "configuration (and, if given, a new --lr/--lr-final)")
    t.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads for the training steps (default: 1; the step's matrices are "
                        "small, and a second thread makes it slower whenever the machine is busy)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="split losses of a saved model",
                       description="Print the train/val/test cross-entropy (nats) of a checkpoint. "
                       "The split is rebuilt with the checkpoint's seed.")
    e.add_argument("--checkpoint", required=True, help="checkpoint.npz, or a run directory")
    e.add_argument("--data", help="names file (default: the one the model was trained on)")
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("sample", help="sample names from a saved model",
                       description="Print names one per line; a name found in the training split "
                       "is marked ' *', one in the validation or test split (a real name the model "
                       "was not trained on) ' +', and how many are new is said at the end.")
    s.add_argument("--checkpoint", required=True, help="checkpoint.npz, or a run directory")
    s.add_argument("-n", type=positive_int, default=20, help="how many names (default: 20)")
    s.add_argument("--seed", type=seed_int, default=0, help="sampling seed, >= 0 (default: 0)")
    s.add_argument("--prefix", default="", help="every name starts with these letters")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="divide the logits by T: below 1 is safer, above 1 more adventurous (default: 1)")
    s.add_argument("--top-k", type=positive_int, help="draw each character among the k most likely "
                                                      "only (default: all)")
    s.set_defaults(func=cmd_sample)

    for name, ep in plugins().items():  # listed for --help; main() hands them their arguments
        sub.add_parser(name, help=f"from {ep.value.split(':')[0]}; see numpy-ninja {name} --help")
    return parser


def plugins():
    """Commands other packages register under the entry-point group numpy_ninja.commands."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group="numpy_ninja.commands")}


def run_plugin(ep, argv):
    """A registered command, loaded only now, with the rest of the command line."""
    try:
        command = ep.load()
    except ImportError as e:
        raise CLIError(f"numpy-ninja {ep.name} is unavailable here ({e}); "
                       "pip install 'numpy-ninja[oracle]'") from None
    return command(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    registered = plugins()
    if argv and argv[0] in registered:
        args = argparse.Namespace(func=lambda _: run_plugin(registered[argv[0]], argv[1:]))
    else:
        args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()
        return status
    except ConfigError as e:
        fail(f"{option_name(e.name)}: {e.message}")
    except UserError as e:
        fail(str(e))
    except BrokenPipeError:  # the reader of our output went away (| head): stop quietly
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as e:  # one not caught where it happened: most likely writing our output
        fail(f"{e.filename}: {reason(e)}" if e.filename else reason(e))
        silence_stdout()
    except MemoryError:
        fail("out of memory")
    except KeyboardInterrupt:
        print("numpy-ninja: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR


def fail(message):
    error("numpy-ninja", message)


def silence_stdout():
    """Drop what is left of stdout: after an error or a closed pipe, flushing it at exit would
    print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a file (captured in a test)
        pass


if __name__ == "__main__":
    sys.exit(main())
