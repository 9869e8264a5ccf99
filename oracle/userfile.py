"""A user's Python file (a learner's solution, a layer to check), imported as a fresh module, with
every way it can fail to import said in one line. Imports neither torch nor numpy."""
import importlib.util
import sys
import traceback
from contextlib import redirect_stdout
from pathlib import Path


class UserFileError(ValueError):
    """The file cannot be used (one line for the user)."""


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
