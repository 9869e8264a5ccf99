"""A training run: its state, and the steps that take it from the first step to a finished model
(training in stretches between checkpoints, BatchNorm calibration, evaluation, metrics and the
loss plot). `train` starts a RunState from a RunConfig and `resume` from a checkpoint; the rest
is the same.

What a run promises (README, "Reliability"): its directory is held by one writer at a time and
never holds another run's files (rundir.py); every checkpoint is finite and written atomically,
so the last one survives any failure (a full disk, a signal, divergence); Ctrl-C, SIGTERM or
SIGHUP saves and says how to resume; a model that stops being finite is never reported as
trained; a failure before the first checkpoint leaves no directory it created behind.
"""
import json
import shlex
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

from .checkpoint import NonFiniteModel, load_checkpoint, save_checkpoint
from .config import RunConfig
from .console import Progress
from .data import (Dataset, Vocab, count_examples, data_path, describe_data, load_words, sequence_length,
                   split_words, words_sha256)
from .files import reason, write_atomic
from .models import build_model
from .optim import optimizer_for
from .plot import MISSING, write_loss_plot
from .resources import check_memory
from .rundir import RunDirectory, RunError, Signals
from .train import NonFiniteLoss, blas_threads, calibrate_batchnorm, is_finite, split_loss, train_steps

SPLITS = ("train", "val", "test")
EXIT_INTERRUPTED = 130
PROGRESS_STEPS = 1000  # the training loop reports progress (and checks for a signal) this often


def loss_table(losses):
    """Split losses (nats) as a small table; an empty split shows as 'empty'."""
    rows = [f"{'split':<6} {'loss':>8}"]
    rows += [f"{k:<6} {'empty' if v is None else format(v, '.4f'):>8}" for k, v in losses.items()]
    return "\n".join(rows)


def with_sequence_length(config, words):
    """A sequence model's config with its block size: the data's longest word plus one (a
    --block-size given must reach it). Other configs as they are."""
    if not config.sequences:
        return config
    needed = sequence_length(words)
    if config.block_size is None:
        return replace(config, block_size=needed)
    if config.block_size < needed:
        raise RunError(f"--block-size {config.block_size} is too short for "
                       f"{describe_data(config.data)}: its longest word needs {needed} (the word and "
                       "its end); leave --block-size out to take it from the data")
    return config


def prepare_data(config, words):
    """The run's Dataset, once the memory it implies is known to fit."""
    vocab = Vocab.from_words(words)
    check_memory(config, len(vocab), count_examples(words, config.sequences),
                 n_calibrated=count_examples(split_words(words, config.seed)[0]) if config.batchnorm else 0)
    data = Dataset.from_words(data_path(config.data), words, config.block_size, config.seed,
                              config.sequences)
    n_train = len(data.splits["train"][1])
    if n_train < config.batch_size:
        what = "words" if config.sequences else "examples"
        raise RunError(f"{describe_data(config.data)}: the training split has {n_train} {what}, "
                       f"fewer than one batch of {config.batch_size}")
    return data


@dataclass
class RunState:
    """Where a run stands: its settings, data and model, the steps done and their batch losses,
    the training time so far, and the step of the checkpoint on disk (None: none yet)."""

    config: RunConfig
    data: Dataset
    model: object
    lossi: np.ndarray     # (config.steps,) float32: the batch loss of every step done
    step: int = 0
    seconds: float = 0.0
    saved: int = None
    optimizer_state: dict = None  # the optimizer's state_dict at `step` (None: a fresh one)

    @classmethod
    def fresh(cls, config):
        """Step 0 of a new run of `config`, on its data (whose hash it records)."""
        words = load_words(data_path(config.data))
        config = with_sequence_length(replace(config, data_sha256=words_sha256(words)), words)
        data = prepare_data(config, words)
        return cls(config, data, build_model(config, len(data.vocab)), np.zeros(config.steps, np.float32))

    @classmethod
    def from_checkpoint(cls, path, lr=None, lr_final=None):
        """The run in directory `path` where its checkpoint left it, with new rates from there on
        if given; its data must still be the words it was trained on."""
        ckpt = load_checkpoint(path)
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
        return cls(config, data, ckpt.model, lossi, ckpt.step, ckpt.seconds, ckpt.step,
                   ckpt.optimizer_state)


class Run:
    """One session of a run in its directory: trains the state from its step to config.steps,
    then calibrates, evaluates and writes metrics.json (which marks the run finished)."""

    def __init__(self, directory, state, quiet=False, threads=1):
        self.dir, self.state, self.quiet, self.threads = directory, state, quiet, threads
        self.optimizer = optimizer_for(state.config, state.model.parameters(), state.step)
        if state.optimizer_state:
            self.optimizer.load_state_dict(state.optimizer_state)

    def say(self, *lines):
        if not self.quiet:
            print(*lines, sep="\n", file=sys.stderr)

    def resume_command(self, *options):
        return " ".join(["numpy-ninja train --resume", shlex.quote(str(self.dir.path)), *options])

    def resume_hint(self):
        return f"resume with: {self.resume_command()}"

    def kept(self):
        if self.state.saved is None:
            return "nothing was saved"
        return f"{self.dir.checkpoint} still holds step {self.state.saved}; {self.resume_hint()}"

    def save(self):
        s = self.state
        try:
            save_checkpoint(self.dir.checkpoint, s.model, s.data.vocab, s.config, s.step, s.lossi,
                            s.seconds, self.optimizer.state_dict())
        except OSError as e:
            raise RunError(f"cannot write {self.dir.checkpoint} ({reason(e)}); {self.kept()}") from None
        s.saved = s.step

    def cannot_write(self, path, e):
        return RunError(f"cannot write {path} ({reason(e)}); the trained model is saved in "
                        f"{self.dir.checkpoint}; finish the run with: {self.resume_command()}")

    def diverged(self, what, at):
        """RunError for a model that stopped being finite at step `at`: the last finite checkpoint
        is kept, and the advice names the rates in force since it, halved."""
        config, saved = self.state.config, self.state.saved
        lr, lr_final = config.rates_at(saved or 0)
        options = ([f"--lr {lr / 2:g}"] if (saved or 0) < config.lr_decay_step else []) + (
            [f"--lr-final {lr_final / 2:g}"] if at >= config.lr_decay_step else [])
        if saved is None:
            return RunError(f"training diverged: {what}; no checkpoint had been written yet. Train "
                            f"again with a smaller learning rate, e.g. {' '.join(options)}")
        return RunError(f"training diverged: {what}; kept the last finite checkpoint, "
                        f"{self.dir.checkpoint} at step {saved}. Resume it with a smaller "
                        f"learning rate: {self.resume_command(*options)}")

    def overflowed(self):
        """What stopped being finite, for a message."""
        names = [k for k, a in self.state.model.state_dict().items() if not np.isfinite(a).all()]
        return f"{', '.join(names)} overflowed by step {self.state.step}"

    def execute(self, signals):
        """Train, then finish; returns the exit status."""
        s = self.state
        config, steps, every = s.config, s.config.steps, s.config.checkpoint_every
        Xtr, Ytr = s.data.splits["train"]
        what = "words" if config.sequences else "examples"
        self.say(f"{'resuming' if s.saved is not None else 'training'} {config.model} "
                 f"({self.optimizer.data.size:,} parameters, {config.dtype}, "
                 f"{type(self.optimizer).__name__}) on {len(Ytr):,} {what} "
                 f"from {describe_data(config.data)}; run directory {self.dir.path}")
        progress = Progress(None, total=steps, start=s.step, bar=True, quiet=self.quiet)
        t0, seconds0 = time.perf_counter(), s.seconds
        signals.graceful = True
        with blas_threads(self.threads):
            try:
                while s.step < steps:
                    stop = min(steps, (s.step // every + 1) * every,
                               (s.step // PROGRESS_STEPS + 1) * PROGRESS_STEPS)
                    s.step = train_steps(s.model, self.optimizer, Xtr, Ytr, config, s.step, stop,
                                         s.lossi, should_stop=lambda: signals.requested)
                    s.seconds = seconds0 + time.perf_counter() - t0
                    if signals.requested:
                        break
                    progress.update(s.step, f"loss {float(s.lossi[s.step - 1]):.4f}")
                    if s.step % every == 0 or s.step == steps:
                        self.save()
            except NonFiniteLoss as e:
                raise self.diverged(str(e), e.step) from None
            except NonFiniteModel:
                raise self.diverged(self.overflowed(), s.step - 1) from None
            finally:
                signals.graceful = False
                progress.close()
        if s.step < steps:
            try:
                self.save()
            except NonFiniteModel:
                raise self.diverged(self.overflowed(), s.step - 1) from None
            print(f"interrupted at step {s.step}/{steps}; saved {self.dir.checkpoint}\n"
                  f"{self.resume_hint()}", file=sys.stderr)
            return EXIT_INTERRUPTED
        return self.finish()

    @np.errstate(all="ignore")  # overflow is checked for below, not warned about
    def finish(self):
        s = self.state
        restart = (f"train again with a smaller --lr or --dtype float64 (the checkpoint {self.dir.checkpoint} "
                   "holds the trained, uncalibrated parameters)")
        if s.config.batchnorm:
            calibrate_batchnorm(s.model, s.data.splits["train"][0])
        if not is_finite(s.model):
            raise RunError(f"BatchNorm's running statistics overflowed in the calibration after "
                           f"training: the model is not usable; {restart}")
        self.save()
        losses = {k: split_loss(s.model, *s.data.splits[k]) for k in SPLITS}
        if not all(v is None or np.isfinite(v) for v in losses.values()):
            raise RunError(f"the trained model's split losses are not finite "
                           f"({', '.join(f'{k} {v}' for k, v in losses.items())}); {restart}")
        plot = self.dir.path / "loss.png"
        try:
            plotted = write_loss_plot(plot, s.lossi)
        except OSError as e:
            raise self.cannot_write(plot, e) from None
        metrics = dict(losses, steps=s.config.steps, parameters=int(self.optimizer.data.size),
                       seconds=round(s.seconds, 3), config=s.config.to_dict())
        text = (json.dumps(metrics, indent=2, allow_nan=False) + "\n").encode()
        try:
            write_atomic(self.dir.metrics, lambda f: f.write(text))
        except OSError as e:
            raise self.cannot_write(self.dir.metrics, e) from None
        print(loss_table(losses))
        print(f"\ntrained {s.config.steps:,} steps in {s.seconds:.1f} s")
        print(f"checkpoint  {self.dir.checkpoint}\nmetrics     {self.dir.metrics}")
        print(f"loss plot   {plot}" if plotted else f"loss plot   skipped: {MISSING}")
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
            self.dir.release(keep=self.state.saved is not None)


def train(config, out=None, quiet=False, threads=1):
    """A new run of `config` in `out` (default runs/<timestamp>). Returns the exit status."""
    with Signals() as signals:
        state = RunState.fresh(config)  # bad data or settings are refused before a directory is made
        return _session(signals, RunDirectory.create(out), lambda: state, False, quiet, threads)


def resume(path, lr=None, lr_final=None, quiet=False, threads=1):
    """Continue the run in `path` from its checkpoint, optionally with new rates from there on."""
    def state():
        if directory.metrics.exists():
            raise RunError(f"{path} has already finished; its results are in {directory.metrics}")
        return RunState.from_checkpoint(path, lr, lr_final)

    with Signals() as signals:
        directory = RunDirectory.existing(path)
        return _session(signals, directory, state, True, quiet, threads)


def _session(signals, directory, state, keep, quiet, threads):
    """Run state() in the held directory; if it cannot start, release the directory (keep: leave
    it, else remove what this run made)."""
    try:
        run = Run(directory, state(), quiet, threads)
    except BaseException:
        directory.release(keep=keep)
        raise
    return run.guarded(signals)
