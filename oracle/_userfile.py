"""A user's Python file (a learner's solution, a layer to check), imported as a fresh module, with
every way it can fail to import said in one line; and a cap on the memory user code may take.
Private to oracle; imports neither torch nor numpy."""
import importlib.util
import os
import resource
import sys
import traceback
from contextlib import redirect_stdout
from pathlib import Path

from numpy_ninja.console import UserError


class UserFileError(UserError, ValueError):
    """The file cannot be used."""


def describe(error, filename=None):
    """'Type: message', with the line of `filename` it was raised at."""
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if filename and Path(f.filename).resolve() == Path(filename).resolve()]
    return text + (f" (line {frames[-1].lineno})" if frames else "")


def import_file(path):
    """Import the file as a fresh module; its directory is importable meanwhile, and what it
    prints goes to stderr (stdout may be a report). Raises UserFileError."""
    path = Path(path)
    if not path.is_file():
        raise UserFileError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
    spec = importlib.util.spec_from_file_location(f"user_{abs(hash(str(path.resolve())))}", path)
    if spec is None:
        raise UserFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        with redirect_stdout(sys.stderr):
            spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UserFileError(f"{path}:{e.lineno}: does not import: SyntaxError: {e.msg}") from None
    except (Exception, SystemExit) as e:
        raise UserFileError(f"{path} does not import: {describe(e, path)}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def available_memory():
    """Bytes this process can still take: MemAvailable on Linux, else the machine's memory."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cap_memory(most=None):
    """The user's code runs in this process: cap the process's address space at what it uses now
    plus the memory still available (or `most` bytes, if fewer), so that a layer or a solution
    asking for more fails with a MemoryError (said in one line) instead of swapping the machine to
    a halt."""
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")  # address space mapped now
    cap = used + min(available_memory(), most or available_memory())
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft == resource.RLIM_INFINITY or soft > cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
