"""What the oracle's commands (compare, check, check-layer) share: the install hint with the pinned
torch, one thread for torch and BLAS, and the --out directory a report is written into. Private to
oracle; imports numpy_ninja, and torch only inside one_thread."""
import importlib.metadata
import importlib.util
import tempfile

from numpy_ninja.console import UserError
from numpy_ninja.files import make_dirs, reason, remove_dirs, write_atomic
from numpy_ninja.train import blas_threads


def torch_requirement():
    """The torch requirement of the `oracle` extra as the installed package declares it
    (setup.cfg is its one source), e.g. 'torch==2.13.0'."""
    try:
        for req in importlib.metadata.requires("numpy-ninja") or ():
            name, _, marker = req.partition(";")
            if name.strip().startswith("torch") and "oracle" in marker:
                return name.strip()
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        pass
    return "torch"


def install_hint():
    return f"pip install 'numpy-ninja[oracle]' ({torch_requirement()})"


def missing(module):
    """Whether `module` cannot be imported here (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is None
    except ImportError:  # a finder that refuses it
        return True


def one_thread():
    """torch on one thread from now on; a context in which NumPy's BLAS runs on one thread. The
    oracle's tensors are tiny: a second thread gains nothing, and on a busy machine the first
    waits for it (the README's "Threads")."""
    import torch

    torch.set_num_threads(1)
    return blas_threads(1)


class OutDir:
    """A report's --out directory: made (and checked writable) before the long work runs, so a bad
    --out costs nothing; removed again, with what was made for it, unless something was written."""

    def __init__(self, path):
        self.path, self.written = path, False
        try:
            if path.exists() and not path.is_dir():
                raise UserError(f"--out {path} exists and is not a directory")
            self.created = make_dirs(path)
            tempfile.NamedTemporaryFile(dir=path).close()
        except OSError as e:
            raise UserError(f"cannot write into --out {path} ({reason(e)})") from None

    def write(self, name, text):
        """path/name holds text, written atomically."""
        data = text.encode()
        try:
            write_atomic(self.path / name, lambda f: f.write(data))
        except OSError as e:
            raise UserError(f"cannot write the report into --out {self.path} ({reason(e)})") from None
        self.written = True

    def close(self):
        if not self.written:
            remove_dirs(self.created)
