"""A run's directory and its lifetime: held by one writer at a time, made and removed only by the
run that made it, and the signals that stop a run politely (Ctrl-C, SIGTERM, SIGHUP)."""
import fcntl
import itertools
import os
import signal
import time
from pathlib import Path

from .console import UserError
from .files import make_dirs, reason, remove_dirs


class RunError(UserError):
    """A run that cannot start or go on."""


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


# ---------------------------------------------------------------- signals

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
