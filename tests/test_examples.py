"""The layers of examples/, as a user writes them (forward and backward, no terms, no
check_domain), through oracle.check_layer and `numpy-ninja check-layer`: the correct ones pass with
their twin and torch-free, in float32 and float64, 2-D and 3-D where they apply, never failed by
rounding; each GPT piece with one classic mistake (examples/broken/) fails with a small
counterexample; a layer whose results are mostly rounding noise fails, saying that too little
could be judged."""
import json
import resource
from math import prod
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from numpy_ninja import Module
from numpy_ninja.cli import main
from oracle import check_layer
from oracle._userfile import import_file
from oracle.fuzz._rounding import Rounding, run_rounded

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# file, features, input ranks
CORRECT = {
    "layernorm": ("layernorm.py", 8, (2, 3)),
    "rmsnorm": ("rmsnorm.py", 8, (2, 3)),
    "softmax": ("softmax.py", 5, (2, 3)),
    "logsoftmax": ("logsoftmax.py", 5, (2, 3)),
    "gelu": ("gelu.py", 4, (2, 3)),
    "attention": ("attention.py", 8, (3,)),
}
BROKEN = {
    "attention, dq without 1/sqrt(hs)": ("broken/attention_dq_scale.py", 8, (3,)),
    "tanh-GELU with the erf-GELU derivative": ("broken/gelu_erf_derivative.py", 4, (2, 3)),
    "log-softmax without the softmax-weighted sum": ("broken/logsoftmax_missing_sum.py", 5, (2, 3)),
}
REFERENCES = ["twin", "torch-free"]


def load(path):
    return import_file(EXAMPLES / path)


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("name", CORRECT)
def test_a_layer_written_the_obvious_way_passes(name, reference):
    path, features, ndim = CORRECT[name]
    layer = load(path)
    cls = type(layer.make_layer(np.dtype("float64"), np.random.default_rng(0)))
    assert cls.terms is Module.terms and cls.check_domain is Module.check_domain  # says nothing more
    report = check_layer(layer.make_layer, features, ndim=ndim,
                         twin=layer.twin if reference == "twin" else None,
                         max_examples=settings().max_examples)
    assert report.passed, report
    assert report.set_aside["count"] <= report.examples / 2


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("name", BROKEN)
def test_a_classic_mistake_fails_with_a_small_counterexample(name, reference):
    path, features, ndim = BROKEN[name]
    layer = load(path)
    report = check_layer(layer.make_layer, features, ndim=ndim,
                         twin=layer.twin if reference == "twin" else None, max_examples=100)
    assert not report.passed, report
    c = report.counterexample
    assert c.tensor == "dx" and prod(c.shape) <= 64, c
    assert c.rel_err > c.tolerance


ABSORBED = """
import numpy as np
from numpy_ninja import Module

class Absorbed(Module):
    '''x + 1e20 - 1e20: the identity on paper; x is lost in the rounding of 1e20.'''

    def forward(self, x):
        big = x.dtype.type(1e20)
        return (x + big) - big

    def backward(self, dout):
        return dout.copy()

def make(dtype, rng):
    return Absorbed()

def identity(layer):
    import torch
    return torch.nn.Identity()
"""


@pytest.mark.parametrize("reference", REFERENCES)
def test_more_than_half_set_aside_fails_without_a_counterexample(tmp_path, reference):
    (tmp_path / "absorbed.py").write_text(ABSORBED)
    layer = import_file(tmp_path / "absorbed.py")
    report = check_layer(layer.make, 4, twin=layer.identity if reference == "twin" else None,
                         max_examples=50)
    assert not report.passed and report.counterexample is None
    assert report.set_aside["count"] > report.examples / 2
    assert str(report).startswith(f"FAILED: {report.set_aside['count']} of {report.examples} "
                                  "examples set aside, more than half")
    with pytest.raises(AssertionError, match="more than half"):
        check_layer(layer.make, 4, max_examples=50, raise_on_failure=True)


# ---------------------------------------------------------------- the command line

@pytest.fixture
def address_space():
    """The command caps the process's address space (oracle._userfile.cap_memory): put it back."""
    limits = resource.getrlimit(resource.RLIMIT_AS)
    yield
    resource.setrlimit(resource.RLIMIT_AS, limits)


def check_layer_cli(capsys, *args):
    """`numpy-ninja check-layer ARGS` in this process: (exit code, stdout)."""
    rc = main(["check-layer", *map(str, args)])
    return rc, capsys.readouterr().out


def test_the_command_reports_what_it_set_aside(capsys, address_space):
    layer = EXAMPLES / "layernorm.py"
    common = [f"{layer}:make_layer", "--features", "8", "--ndim", "2,3", "--max-examples", "40"]
    rc, out = check_layer_cli(capsys, *common, "--twin", f"{layer}:twin", "--format", "json")
    report = json.loads(out)
    assert rc == 0 and report["passed"] and report["counterexample"] is None
    assert set(report["set_aside"]) == {"count", "reason"}
    rc, out = check_layer_cli(capsys, *common)
    lines = out.splitlines()
    assert rc == 0 and lines[1].startswith("PASSED: ")
    assert len(lines) == 3 and lines[2].startswith("  set aside  "), out


def test_a_classic_mistake_from_the_command_line(capsys, address_space):
    layer = EXAMPLES / "broken" / "attention_dq_scale.py"
    rc, out = check_layer_cli(capsys, f"{layer}:make_layer", "--features", "8", "--ndim", "3",
                              "--twin", f"{layer}:twin", "--format", "json")
    c = json.loads(out)["counterexample"]
    assert rc == 1 and c["tensor"] == "dx" and prod(c["shape"]) <= 64
    assert c["rel_err"] > c["tolerance"]


def test_too_much_set_aside_from_the_command_line(tmp_path, capsys, address_space):
    (tmp_path / "absorbed.py").write_text(ABSORBED)
    args = [f"{tmp_path / 'absorbed.py'}:make", "--features", "4", "--max-examples", "30"]
    rc, out = check_layer_cli(capsys, *args, "--format", "json")
    report = json.loads(out)
    assert rc == 1 and not report["passed"] and report["counterexample"] is None
    assert report["set_aside"]["count"] > report["examples"] / 2
    rc, out = check_layer_cli(capsys, *args, "--twin", f"{tmp_path / 'absorbed.py'}:identity")
    assert rc == 1 and "examples set aside, more than half: too few judged" in out
    assert "\n  set aside  " in out


# ---------------------------------------------------------------- the simulated rounding

def test_simulated_rounding_rounds_numpy_and_leaves_in_place_updates_in_place():
    """Every NumPy operation of a run with Rounding arrays rounds at the chosen eps; np.add.at
    and out= still write into their target."""
    rng = np.random.default_rng(0)
    Rounding.eps, Rounding.rng = 2.0 ** -23, rng
    x = np.full(1000, 1 / 3).view(Rounding)
    y = (x * 3 - 1).view(np.ndarray)  # exactly 0 in float64; about 1e-7 with float32's rounding
    assert 0 < np.abs(y).max() < 1e-6
    target = np.zeros(3)
    np.add.at(target, [0, 0, 2], x[:3])
    assert target[0] == pytest.approx(2 / 3, rel=1e-6) and target[1] == 0
    out = np.zeros(2)
    np.dot(x[:4].reshape(2, 2), x[:2], out=out)
    assert out == pytest.approx([2 / 9, 2 / 9], rel=1e-6) and type(out) is np.ndarray


def test_a_run_with_rounding_simulated_gives_back_the_layer_as_it_was():
    layer = load("attention.py").make_layer(np.dtype("float64"), np.random.default_rng(0))
    state = {name: p.data.copy() for name, p in layer.named_parameters()}
    x, dout = np.ones((1, 3, 8)), np.ones((1, 3, 8))
    plain = run_rounded(layer, state, x, dout)
    rounded = run_rounded(layer, state, x, dout, 2.0 ** -23, np.random.default_rng(0))
    assert all(type(p.data) is np.ndarray for _, p in layer.named_parameters())
    assert set(rounded) == set(plain) and 0 < np.abs(rounded["dx"] - plain["dx"]).max() < 1e-4
