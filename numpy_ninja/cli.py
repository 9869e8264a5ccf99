"""The numpy-ninja command: train, eval and sample with NumPy alone."""
import argparse
import importlib.metadata
import json
import math
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, NonFiniteModel, load_checkpoint, save_checkpoint
from .config import DEFAULTS, DTYPES, MODEL_DEFAULTS, ConfigError, RunConfig
from .data import (DataError, Dataset, build_dataset, data_path, data_ref, default_data_path, describe_data,
                   load_words, split_words, words_sha256)
from .models import build_model
from .optim import SGD
from .sample import sample_names
from .train import NonFiniteLoss, calibrate_batchnorm, split_loss, train_steps

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130
SPLITS = ("train", "val", "test")


class CLIError(Exception):
    """One line for the user; exit status 1."""


# ---------------------------------------------------------------- train

def option(name):
    return "--" + name.replace("_", "-")


TRAIN_SETTINGS = ("data", "model", "steps", "batch_size", "seed", "dtype", "lr", "lr_final",
                  "lr_decay_step", "block_size", "n_embd", "n_hidden", "checkpoint_every")


def config_from_args(args):
    """The run configuration: RunConfig's defaults, overridden by what the user gave."""
    given = {k: getattr(args, k) for k in TRAIN_SETTINGS if getattr(args, k) is not None}
    if "data" in given:
        given["data"] = data_ref(given["data"])
    return RunConfig(**given)


def new_run_dir(out):
    """The run directory: --out, or a new timestamped folder under runs/. Never an existing run."""
    path = Path(out) if out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    if (path / "checkpoint.npz").exists() or (path / "metrics.json").exists():
        raise CLIError(f"{path} already holds a run; continue it with --resume {path} "
                       "or choose another --out")
    if path.exists() and not path.is_dir():
        raise CLIError(f"{path} exists and is not a directory")
    return path


class Progress:
    """A tqdm bar on a terminal; a plain line every `every` steps otherwise; nothing when quiet."""

    def __init__(self, start, total, quiet):
        self.quiet, self.tty, self.total = quiet, sys.stderr.isatty(), total
        self.t0, self.s0 = time.perf_counter(), start
        self.every = max(1000, total // 20)  # plain lines: about twenty per run
        self.next = start + self.every
        self.bar = None
        if not quiet and self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def update(self, step, loss):
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif not self.quiet and (step >= self.next or step == self.total):
            self.next = step + self.every
            rate = (step - self.s0) / max(time.perf_counter() - self.t0, 1e-9)
            left = (self.total - step) / rate if rate else float("inf")
            print(f"step {step:>7}/{self.total}  loss {loss:.4f}  {rate:,.0f} steps/s  "
                  f"{left:,.0f} s left", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class StopOnSigint:
    """The first Ctrl-C asks training to stop at the next step boundary; a second one aborts."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


def write_loss_plot(path, lossi):
    """loss.png: the loss averaged per 1,000 steps on a log scale. False if matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter
    except ImportError:
        return False
    k = 1000 if len(lossi) >= 1000 else 1
    avg = np.asarray(lossi[:len(lossi) // k * k], np.float64).reshape(-1, k).mean(1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(np.arange(len(avg)) * k + k, avg)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    ax.set_xlabel("step")
    ax.set_ylabel(f"training loss (mean of {k} steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def cmd_train(args):
    resumed = args.resume is not None
    if resumed:
        given = [option(k) for k in TRAIN_SETTINGS if getattr(args, k) is not None]
        if given or args.out:
            raise CLIError(f"--resume continues with the run's own configuration; drop "
                           f"{' '.join(given + (['--out'] if args.out else []))}")
        run_dir = Path(args.resume)
        ckpt = load_checkpoint(run_dir / "checkpoint.npz")
        model, vocab, config, start, done = ckpt.model, ckpt.vocab, ckpt.config, ckpt.step, ckpt.lossi
        seconds0 = ckpt.seconds
        if (run_dir / "metrics.json").exists():
            raise CLIError(f"{run_dir} has already finished ({config.steps} steps)")
        words = load_words(data_path(config.data))
        if words_sha256(words) != config.data_sha256:
            raise CLIError(f"{describe_data(config.data)} is not the data {run_dir} was trained on "
                           "(its words changed); resume needs the same word list")
        data = Dataset.from_words(data_path(config.data), words, config.block_size, config.seed)
        if data.vocab != vocab:
            raise CLIError(f"{describe_data(config.data)}: its vocabulary no longer matches the checkpoint's")
    else:
        config = config_from_args(args)
        words = load_words(data_path(config.data))
        config = replace(config, data_sha256=words_sha256(words))
        data = Dataset.from_words(data_path(config.data), words, config.block_size, config.seed)
        vocab = data.vocab
        model = build_model(config, len(vocab))
        run_dir, start, done, seconds0 = new_run_dir(args.out), 0, np.zeros(0, np.float32), 0.0
    Xtr, Ytr = data.splits["train"]
    if len(Ytr) < config.batch_size:
        raise CLIError(f"{describe_data(config.data)}: the training split has {len(Ytr)} examples, "
                       f"fewer than one batch of {config.batch_size}")
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.npz"
    steps = config.steps
    lossi = np.zeros(steps, np.float32)
    lossi[:start] = done
    n_params = sum(p.data.size for p in model.parameters())
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    say(f"{'resuming' if resumed else 'training'} {config.model} ({n_params:,} parameters, "
        f"{config.dtype}) on {len(Ytr):,} examples from {describe_data(config.data)}; run directory {run_dir}")

    t0 = time.perf_counter()
    every = config.checkpoint_every
    optimizer = SGD(model.parameters(), config.lr)
    progress = Progress(start, steps, args.quiet)
    step = start
    try:
        with StopOnSigint() as sigint:
            while step < steps:
                stop = min(steps, (step // every + 1) * every, (step // 1000 + 1) * 1000)
                step = train_steps(model, optimizer, Xtr, Ytr, config, step, stop, lossi,
                                   should_stop=lambda: sigint.requested)
                if sigint.requested:
                    break
                progress.update(step, float(lossi[step - 1]))
                if step % every == 0 or step == steps:
                    save_checkpoint(ckpt, model, vocab, config, step, lossi, seconds0 + time.perf_counter() - t0)
    except NonFiniteLoss as e:
        progress.close()
        last = f"the last good checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint was written"
        raise CLIError(f"{e}; training stopped ({last}). Try a smaller --lr.") from None
    progress.close()
    seconds = seconds0 + time.perf_counter() - t0  # over every session of the run
    if step < steps:
        save_checkpoint(ckpt, model, vocab, config, step, lossi, seconds)
        print(f"interrupted at step {step}/{steps}; saved {ckpt}\n"
              f"resume with: numpy-ninja train --resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED

    calibrate_batchnorm(model, Xtr)
    save_checkpoint(ckpt, model, vocab, config, step, lossi, seconds)
    losses = {k: split_loss(model, *data.splits[k]) for k in SPLITS}
    metrics = dict(losses, steps=steps, parameters=n_params, seconds=round(seconds, 3), config=config.to_dict())
    plotted = write_loss_plot(run_dir / "loss.png", lossi)
    write_json_atomic(run_dir / "metrics.json", metrics)
    print(loss_table(losses))
    print(f"\ntrained {steps:,} steps in {seconds:.1f} s")
    print(f"checkpoint  {ckpt}\nmetrics     {run_dir / 'metrics.json'}")
    if plotted:
        print(f"loss plot   {run_dir / 'loss.png'}")
    else:
        print("loss plot   skipped: matplotlib is not installed (pip install 'numpy-ninja[plot]')")
    return 0


def write_json_atomic(path, obj):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def loss_table(losses):
    rows = [f"{'split':<6} {'loss':>8}"] + [f"{k:<6} {v:>8.4f}" for k, v in losses.items()]
    return "\n".join(rows)


# ---------------------------------------------------------------- eval, sample

def check_vocab(words, vocab, path):
    unknown = sorted(set("".join(words)) - set(vocab.chars))
    if unknown:
        raise CLIError(f"{path}: characters the model has never seen: {''.join(unknown)!r}")


def run_words(config, given):
    """The words to evaluate a run on: `given` (--data) as it is, else the run's own data, which
    must still be the list it was trained on."""
    if given is not None:
        return given, load_words(given)
    path = data_path(config.data)
    words = load_words(path)
    if words_sha256(words) != config.data_sha256:
        raise CLIError(f"{describe_data(config.data)} has changed since the model was trained (its "
                       f"words differ); to evaluate on it as it is now, pass --data {path}")
    return path, words


def cmd_eval(args):
    ckpt = load_checkpoint(args.checkpoint)
    model, vocab, config = ckpt.model, ckpt.vocab, ckpt.config
    path, words = run_words(config, args.data)
    check_vocab(words, vocab, path)
    parts = dict(zip(SPLITS, split_words(words, config.seed)))
    losses = {k: split_loss(model, *build_dataset(ws, vocab, config.block_size))
              for k, ws in parts.items()}
    print(loss_table(losses))
    return 0


def cmd_sample(args):
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise CLIError(f"--temperature must be a finite number > 0, got {args.temperature}")
    ckpt = load_checkpoint(args.checkpoint)
    model, vocab, config = ckpt.model, ckpt.vocab, ckpt.config
    unknown = sorted(set(args.prefix) - set(vocab.chars))
    if unknown:
        raise CLIError(f"--prefix: characters the model has never seen: {''.join(unknown)!r}")
    names = sample_names(model, vocab, config.block_size, args.n, args.seed,
                         prefix=args.prefix, temperature=args.temperature)
    try:
        train_words = set(split_words(run_words(config, None)[1], config.seed)[0])
    except (DataError, CLIError) as e:
        train_words, note = None, f"(new names are not marked: {e})"
    for name in names:
        print(f"{name} *" if train_words is not None and name in train_words else name)
    if train_words is None:
        print(note, file=sys.stderr)
    else:
        seen = sum(name in train_words for name in names)
        print(f"* in the training data ({seen} of {len(names)})", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- parser

def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def per_model(key, show=str):
    return "; ".join(f"{show(d[key])} for {m}" for m, d in MODEL_DEFAULTS.items())


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
                       description=f"Train with SGD on our own gradients. Defaults reproduce the "
                       f"lecture's exercise 4: context {d.block_size}, embedding {d.n_embd}, hidden "
                       f"{d.n_hidden}, batch {d.batch_size}, {d.steps:,} steps, lr {d.lr} then "
                       f"{d.lr_final} from step {d.lr_decay_step:,}.")
    t.add_argument("--data", help=f"names file, one word per line (default: the shipped list, now "
                                  f"{default_data_path()})")
    t.add_argument("--model", choices=tuple(MODEL_DEFAULTS), help=f"network (default: {d.model})")
    t.add_argument("--out", help="run directory (default: a new folder runs/YYYYmmdd-HHMMSS)")
    t.add_argument("--steps", type=int, help=f"SGD steps (default: {d.steps})")
    t.add_argument("--batch-size", type=int, help=f"examples per step, at least 2 (default: {d.batch_size})")
    t.add_argument("--seed", type=int, help=f"seed of the split, the initialisation and the batches, "
                                            f">= 0 (default: {d.seed})")
    t.add_argument("--dtype", choices=DTYPES, help=f"floating-point type (default: {d.dtype})")
    t.add_argument("--lr", type=float, help=f"learning rate (default: {d.lr})")
    t.add_argument("--lr-final", type=float, help=f"learning rate from the decay step on (default: {d.lr_final})")
    t.add_argument("--lr-decay-step", type=int, help="step from which --lr-final applies (default: "
                   + per_model("lr_decay_frac", lambda f: f"{float(f):.0%}% of the steps") + ")")
    t.add_argument("--block-size", type=int, help=f"context length (default: {per_model('block_size')})")
    t.add_argument("--n-embd", type=int, help=f"embedding size (default: {per_model('n_embd')})")
    t.add_argument("--n-hidden", type=int, help=f"hidden units (default: {per_model('n_hidden')})")
    t.add_argument("--checkpoint-every", type=int,
                   help=f"write checkpoint.npz every N steps (default: {d.checkpoint_every})")
    t.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR with its own configuration")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="split losses of a saved model",
                       description="Print the train/val/test cross-entropy (nats) of a checkpoint. "
                       "The split is rebuilt with the checkpoint's seed.")
    e.add_argument("--checkpoint", required=True, help="checkpoint.npz, or a run directory")
    e.add_argument("--data", help="names file (default: the one the model was trained on)")
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("sample", help="sample names from a saved model",
                       description="Print names one per line; names found in the training split "
                       "are marked with ' *'.")
    s.add_argument("--checkpoint", required=True, help="checkpoint.npz, or a run directory")
    s.add_argument("-n", type=positive_int, default=20, help="how many names (default: 20)")
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    s.add_argument("--prefix", default="", help="every name starts with these letters")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="divide the logits by T: below 1 is safer, above 1 more adventurous (default: 1)")
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
        return args.func(args)
    except ConfigError as e:
        print(f"numpy-ninja: error: {option(e.name)}: {e.message}", file=sys.stderr)
        return EXIT_ERROR
    except (CLIError, DataError, CheckpointError, NonFiniteModel) as e:
        print(f"numpy-ninja: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("numpy-ninja: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
