"""A training run: its directory, resuming, periodic checkpoints, signals, progress, BatchNorm
calibration, metrics and the loss plot.

What a run promises (README, "Reliability"): its directory is held by one writer at a time and
never holds another run's files; every checkpoint is finite and written atomically, so the last
one survives any failure (a full disk, a signal, divergence); Ctrl-C, SIGTERM or SIGHUP saves and
says how to resume; a model that stops being finite is never reported as trained; a failure
before the first checkpoint leaves no directory it created behind.
"""
import fcntl
import itertools
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .checkpoint import NonFiniteModel, load_checkpoint, save_checkpoint
from .data import Dataset, Vocab, count_examples, data_path, describe_data, load_words, split_words, words_sha256
from .files import make_dirs, reason, remove_dirs, write_atomic
from .models import build_model, parameter_count
from .optim import SGD
from .train import (BLOCK, NonFiniteLoss, blas_threads, calibrate_batchnorm, is_finite, split_loss,
                    train_steps)

SPLITS = ("train", "val", "test")
EXIT_INTERRUPTED = 130


class RunError(Exception):
    """One line for the user; exit status 1."""


# ---------------------------------------------------------------- memory

def physical_memory():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def human(n):
    """Bytes in binary units: '3.6 TiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if n < 1024:
            break
        n /= 1024
    else:
        unit = "YiB"
    return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"


def memory_needed(config, vocab_size, n_examples, training=True, n_calibrated=0):
    """{what: bytes} of arrays held at once by an evaluation (training=False) or a training whose
    BatchNorm calibration runs over n_calibrated examples: each term is an allocation made, so
    the sum is a lower bound of what is needed."""
    item = np.dtype(config.dtype).itemsize
    n_params = parameter_count(config, vocab_size)
    needs = {
        f"{n_params:,} parameters": item * n_params,
        f"{n_examples:,} examples of context {config.block_size}": 8 * n_examples * (config.block_size + 1),
    }
    if training:
        needs.update({
            f"the loss history of {config.steps:,} steps": 4 * config.steps,
            "the gradients": item * n_params,
            f"the batch indices of {BLOCK} steps": 8 * BLOCK * config.batch_size,
            "one batch's activations": item * config.batch_size * (config.block_size * config.n_embd
                                                                   + config.n_hidden),
            "the calibration's activations": item * n_calibrated * config.n_hidden,
        })
    return needs


def check_memory(config, vocab_size, n_examples, training=True, n_calibrated=0):
    """RunError when these settings cannot fit in this machine's memory, naming the largest need."""
    needs = memory_needed(config, vocab_size, n_examples, training, n_calibrated)
    total, have = sum(needs.values()), physical_memory()
    if total > have:
        what, most = max(needs.items(), key=lambda kv: kv[1])
        raise RunError(f"these settings need at least {human(total)} of memory ({human(most)} for "
                       f"{what}); this machine has {human(have)}")


# ---------------------------------------------------------------- the run directory

class RunDirectory:
    """A run directory held by this process for the run's life.

    Held with an exclusive flock on the directory itself, which the system releases when the
    process ends however it ends: a second writer (a train into the same --out, a second
    --resume of the run) is refused. release(keep=False) removes the directories this run made.
    """

    def __init__(self, path, created=()):
        self.path, self.created = Path(path), list(created)
        self.checkpoint = self.path / "checkpoint.npz"
        self.metrics = self.path / "metrics.json"
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise RunError(f"{self.path} is in use by another numpy-ninja train; wait for it to "
                           "finish or choose another --out") from None
        if not os.path.samestat(os.fstat(self.fd), os.stat(self.path)):  # removed and made anew meanwhile
            self.release(keep=True)
            raise RunError(f"{self.path} was replaced while it was being claimed; try again")

    @classmethod
    def create(cls, out):
        """--out DIR (made if missing; an existing one must be empty), or a new runs/<timestamp>,
        made with an exclusive mkdir so that simultaneous starts get different names."""
        path = Path("runs") if out is None else Path(out)
        try:
            if out is not None and path.exists() and not path.is_dir():
                raise RunError(f"{path} exists and is not a directory")
            created = make_dirs(path)
            if out is None:
                stamp = time.strftime("%Y%m%d-%H%M%S")
                for name in itertools.chain([stamp], (f"{stamp}-{k}" for k in itertools.count(2))):
                    try:
                        (path / name).mkdir()
                    except FileExistsError:
                        continue
                    path = path / name
                    break
                created.append(path)
            directory = cls(path, created)
            entries = set(os.listdir(path))
        except OSError as e:
            raise RunError(f"cannot create the run directory {path} ({reason(e)})") from None
        if entries:
            directory.release(keep=True)
            if entries & {"checkpoint.npz", "metrics.json"}:
                raise RunError(f"{path} already holds a run; continue it with --resume {path} "
                               "or choose another --out")
            raise RunError(f"{path} is not empty; choose a new or empty directory for the run")
        return directory

    @classmethod
    def existing(cls, path):
        """The directory of a run to resume."""
        path = Path(path)
        try:
            if not path.is_dir():
                raise RunError(f"{path}: not a run directory")
            return cls(path)
        except OSError as e:
            raise RunError(f"cannot open the run directory {path} ({reason(e)})") from None

    def release(self, keep):
        """Unlock; unless keep, first remove the (empty) directories this run made."""
        if not keep:
            remove_dirs(self.created)
        os.close(self.fd)


# ---------------------------------------------------------------- signals and progress

class Signals:
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) alike, unless they are ignored
    (nohup, a background job). While `graceful` (the training loop), the first asks the loop to
    stop at the next step boundary, so that the run saves its step; a second one, or any outside
    the loop (loading, calibration, evaluation, writing), raises KeyboardInterrupt at once."""

    def __init__(self):
        self.requested, self.graceful = False, False

    def __enter__(self):
        self.previous = {s: signal.signal(s, self.handle)
                         for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                         if signal.getsignal(s) is not signal.SIG_IGN}
        return self

    def handle(self, signum, frame):
        if self.requested or not self.graceful:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


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


# ---------------------------------------------------------------- files of a finished run

def write_loss_plot(path, lossi):
    """loss.png, atomically: the loss averaged per 1,000 steps on a log scale. False if
    matplotlib is missing."""
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
    try:
        ax.plot(np.arange(len(avg)) * k + k, avg)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
        ax.set_xlabel("step")
        ax.set_ylabel(f"training loss (mean of {k} steps)")
        fig.tight_layout()
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
    return True


def loss_table(losses):
    """Split losses (nats) as a small table; an empty split shows as 'empty'."""
    rows = [f"{'split':<6} {'loss':>8}"]
    rows += [f"{k:<6} {'empty' if v is None else format(v, '.4f'):>8}" for k, v in losses.items()]
    return "\n".join(rows)


# ---------------------------------------------------------------- the run

def prepare_data(config, words):
    """The run's Dataset, once the memory it implies is known to fit."""
    vocab = Vocab.from_words(words)
    check_memory(config, len(vocab), count_examples(words),
                 n_calibrated=count_examples(split_words(words, config.seed)[0]))
    data = Dataset.from_words(data_path(config.data), words, config.block_size, config.seed)
    n_train = len(data.splits["train"][1])
    if n_train < config.batch_size:
        raise RunError(f"{describe_data(config.data)}: the training split has {n_train} examples, "
                       f"fewer than one batch of {config.batch_size}")
    return data


class Run:
    """One session of a run: trains from `step` to config.steps, then calibrates, evaluates and
    writes metrics.json (which marks the run finished)."""

    def __init__(self, directory, config, data, model, step, lossi, seconds, saved, quiet, threads):
        self.dir, self.config, self.data, self.model = directory, config, data, model
        self.optimizer = SGD(model.parameters(), config.learning_rate(step))
        self.step, self.lossi, self.seconds = step, lossi, seconds
        self.saved = saved  # the step of the checkpoint on disk (None: none yet)
        self.quiet, self.threads = quiet, threads

    def say(self, *lines):
        if not self.quiet:
            print(*lines, sep="\n", file=sys.stderr)

    def resume_command(self, *options):
        return " ".join(["numpy-ninja train --resume", shlex.quote(str(self.dir.path)), *options])

    def resume_hint(self):
        return f"resume with: {self.resume_command()}"

    def kept(self):
        if self.saved is None:
            return "nothing was saved"
        return f"{self.dir.checkpoint} still holds step {self.saved}; {self.resume_hint()}"

    def save(self):
        try:
            save_checkpoint(self.dir.checkpoint, self.model, self.data.vocab, self.config, self.step,
                            self.lossi, self.seconds)
        except OSError as e:
            raise RunError(f"cannot write {self.dir.checkpoint} ({reason(e)}); {self.kept()}") from None
        self.saved = self.step

    def cannot_write(self, path, e):
        return RunError(f"cannot write {path} ({reason(e)}); the trained model is saved in "
                        f"{self.dir.checkpoint}; finish the run with: {self.resume_command()}")

    def diverged(self, what, at):
        """RunError for a model that stopped being finite at step `at`: the last finite checkpoint
        is kept, and the advice names the rates in force since it, halved."""
        start = self.saved or 0
        lr, lr_final = self.config.rates_at(start)
        decay = self.config.lr_decay_step
        options = ([f"--lr {lr / 2:g}"] if start < decay else []) + (
            [f"--lr-final {lr_final / 2:g}"] if at >= decay else [])
        if self.saved is None:
            return RunError(f"training diverged: {what}; no checkpoint had been written yet. Train "
                            f"again with a smaller learning rate, e.g. {' '.join(options)}")
        return RunError(f"training diverged: {what}; kept the last finite checkpoint, "
                        f"{self.dir.checkpoint} at step {self.saved}. Resume it with a smaller "
                        f"learning rate: {self.resume_command(*options)}")

    def overflowed(self):
        """What stopped being finite, for a message."""
        names = [k for k, a in self.model.state_dict().items() if not np.isfinite(a).all()]
        return f"{', '.join(names)} overflowed by step {self.step}"

    def execute(self, signals):
        """Train, then finish; returns the exit status."""
        config, steps, every = self.config, self.config.steps, self.config.checkpoint_every
        Xtr, Ytr = self.data.splits["train"]
        self.say(f"{'resuming' if self.saved is not None else 'training'} {config.model} "
                 f"({self.optimizer.data.size:,} parameters, {config.dtype}) on {len(Ytr):,} examples "
                 f"from {describe_data(config.data)}; run directory {self.dir.path}")
        progress = Progress(self.step, steps, self.quiet)
        t0, seconds0 = time.perf_counter(), self.seconds
        signals.graceful = True
        with blas_threads(self.threads):
            try:
                while self.step < steps:
                    stop = min(steps, (self.step // every + 1) * every, (self.step // 1000 + 1) * 1000)
                    self.step = train_steps(self.model, self.optimizer, Xtr, Ytr, config, self.step, stop,
                                            self.lossi, should_stop=lambda: signals.requested)
                    self.seconds = seconds0 + time.perf_counter() - t0
                    if signals.requested:
                        break
                    progress.update(self.step, float(self.lossi[self.step - 1]))
                    if self.step % every == 0 or self.step == steps:
                        self.save()
            except NonFiniteLoss as e:
                raise self.diverged(str(e), e.step) from None
            except NonFiniteModel:
                raise self.diverged(self.overflowed(), self.step - 1) from None
            finally:
                signals.graceful = False
                progress.close()
        if self.step < steps:
            try:
                self.save()
            except NonFiniteModel:
                raise self.diverged(self.overflowed(), self.step - 1) from None
            print(f"interrupted at step {self.step}/{steps}; saved {self.dir.checkpoint}\n"
                  f"{self.resume_hint()}", file=sys.stderr)
            return EXIT_INTERRUPTED
        return self.finish()

    @np.errstate(all="ignore")  # overflow is checked for below, not warned about
    def finish(self):
        config = self.config
        restart = (f"train again with a smaller --lr or --dtype float64 (the checkpoint {self.dir.checkpoint} "
                   "holds the trained, uncalibrated parameters)")
        calibrate_batchnorm(self.model, self.data.splits["train"][0])
        if not is_finite(self.model):
            raise RunError(f"BatchNorm's running statistics overflowed in the calibration after "
                           f"training: the model is not usable; {restart}")
        self.save()
        losses = {k: split_loss(self.model, *self.data.splits[k]) for k in SPLITS}
        if not all(v is None or np.isfinite(v) for v in losses.values()):
            raise RunError(f"the trained model's split losses are not finite "
                           f"({', '.join(f'{k} {v}' for k, v in losses.items())}); {restart}")
        plot = self.dir.path / "loss.png"
        try:
            plotted = write_loss_plot(plot, self.lossi)
        except OSError as e:
            raise self.cannot_write(plot, e) from None
        metrics = dict(losses, steps=config.steps, parameters=int(self.optimizer.data.size),
                       seconds=round(self.seconds, 3), config=config.to_dict())
        text = (json.dumps(metrics, indent=2, allow_nan=False) + "\n").encode()
        try:
            write_atomic(self.dir.metrics, lambda f: f.write(text))
        except OSError as e:
            raise self.cannot_write(self.dir.metrics, e) from None
        print(loss_table(losses))
        print(f"\ntrained {config.steps:,} steps in {self.seconds:.1f} s")
        print(f"checkpoint  {self.dir.checkpoint}\nmetrics     {self.dir.metrics}")
        if plotted:
            print(f"loss plot   {plot}")
        else:
            print("loss plot   skipped: matplotlib is not installed (pip install 'numpy-ninja[plot]')")
        return 0

    def guarded(self, signals):
        """execute(), with an interrupt outside the loop reported with what was kept, and the
        directory released (and removed, if this run made it and nothing was saved)."""
        try:
            return self.execute(signals)
        except KeyboardInterrupt:
            print(f"interrupted; {self.kept()}", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            self.dir.release(keep=self.saved is not None)


def train(config, out=None, quiet=False, threads=1):
    """A new run of `config` in `out` (default runs/<timestamp>). Returns the exit status."""
    with Signals() as signals:
        words = load_words(data_path(config.data))
        config = replace(config, data_sha256=words_sha256(words))
        data = prepare_data(config, words)
        model = build_model(config, len(data.vocab))
        directory = RunDirectory.create(out)
        try:
            run = Run(directory, config, data, model, 0, np.zeros(config.steps, np.float32), 0.0, None,
                      quiet, threads)
        except BaseException:
            directory.release(keep=False)
            raise
        return run.guarded(signals)


def resume(path, lr=None, lr_final=None, quiet=False, threads=1):
    """Continue the run in `path` from its checkpoint, optionally with new rates from there on."""
    with Signals() as signals:
        directory = RunDirectory.existing(path)
        try:
            if directory.metrics.exists():
                raise RunError(f"{path} has already finished; its results are in {directory.metrics}")
            ckpt = load_checkpoint(directory.checkpoint)
            config = ckpt.config
            if lr is not None or lr_final is not None:
                config = config.with_rates(ckpt.step, lr, lr_final)
            words = load_words(data_path(config.data))
            if words_sha256(words) != config.data_sha256:
                raise RunError(f"{describe_data(config.data)} is not the data {path} was trained on "
                               "(its words changed); resume needs the same word list")
            data = prepare_data(config, words)
            if data.vocab != ckpt.vocab:
                raise RunError(f"{describe_data(config.data)}: its vocabulary does not match the checkpoint's")
            lossi = np.zeros(config.steps, np.float32)
            lossi[:ckpt.step] = ckpt.lossi
            run = Run(directory, config, data, ckpt.model, ckpt.step, lossi, ckpt.seconds, ckpt.step,
                      quiet, threads)
        except BaseException:
            directory.release(keep=True)
            raise
        return run.guarded(signals)
