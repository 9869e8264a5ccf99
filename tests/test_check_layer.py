"""oracle.check_layer and `numpy-ninja check-layer`: a correct user layer passes with and without a
twin; layers broken only for some inputs fail with a small counterexample naming the tensor; a
check that cannot run is one line and exit 2."""
import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import numpy_ninja as nn
from numpy_ninja.cli import main
from oracle import check_layer
from oracle.reference.twin import build_twin
from torchfree import blocking

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "rmsnorm.py"


# ---------------------------------------------------------------- layers with a planted mistake

class LinearWrongIn3D(nn.Linear):
    """The weight gradient of a (N, L, C) input summed over the last position only."""

    def backward(self, dout):
        dx = super().backward(dout)
        if dout.ndim == 3:
            np.matmul(self.cache[:, -1].T, dout[:, -1], out=self.weight.grad)
        return dx


class TanhWrongForNegatives(nn.Tanh):
    """1 - |h| instead of 1 - h^2 where h < 0."""

    def backward(self, dout):
        h = self.saved()
        return np.where(h < 0, 1 + h, 1 - h * h) * dout


class LayerNormMissingTerm(nn.LayerNorm):
    """dx without the xhat * mean(dxhat * xhat) term."""

    def backward(self, dout):
        xhat, istd, _ = self.saved()
        super().backward(dout)
        dxhat = dout * self.weight.data
        return istd * (dxhat - dxhat.mean(-1, keepdims=True))


class BatchNormRaisingOnTwoRows(nn.BatchNorm1d):
    """Declares two rows acceptable (check_domain) but cannot handle them."""

    def forward(self, x):
        if self.training and x.size // x.shape[-1] == 2:
            raise ZeroDivisionError("two rows")
        return super().forward(x)


def bn_twin(layer):
    return build_twin(nn.BatchNorm1d(layer.weight.shape[0], dtype=layer.weight.data.dtype))


@pytest.mark.parametrize("make_layer, features, twin, ndim, tensor, smallest", [
    (lambda dt, rng: LinearWrongIn3D(3, 2, rng=rng, dtype=dt), 3, lambda layer: build_twin(
        nn.Linear(3, 2, dtype=layer.weight.data.dtype)), (2, 3), "grad weight", (1, 2, 3)),
    (lambda dt, rng: TanhWrongForNegatives(), 2, None, (2, 3), "dx", (1, 2)),
    (lambda dt, rng: LayerNormMissingTerm(3, dtype=dt), 3, lambda layer: build_twin(
        nn.LayerNorm(3, dtype=layer.weight.data.dtype)), (2,), "dx", (1, 3)),
    (lambda dt, rng: BatchNormRaisingOnTwoRows(2, dtype=dt), 2, None, (2,), "(raised)", (2, 2)),
], ids=["3-D only", "negative inputs only", "missing term", "raises on accepted input"])
def test_a_broken_layer_fails_with_the_smallest_input(make_layer, features, twin, ndim, tensor, smallest):
    report = check_layer(make_layer, features, twin=twin, ndim=ndim, max_examples=100)
    assert not report.passed and report.examples > 0
    c = report.counterexample
    assert c.tensor == tensor, c
    assert tuple(c.shape) == smallest, c  # shrunk: the fewest rows and positions that show it
    assert c.rel_err > c.tolerance
    with pytest.raises(AssertionError, match=f"FAILED after .* examples: .*{tensor}"):
        check_layer(make_layer, features, twin=twin, ndim=ndim, max_examples=100, raise_on_failure=True)


def test_without_shrinking_the_first_failing_example_is_reported():
    """shrink=False stops at the first failure, as drawn: fewer examples, not the shrunk one."""
    def check(shrink):
        return check_layer(lambda dt, rng: TanhWrongForNegatives(), 2, ndim=(2,), modes=("train",),
                           dtypes=("float64",), max_examples=100, shrink=shrink)
    drawn, shrunk = check(False), check(True)
    assert not drawn.passed and drawn.counterexample.tensor == "dx"
    assert tuple(shrunk.counterexample.shape) == (1, 2)
    assert drawn.examples < shrunk.examples
    assert drawn.counterexample.example != shrunk.counterexample.example


class RaisesInForward(nn.Tanh):
    def forward(self, x):
        raise RuntimeError("not today")


@pytest.mark.parametrize("modes", [("eval",), ("train", "eval")])
def test_a_layer_that_raises_before_eval_is_a_counterexample_not_a_crash(modes):
    """In eval mode the buffers first see a training batch: a layer that raises there is a finding."""
    report = check_layer(lambda dt, rng: RaisesInForward(), 2, modes=modes, max_examples=20)
    assert not report.passed and report.counterexample.tensor == "(raised)"
    assert "RuntimeError: not today" in report.counterexample.message


# ---------------------------------------------------------------- the command line

def cli(*args, block=()):
    """`numpy-ninja ARGS` in a subprocess; with block, those packages cannot be imported."""
    code = blocking(*block) + textwrap.dedent(f"""
        from numpy_ninja.cli import main
        rc = main({[str(a) for a in args]!r})
        assert not [m for m in sys.modules if m.split(".")[0] in {block!r}]
        sys.exit(rc)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_example_layer_passes_with_its_twin_and_torch_free():
    r = cli("check-layer", f"{EXAMPLE}:make_layer", "--features", "8", "--ndim", "2,3",
            "--twin", f"{EXAMPLE}:twin", "--max-examples", "50", "--format", "json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report == {"passed": True, "examples": report["examples"], "counterexample": None,
                      "set_aside": report["set_aside"]}
    assert set(report["set_aside"]) == {"count", "reason"}
    assert report["set_aside"]["count"] <= report["examples"] / 2
    r = cli("check-layer", f"{EXAMPLE}:make_layer", "--features", "8", "--ndim", "2,3",
            "--max-examples", "50", block=("torch",))
    assert r.returncode == 0, r.stderr
    assert "PASSED" in r.stdout and "central differences" in r.stdout


def test_a_failure_is_exit_1_with_the_counterexample_as_json(tmp_path):
    layer = tmp_path / "broken.py"
    layer.write_text(textwrap.dedent("""
        import numpy as np
        from numpy_ninja import Tanh

        class Broken(Tanh):
            def backward(self, dout):
                return super().backward(dout) * np.where(self.cache < 0, 2.0, 1.0)

        def make(dtype, rng):
            return Broken()
    """))
    r = cli("check-layer", f"{layer}:make", "--features", "3", "--format", "json", "--dtype", "float64")
    assert r.returncode == 1, r.stderr
    c = json.loads(r.stdout)["counterexample"]
    assert set(c) >= {"shape", "dtype", "mode", "tensor", "rel_err", "tolerance"}
    assert c["tensor"] == "dx" and c["shape"] == [1, 3] and c["rel_err"] > c["tolerance"]


@pytest.fixture
def address_space():
    """The command caps the process's address space (oracle._userfile.cap_memory): put it back."""
    limits = resource.getrlimit(resource.RLIMIT_AS)
    yield
    resource.setrlimit(resource.RLIMIT_AS, limits)


LAYER_FILE = """
import numpy as np
from numpy_ninja import Linear

def make(dtype, rng):
    return Linear(3, 2, rng=rng, dtype=dtype)

def raises(dtype, rng):
    raise RuntimeError("no layer today")

def not_a_layer(dtype, rng):
    return object()

def twin_renamed(layer):
    import torch
    return torch.nn.Linear(3, 2)  # weight (2, 3): torch's layout, not the layer's (3, 2)

def twin_not_a_module(layer):
    return "a twin"
"""


@pytest.mark.parametrize("args, message", [
    (["missing.py:make", "--features", "3"], "missing.py: no such file"),
    (["{dir}/syntax.py:make", "--features", "3"], "syntax.py:1: does not import: SyntaxError"),
    (["{dir}/layer.py:nothing", "--features", "3"], "layer.py has no function nothing"),
    (["{dir}/layer.py", "--features", "3"], "must be FILE:FACTORY"),
    (["{dir}/layer.py:raises", "--features", "3"], "make_layer raised RuntimeError: no layer today"),
    (["{dir}/layer.py:not_a_layer", "--features", "3"], "object lacks forward(), backward()"),
    (["{dir}/layer.py:make", "--features", "3", "--twin", "{dir}/layer.py:twin_renamed"],
     "the twin has (2, 3) where the layer has weight (3, 2)"),
    (["{dir}/layer.py:make", "--features", "3", "--twin", "{dir}/layer.py:twin_not_a_module"],
     "the twin factory returned str, not a torch module"),
    (["{dir}/layer.py:make", "--features", "3", "--ndim", "1"], "ndim for float input must be between 2 and 4"),
    (["{dir}/layer.py:make", "--features", "0"], "--features: must be a positive integer"),
    (["{dir}/layer.py:make", "--features", "3", "--dtype", "float16"], "'float16' is not one of"),
    (["{dir}/layer.py:make", "--features", "1000000000"], "features 1000000000: an input of up to"),
])
def test_a_check_that_cannot_run_is_one_line_and_exit_2(tmp_path, capsys, args, message, address_space):
    """In-process, through the same dispatch as the console script (argparse's own errors exit)."""
    (tmp_path / "layer.py").write_text(LAYER_FILE)
    (tmp_path / "syntax.py").write_text("def make(:\n")
    try:
        rc = main(["check-layer"] + [a.format(dir=tmp_path) for a in args])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and message in err, err
