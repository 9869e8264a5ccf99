"""A learner's solution: loading the file, and calling its functions so that nothing they do
(raise, print, return something that is not an array) stops the grading."""
import importlib.util
import inspect
import sys
import traceback
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import torch

from oracle.blame import Failed

FUNCTIONS = ("exercise1", "exercise2", "exercise3", "exercise4")
BACKENDS = ("numpy", "torch")


class SolutionError(Exception):
    """The solution cannot be used at all (one line for the user)."""


def load(path):
    """Import the solution file as a fresh module; its directory is importable meanwhile."""
    path = Path(path)
    if not path.is_file():
        raise SolutionError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
    spec = importlib.util.spec_from_file_location(f"solution_{abs(hash(str(path.resolve())))}", path)
    if spec is None:
        raise SolutionError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        with redirect_stdout(sys.stderr):
            spec.loader.exec_module(module)
    except SyntaxError as e:
        raise SolutionError(f"{path}:{e.lineno}: does not import: SyntaxError: {e.msg}") from None
    except (Exception, SystemExit) as e:
        raise SolutionError(f"{path} does not import: {describe(e, path)}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def solution(path_or_module):
    """(module, backend, file name) of a path or of any object with exercise functions (a module,
    a namespace)."""
    module = load(path_or_module) if isinstance(path_or_module, (str, Path)) else path_or_module
    backend = getattr(module, "BACKEND", "numpy")
    if backend not in BACKENDS:
        raise SolutionError(f"BACKEND must be 'numpy' or 'torch', not {backend!r}")
    if not any(callable(getattr(module, f, None)) for f in FUNCTIONS):
        raise SolutionError("the solution defines none of " + ", ".join(FUNCTIONS))
    filename = getattr(module, "__file__", None) if isinstance(module, ModuleType) else None
    return module, backend, filename


def describe(error, filename=None):
    """'Type: message', with the line of the solution file it was raised at."""
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if filename and Path(f.filename).resolve() == Path(filename).resolve()]
    return text + (f" (line {frames[-1].lineno})" if frames else "")


def call(fn, args, filename=None, keep_locals=False):
    """fn(*args) -> (result, its local variables when it returned, None), or (None, {}, message)
    when it raised. Its prints go to stderr; warnings are silenced. The local variables are kept
    (keep_locals) with a profile hook, unless another profiler runs."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    seen = {}

    def profile(frame, event, arg):
        if event == "return" and frame.f_code is code:
            seen.update(frame.f_locals)

    hook = keep_locals and code is not None and sys.getprofile() is None
    try:
        with redirect_stdout(sys.stderr), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if hook:
                sys.setprofile(profile)
            result = fn(*args)
    except (Exception, SystemExit) as e:
        return None, {}, describe(e, filename)
    finally:
        if hook:
            sys.setprofile(None)
    return result, seen, None


def as_array(value):
    """A returned gradient as a NumPy array; None stays None (missing); anything else is Failed."""
    if value is None or isinstance(value, np.ndarray):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, np.generic):
        return np.asarray(value)
    return Failed(f"returned {type(value).__name__}, not an array")


def hand_out(value, backend):
    """A fresh copy of one input, as the backend's array type."""
    if isinstance(value, int):
        return value
    value = np.array(value)
    return torch.from_numpy(value) if backend == "torch" else value


def namespace(oracle, backend):
    """The `t` of exercises 1 and 4: Xb, Yb, n, the parameters and every forward tensor."""
    items = dict(oracle.t, Xb=oracle.Xb, Yb=oracle.Yb, n=oracle.n,
                 loss=np.array(oracle.loss, oracle.dtype))
    return SimpleNamespace(**{k: hand_out(v, backend) for k, v in items.items()})
