"""`numpy-ninja compare`: the report passes on the real code, and a planted error fails it."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numpy_ninja import atomic
from numpy_ninja.cli import main
from torchfree import blocking

ROWS = 2 * (26 + 2) + 2 * 7  # both dtypes: the graph's 26, two one-step rows, the MLP's 7 parameters
KEYS = {"section", "name", "dtype", "shape", "exact", "allclose", "max_abs_diff", "max_rel_err", "max_ulp"}


def test_report_passes_and_writes_its_files(tmp_path, capsys):
    assert main(["compare", "--steps", "100", "--out", str(tmp_path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] and len(report["rows"]) == ROWS
    assert all(KEYS <= set(r) and r["passed"] for r in report["rows"])
    lock = report["lockstep"]
    assert lock["steps"] == 100 and set(lock["curves"]) == {"float32", "float64"}
    assert lock["max_param_rel_divergence"]["float64"] < 1e-8
    assert len(lock["curves"]["float64"]["ours"]) == 100
    for name in ("report.md", "lockstep_loss.png", "divergence.png", "dlogits.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_a_millionth_in_one_gradient_fails_the_report(monkeypatch, capsys):
    real = atomic.manual_backprop

    def planted(params, Xb, Yb):
        loss, grads = real(params, Xb, Yb)
        grads["h"] = grads["h"] * (1 + 1e-6)
        return loss, grads

    monkeypatch.setattr(atomic, "manual_backprop", planted)
    assert main(["compare", "--steps", "5"]) == 1
    out = capsys.readouterr().out
    failing = [line for line in out.splitlines() if line.split()[-1:] == ["NO"]]
    assert [line.split()[2:4] for line in failing] == [["h", "float64"]]
    assert "FAILED: h (float64)" in out


def test_without_torch_it_says_how_to_install():
    code = blocking("torch") + textwrap.dedent("""
        from numpy_ninja.cli import main
        sys.exit(main(["compare"]))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "pip install 'numpy-ninja[oracle]'" in r.stderr


def test_float32_and_float64_models_start_from_the_same_numbers():
    from numpy_ninja import models
    a, b = models.mlp(27, dtype=np.float32), models.mlp(27, dtype=np.float64)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.data, q.data.astype(np.float32)), name


def test_settings_the_report_cannot_judge_are_refused_in_one_line(tmp_path, capsys):
    """Batch 2 (BatchNorm's output is +-1/sqrt(2) whatever its input), a lockstep whose training
    amplifies rounding past the limit (batch 3 over 200 steps), bad or absurd sizes, an --out
    that cannot be written: one line, before the report runs."""
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [(["--batch-size", "2"], "--batch-size 2 cannot be judged"),
             (["--batch-size", "3", "--steps", "200"], "the lockstep cannot be judged at --batch-size 3"),
             (["--seed", "-1"], "--seed: must be an integer >= 0"), (["--hidden", "0"], "--hidden: must be a positive"),
             (["--hidden", str(10**9)], "need at least"), (["--steps", "0"], "--steps: must be a positive"),
             (["--out", str(a_file / "report")], "cannot write into --out"),
             (["--out", str(a_file)], "exists and is not a directory")]
    for args, message in cases:
        assert main(["compare", "--steps", "5", *args]) == 2  # 1 is kept for a report that fails
        out, err = capsys.readouterr()
        # the refusal is one line, the last; on a slow machine progress lines may come first
        *progress, last = err.splitlines()
        assert out == "" and message in last and "error:" in last, (args, err)
        assert all("error" not in line for line in progress), (args, err)
    assert os.listdir(tmp_path) == ["file"]
    with pytest.raises(SystemExit) as e:
        main(["compare", "--batch-size", "many"])
    assert e.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_batch_3_is_judged_and_passes(capsys):
    """The smallest batch the report accepts: no false FAILED on its float32 rows."""
    assert main(["compare", "--batch-size", "3", "--steps", "5", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and all(r["passed"] for r in report["rows"])
