"""The foundation: loader, vocabulary and windows, layer shapes and edge cases, the broken-up
graph against central finite differences, and the torch-free guarantee."""
import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numpy_ninja as nn
from numpy_ninja import atomic, models
from numpy_ninja.data import DataError, Vocab, build_dataset, load_dataset, load_words, split_words
from numpy_ninja.gradcheck import numerical_grad, rel_error
from numpy_ninja.train import calibrate_batchnorm
from torchfree import BLOCK_TORCH

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- loader

def write(tmp_path, data, name="names.txt"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_loader_strips_skips_blank_lines_and_accepts_crlf(tmp_path):
    p = write(tmp_path, b"  emma \r\n\r\nolivia\r\n\t\nava")
    assert load_words(p) == ["emma", "olivia", "ava"]


@pytest.mark.parametrize("data, where, what", [
    (b"", "", "no words"),
    (b"\n  \n\r\n", "", "no words"),
    (b"emma\nol\xffivia\n", ":2:", "UTF-8"),
    (b"emma\nava\nj.r\n", ":3:", "'.'"),
    (b"emma\nmary ann\n", ":2:", "one word per line"),
])
def test_loader_rejects_bad_files_naming_file_and_line(tmp_path, data, where, what):
    p = write(tmp_path, data)
    with pytest.raises(DataError) as e:
        load_words(p)
    assert str(e.value).startswith(f"{p}{where}") and what in str(e.value)


def test_loader_rejects_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_words(tmp_path / "absent.txt")
    with pytest.raises(DataError, match="directory"):
        load_words(tmp_path)


def test_vocab_has_boundary_first_then_sorted_chars():
    v = Vocab.from_words(["cab", "éa"])
    assert v.itos == ".abcé" and len(v) == 5
    assert v.decode(v.encode("cabé")) == "cabé"


def test_windows_of_one_word():
    v = Vocab.from_words(["ab"])
    X, Y = build_dataset(["ab"], v, block_size=2)
    assert X.tolist() == [[0, 0], [0, 1], [1, 2]] and Y.tolist() == [1, 2, 0]
    assert X.dtype == Y.dtype == np.int64


@given(st.lists(st.text("abcd", min_size=1, max_size=6), max_size=8), st.integers(1, 5))
def test_windows_match_the_lectures_loop(words, block_size):
    """Every word's windows, in order, as the lecture builds them one character at a time."""
    v = Vocab.from_words(["abcd"])
    X, Y = build_dataset(words, v, block_size)
    rows = []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = v.stoi[ch]
            rows.append((context, ix))
            context = context[1:] + [ix]
    assert X.shape == (len(rows), block_size) and Y.shape == (len(rows),)
    assert X.tolist() == [c for c, _ in rows] and Y.tolist() == [y for _, y in rows]


def test_split_is_seeded_disjoint_80_10_10():
    words = [f"w{'a' * i}" for i in range(1000)]
    tr, va, te = split_words(words, seed=3)
    assert (len(tr), len(va), len(te)) == (800, 100, 100)
    assert sorted(tr + va + te) == sorted(words)
    assert split_words(words, seed=3) == (tr, va, te)
    assert split_words(words, seed=4)[0] != tr


def test_shipped_names_file():
    path = ROOT / "data" / "names.txt"
    words = load_words(path)
    assert 20_000 < len(words) < 50_000
    assert len(set(words)) == len(words)
    assert Vocab.from_words(words).itos == ".abcdefghijklmnopqrstuvwxyz"
    ds = load_dataset(path, block_size=3, seed=42)
    assert sum(len(ds.splits[k][1]) for k in ds.splits) == sum(len(w) + 1 for w in words)


# ---------------------------------------------------------------- layers

def test_layer_shapes_2d_and_3d():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 7, size=(5, 8))
    emb = nn.Embedding(7, 3, rng=rng)(x)
    assert emb.shape == (5, 8, 3) and emb.dtype == np.float32
    assert nn.Flatten()(emb).shape == (5, 24)
    assert nn.FlattenConsecutive(2)(emb).shape == (5, 4, 6)
    assert nn.FlattenConsecutive(8)(emb).shape == (5, 24)  # the sequence axis disappears
    h = nn.FlattenConsecutive(2)(emb)
    lin = nn.Linear(6, 4, rng=rng)
    assert lin(h).shape == (5, 4, 4) and lin(h[:, 0]).shape == (5, 4)
    bn = nn.BatchNorm1d(4)
    assert bn(lin(h)).shape == (5, 4, 4) and bn.running_mean.shape == (4,)
    with pytest.raises(ValueError, match="not divisible"):
        nn.FlattenConsecutive(3)(emb)


def test_named_parameters_use_torch_state_dict_names():
    model = models.mlp(27)
    assert [n for n, _ in model.named_parameters()] == [
        "0.weight", "2.weight", "2.bias", "3.weight", "3.bias", "5.weight", "5.bias"]
    assert [n for n, _ in model.named_buffers()] == ["3.running_mean", "3.running_var"]
    assert sum(p.data.size for p in model.parameters()) == 12_297
    assert sum(p.data.size for p in models.wavenet(27).parameters()) == 76_579
    assert nn.Linear(3, 2, bias=False).parameters()[0].shape == (3, 2)
    assert len(nn.Linear(3, 2, bias=False).parameters()) == 1


def test_embedding_accumulates_repeated_rows():
    emb = nn.Embedding(4, 2, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.array([[0, 0, 0], [0, 0, 3], [2, 3, 0]])  # "..." hits row 0 three times
    emb(x)
    dout = np.random.default_rng(1).standard_normal((3, 3, 2))
    assert emb.backward(dout) is None
    expected = np.zeros((4, 2))
    for i in range(3):
        for j in range(3):
            expected[x[i, j]] += dout[i, j]
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-15)
    assert not emb.weight.grad[1].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_survives_large_logits(dtype):
    crit = nn.CrossEntropyLoss()
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], dtype)
    loss = crit(logits, np.array([1, 2]))
    # row 0: logsumexp = 1000 (to rounding), minus -1000 -> 2000
    # row 1: logsumexp = 1000 + log(1 + e^-1), minus 999 -> 1 + log(1 + e^-1)
    expected = (2000.0 + 1.0 + np.log1p(np.exp(-1.0))) / 2
    assert np.isfinite(loss) and abs(loss - expected) < 1e-4 * expected
    dlogits = crit.backward()
    assert dlogits.dtype == dtype and np.isfinite(dlogits).all()
    np.testing.assert_allclose(dlogits.sum(1), 0, atol=1e-7)
    np.testing.assert_allclose(dlogits[0], np.array([1, -1, 0]) / 2, atol=1e-7)


def test_batchnorm_needs_two_rows_in_training_not_in_eval():
    bn = nn.BatchNorm1d(3)
    for x in (np.ones((1, 3), np.float32), np.ones((1, 1, 3), np.float32)):
        with pytest.raises(ValueError, match="at least 2 values per channel"):
            bn(x)
    assert np.isfinite(bn(np.ones((1, 2, 3), np.float32))).all()  # 2 values per channel
    bn.eval()
    assert bn(np.ones((1, 3), np.float32)).shape == (1, 3)
    with pytest.raises(ValueError, match="at least 2 rows"):
        atomic.manual_backprop(lecture_params(np.random.default_rng(0), 5, 2, 3, 4),
                               np.zeros((1, 2), int), np.zeros(1, int))


def test_batchnorm_running_statistics_and_eval():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, 3))
    bn = nn.BatchNorm1d(3, momentum=0.25, unbiased=False, dtype=np.float64)
    bn(x)
    flat = x.reshape(-1, 3)
    np.testing.assert_allclose(bn.running_mean, 0.25 * flat.mean(0), rtol=1e-14)
    np.testing.assert_allclose(bn.running_var, 0.75 + 0.25 * flat.var(0, ddof=1), rtol=1e-14)
    bn.eval()
    expected = (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5)
    np.testing.assert_allclose(bn(x), expected, rtol=1e-13)


@pytest.mark.parametrize("name", ["mlp", "wavenet"])
def test_calibration_makes_eval_reproduce_the_whole_set_training_forward(name):
    """After the lecture's calibration every BatchNorm holds the statistics of its input over the
    whole set (the n-1 variance the lecture's BatchNorm normalises with), so in eval mode the
    network reproduces its training-mode forward over that set."""
    block = 4 if name == "wavenet" else 3
    model = getattr(models, name)(7, block_size=block, n_embd=3, n_hidden=5, seed=1, dtype=np.float64)
    X = np.random.default_rng(1).integers(0, 7, (50, block))
    expected = model.train()(X)
    calibrate_batchnorm(model, X)
    assert not model.training
    np.testing.assert_allclose(model(X), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_parameters_end_to_end(dtype):
    model = models.mlp(11, dtype=dtype)
    X = np.random.default_rng(0).integers(0, 11, (8, 3))
    crit = nn.CrossEntropyLoss()
    logits = model(X)
    crit(logits, X[:, 0])
    model.backward(crit.backward())
    assert logits.dtype == dtype
    for name, p in model.named_parameters():
        assert p.grad.dtype == dtype and p.grad.shape == p.data.shape, name


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Linear(2, 2).backward(np.ones((1, 2)))


# ---------------------------------------------------------------- broken-up graph vs finite differences

def lecture_params(rng, V, block, E, H, scale=1.0):
    return {
        "C": rng.standard_normal((V, E)),
        "W1": rng.standard_normal((block * E, H)) * scale * (5 / 3) / (block * E) ** 0.5,
        "b1": rng.standard_normal(H) * 0.1,
        "W2": rng.standard_normal((H, V)) * 0.1 * scale,
        "b2": rng.standard_normal(V) * 0.1,
        "bngain": rng.standard_normal((1, H)) * 0.1 + 1.0,
        "bnbias": rng.standard_normal((1, H)) * 0.1,
    }


# n >= 3: at n = 2 BatchNorm's output no longer depends on its input (up to eps), the gradients
# into it are eps-sized and finite differences of an O(1) loss cannot resolve them.
@pytest.mark.parametrize("seed, V, block, E, H, n", [(0, 7, 3, 4, 6, 9), (1, 5, 2, 3, 8, 3)])
def test_manual_backprop_matches_finite_differences(seed, V, block, E, H, n):
    rng = np.random.default_rng(seed)
    params = lecture_params(rng, V, block, E, H)
    Xb, Yb = rng.integers(0, V, (n, block)), rng.integers(0, V, n)
    Xb[0] = 0  # a context of boundary tokens: row 0 of C looked up `block` times
    loss, grads = atomic.manual_backprop(params, Xb, Yb)
    assert set(grads) == set(atomic.GRAD_NAMES) and len(grads) == 26
    _, t = atomic.forward(params, Xb, Yb)
    for name, g in grads.items():
        assert g.shape == np.shape(t[name]) and g.dtype == np.float64, name
    for name in atomic.PARAM_NAMES:
        num = numerical_grad(lambda: atomic.forward(params, Xb, Yb)[0], params[name])
        if name == "b1":  # a bias before BatchNorm has no effect: both are zero up to rounding
            assert np.abs(num).max() < 1e-8 and np.abs(grads[name]).max() < 1e-15
        else:
            assert rel_error(grads[name], num) < 1e-7, name


@pytest.mark.parametrize("n", [3, 5, 16])  # n = 2 is degenerate: see above
def test_one_step_backward_matches_atomic_and_finite_differences(n):
    rng = np.random.default_rng(n)
    params = lecture_params(rng, 6, 3, 2, 5)
    Xb, Yb = rng.integers(0, 6, (n, 3)), rng.integers(0, 6, n)
    _, g = atomic.manual_backprop(params, Xb, Yb)
    loss, fast = atomic.fast_backprop(params, Xb, Yb)
    for name in ("logits", "hprebn", "C", "W1", "W2", "b2", "bngain", "bnbias"):
        assert rel_error(fast[name], g[name]) < 1e-13, name
    # exercise 2 on its own, against finite differences of the loss in the logits
    _, t = atomic.forward(params, Xb, Yb)
    logits = t["logits"].copy()

    def ce():
        z = logits - logits.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(n), Yb]))

    assert rel_error(atomic.cross_entropy_backward(logits, Yb), numerical_grad(ce, logits)) < 1e-7


# ---------------------------------------------------------------- torch-free

def test_numpy_ninja_runs_without_torch():
    code = BLOCK_TORCH + textwrap.dedent("""
        import numpy as np, pkgutil, importlib, numpy_ninja
        for m in pkgutil.iter_modules(numpy_ninja.__path__):
            if m.name != "__main__":
                importlib.import_module("numpy_ninja." + m.name)
        from numpy_ninja import models, atomic, CrossEntropyLoss
        model = models.mlp(27)
        X = np.zeros((4, 3), int)
        crit = CrossEntropyLoss()
        crit(model(X), X[:, 0])
        model.backward(crit.backward())
        atomic.manual_backprop({
            "C": np.ones((5, 2)), "W1": np.ones((6, 4)), "b1": np.zeros(4), "W2": np.ones((4, 5)),
            "b2": np.zeros(5), "bngain": np.ones((1, 4)), "bnbias": np.zeros((1, 4))},
            np.array([[0, 1, 2], [3, 4, 0]]), np.array([1, 2]))
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "oracle")]
        print("torch-free ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "torch-free ok" in out.stdout


def test_no_module_of_numpy_ninja_imports_torch_or_oracle():
    for path in (ROOT / "numpy_ninja").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("torch", "oracle"), f"{path.name} imports {name}"
