"""Writing files without losing any."""
import os
from pathlib import Path


def write_atomic(path, write):
    """Call write(f) on a temporary file beside path, fsync it, then rename it over path: path
    holds either its old content or the new one, whatever fails (a full disk, a signal)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
