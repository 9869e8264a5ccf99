"""Writing files without losing any: atomic replacement, directories made and removed only by
whoever made them, and file-system errors as one line."""
import os
from pathlib import Path


def reason(e):
    """An OSError in a few words: 'No space left on device', 'Permission denied', ..."""
    return e.strerror or str(e)


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


def make_dirs(path):
    """mkdir -p path; returns the directories this call created, outermost first (an existing
    directory, or one another process creates meanwhile, is not in the list)."""
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    created = []
    for p in reversed(missing):
        try:
            p.mkdir()
            created.append(p)
        except FileExistsError:
            pass
    return created


def remove_dirs(created):
    """Remove the directories make_dirs created, innermost first, as long as they are empty."""
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            return
