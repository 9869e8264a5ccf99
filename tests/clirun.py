"""Running `numpy-ninja` as a user does: in a fresh interpreter, with torch unimportable."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from torchfree import BLOCK_TORCH, blocking

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--n-embd", "4", "--n-hidden", "16", "--batch-size", "8", "--quiet"]
# torch and matplotlib unimportable: for runs whose plot is not under test (importing matplotlib
# is most of a short run's time; the run then says the plot was skipped)
NO_PLOT = blocking("torch", "oracle", "matplotlib")
TORCH_FREE = 'assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "oracle")]'


def code_for(args, block):
    return block + textwrap.dedent(f"""
        from numpy_ninja.cli import main
        rc = main({[str(a) for a in args]!r})
        {TORCH_FREE}
        sys.exit(rc)
    """)


def run(*args, timeout=120, block=BLOCK_TORCH, cwd=ROOT, preexec_fn=None):
    """`numpy-ninja ARGS`; asserts torch was not imported. preexec_fn: set limits in the child."""
    return subprocess.run([sys.executable, "-c", code_for(args, block)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, preexec_fn=preexec_fn)


def start(*args, block=BLOCK_TORCH, cwd=ROOT):
    """`numpy-ninja ARGS` in the background; its stderr is a pipe to read progress from."""
    return subprocess.Popen([sys.executable, "-c", code_for(args, block)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def run_many(*commands, timeout=120, block=BLOCK_TORCH, preexec_fn=None, torch_free=True):
    """Several `numpy-ninja ARGS` through main() in one interpreter (one start-up instead of
    many), as the console script calls it. Returns [(exit status, stdout, stderr)] in order.
    torch_free: assert that neither torch nor the oracle was imported (False for the oracle's
    commands, with a block that lets them import)."""
    code = block + textwrap.dedent(f"""
        import contextlib, io, json
        from numpy_ninja.cli import main
        results = []
        for args in {[[str(a) for a in c] for c in commands]!r}:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(args)
                except SystemExit as e:  # argparse's usage errors
                    rc = e.code
            results.append((rc, out.getvalue(), err.getvalue()))
        {TORCH_FREE if torch_free else ""}
        print(json.dumps(results))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT, preexec_fn=preexec_fn)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def one_line_error(result, status=1):
    """An (exit status, stdout, stderr) of a refused command: one line, the status, no traceback.
    (Usage errors, status 2, come from `numpy-ninja COMMAND: error:`.)"""
    rc, _, err = result
    return (rc == status and err.count("\n") == 1 and err.startswith("numpy-ninja")
            and ": error: " in err and "Traceback" not in err)


def shipped_at(path):
    """Code that makes the shipped names list live at `path`, as a reinstall would move it."""
    return (f"import numpy_ninja.data, pathlib; "
            f"numpy_ninja.data.default_data_path = lambda: pathlib.Path({str(path)!r})\n")
