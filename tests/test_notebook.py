"""check on a learner's work as it is: the lecture's notebook (written here with its cell
structure and names: tests/notebooks.py), its exports, cells pasted into a .py, partial answers,
and notebooks that are broken or hostile."""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from numpy_ninja.atomic import GRAD_NAMES, PARAM_NAMES
from numpy_ninja.cli import main
from oracle.grade import check_solution
from notebooks import (EX1_ANSWER, EX2_ANSWER, EX3_ANSWER, EX4_BACKWARD, lecture_cells,
                       write_notebook, write_script)


def rows_by(report):
    return {(r["exercise"], r["name"]): r for r in report.rows}


def graded(report, exercise):
    return [r for r in report.rows if r["exercise"] == exercise]


# ---------------------------------------------------------------- the lecture's notebook

@pytest.mark.parametrize("form", ["ipynb", "colab", "percent", "nbconvert", "plain"])
def test_the_lecture_notebook_passes_as_it_is(tmp_path, form):
    """Answered as the lecture answers it, in every form a learner saves it in: the four exercises
    pass, in float32 like the notebook; nothing outside the exercise cells runs (the data cell
    would need names.txt and the network, the sampling cell loops until it draws a '.')."""
    cells = lecture_cells()
    path = (write_notebook(tmp_path / "nb.ipynb", cells, colab=form == "colab") if form in ("ipynb", "colab")
            else write_script(tmp_path / "nb.py", cells, form))
    report = check_solution(path, batches=2)
    assert report.dtype == "float32" and len(report.rows) == 26 + 1 + 1 + 7
    assert report.passed and {r["verdict"] for r in report.rows} <= {"exact", "approximate"}, report
    assert not (tmp_path / "names.txt").exists() and sorted(os.listdir(tmp_path)) == [path.name]


def test_exercise_1_left_blank_is_missing_and_the_rest_still_pass(tmp_path):
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex1=None)), batches=2)
    assert {r["verdict"] for r in graded(report, 1)} == {"missing"}
    assert {r["verdict"] for r in report.rows if r["exercise"] > 1} <= {"exact", "approximate"}
    assert report.passed and str(report).splitlines()[-1].startswith("PASSED with 26 of 35 missing")


def test_every_exercise_left_blank_is_missing_not_an_error(tmp_path):
    """The exercise notebook as handed out: stubs of None, exercise 4's loop still on autograd."""
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(None, None, None, None)),
                            batches=2)
    assert {r["verdict"] for r in report.rows} == {"missing"} and report.passed


@pytest.mark.parametrize("cell, old, new, tensor, hint", [
    (1, "(1.0/(n-1))*torch.ones_like(bndiff2)", "(1.0/n)*torch.ones_like(bndiff2)", "bndiff2", "Bessel"),
    (1, "dlogprobs[range(n), Yb] = -1.0/n", "dlogprobs[range(n), Yb] = -1.0", "logprobs", "factor n"),
    (1, "dC[ix] += demb[k, j]", "dC[ix] = demb[k, j]", "C", "index_add_"),
    (2, "dlogits /= n", "dlogits /= n\ndlogits *= 2", "logits", "factor 2"),
    (3, "n/(n-1)*bnraw", "bnraw", "hprebn", "Bessel"),
])
def test_one_classic_mistake_is_local_with_its_hint_and_the_rest_inherited(tmp_path, cell, old, new, tensor, hint):
    answers = dict(ex1=EX1_ANSWER, ex2=EX2_ANSWER, ex3=EX3_ANSWER)
    key = f"ex{cell}"
    assert old in answers[key]
    answers[key] = answers[key].replace(old, new)
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(**answers)), batches=3)
    rows = rows_by(report)
    row = rows[cell, tensor]
    assert row["verdict"] == "wrong" and row["cause"] == "local" and hint in row["hint"], row
    wrong = [r for r in report.rows if r["verdict"] == "wrong"]
    assert all(r["cause"] == "inherited" for r in wrong if r is not row), wrong
    assert row["where"]["location"].startswith("cell ") and row["where"]["text"]
    assert str(report).splitlines()[-1].endswith(f"start with exercise {cell} {tensor}")


def test_exercise_4_traces_a_mistake_in_its_loop_to_the_intermediate(tmp_path):
    """The 1/n of dlogits forgotten inside the training loop: the parameters below it are wrong,
    inherited through the loop's own dlogits, which is where the summary starts."""
    loop = EX4_BACKWARD.replace("        dlogits /= n\n", "")
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex4=loop)), exercise=4,
                            batches=2)
    rows = rows_by(report)
    assert rows[4, "b1"]["verdict"] == "approximate"  # zero for any dhpreact: BatchNorm removes a shift
    assert all(rows[4, p]["verdict"] == "wrong" and rows[4, p]["cause"] == "inherited"
               for p in PARAM_NAMES if p != "b1")
    assert "your dlogits is wrong: off by a factor n" in rows[4, "W2"]["hint"]
    assert "start with exercise 4 dlogits" in str(report)


# ---------------------------------------------------------------- cells pasted as they are

PASTED = """
import torch
import torch.nn.functional as F

# Exercise 1
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0/n
dprobs = (1.0 / probs) * dlogprobs
dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
dcounts = counts_sum_inv * dprobs
dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv
dcounts += torch.ones_like(counts) * dcounts_sum
dnormlogits = counts * dcounts
dlogits = dnormlogits.clone()
dlogits_maxes = (-dnormlogits).sum(1, keepdim=True)
dlogits += F.one_hot(logits.max(1).indices, num_classes=vocab_size) * dlogits_maxes
cmp('logprobs', dlogprobs, logprobs)
cmp('norm_logits', dnormlogits, norm_logits)
cmp('logit_maxes', dlogits_maxes, logit_maxes)

# Exercise 2
klogits = F.softmax(logits, 1)
klogits[range(n), Yb] -= 1
klogits /= batch_size
cmp('logits', klogits, logits)
"""


def test_cells_pasted_unchanged_grade_with_their_own_names(tmp_path):
    """cmp lines, the notebook's globals (vocab_size, batch_size), learners' spellings
    (dnormlogits, dlogits_maxes) and a name only cmp tells (klogits): graded without edits."""
    path = tmp_path / "pasted.py"
    path.write_text(PASTED)
    report = check_solution(path, batches=2)
    rows = rows_by(report)
    for name in ("logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits",
                 "logit_maxes", "logits"):
        assert rows[1, name]["verdict"] in ("exact", "approximate"), rows[1, name]
    assert "read from your dnormlogits" in rows[1, "norm_logits"]["hint"]
    assert "read from your dlogits_maxes" in rows[1, "logit_maxes"]["hint"]
    assert rows[2, "logits"]["verdict"] == "approximate" and "cmp('logits'" in rows[2, "logits"]["hint"]
    assert rows[1, "h"]["verdict"] == "missing" and report.passed


# ---------------------------------------------------------------- partial answers

def test_a_raise_grades_what_came_before_and_names_the_gradient_that_made_it(tmp_path):
    """A missing keepdims breaks a later line: the rows before it are graded (the keepdims one
    wrong, local), the failing line says which gradient made it fail, the rest is not reached."""
    ex1 = EX1_ANSWER.replace("dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)",
                             "dcounts_sum_inv = (counts * dprobs).sum(1)")
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex1=ex1)), exercise=1,
                            batches=2)
    rows = rows_by(report)
    assert rows[1, "logprobs"]["verdict"] == "exact" and rows[1, "probs"]["verdict"] in ("exact", "approximate")
    assert rows[1, "counts_sum_inv"]["cause"] == "local" and "keepdims" in rows[1, "counts_sum_inv"]["hint"]
    assert rows[1, "counts_sum"]["cause"] == "inherited"
    assert rows[1, "counts"]["verdict"] == "error"
    assert "your dcounts_sum is (2, 2) where counts_sum is (2, 1)" in rows[1, "counts"]["hint"]
    assert "(cell 10, line 9: dcounts += torch.ones_like(counts) * dcounts_sum)" in rows[1, "counts"]["hint"]
    assert all(r["verdict"] == "missing" and r["hint"].startswith("not reached")
               for r in report.rows if r["name"] in GRAD_NAMES[5:])
    assert sum(r["verdict"] == "error" for r in report.rows) == 1


def test_a_size_written_as_a_number_is_named(tmp_path):
    ex1 = EX1_ANSWER.replace("dlogprobs = torch.zeros_like(logprobs)", "dlogprobs = torch.zeros((32, 27))")
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex1=ex1)), exercise=1,
                            batches=4)
    rows = rows_by(report)
    assert rows[1, "logprobs"]["cause"] == "local" and "a size written as a number?" in rows[1, "logprobs"]["hint"]
    assert rows[1, "logprobs"]["hint"].endswith("[in batch n=2]")
    assert rows[1, "counts"]["verdict"] in ("exact", "approximate")  # right in the batches that ran it
    assert "[not reached in batch n=2]" in rows[1, "counts"]["hint"]


def test_float32_in_a_float64_check_is_approximate_with_its_origin(tmp_path):
    ex1 = EX1_ANSWER.replace("dlogprobs = torch.zeros_like(logprobs)", "dlogprobs = torch.zeros(logprobs.shape)")
    ex1 = ex1.replace("dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv",
                      "dcounts_sum = (-counts_sum**-2).float() * dcounts_sum_inv.float()")
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex1=ex1)), exercise=1,
                            dtype="float64", batches=2)
    rows = rows_by(report)
    assert report.passed and not [r for r in report.rows if r["verdict"] == "wrong"]
    assert "float32, where the check runs in float64" in rows[1, "counts_sum"]["hint"]
    assert rows[1, "counts_sum"]["verdict"] == "approximate"
    inherited = [r for r in report.rows if "float32 rounding of your dcounts_sum" in (r["hint"] or "")]
    assert inherited and all(r["verdict"] == "approximate" for r in inherited)


def test_the_clone_alias_is_named(tmp_path):
    ex1 = EX1_ANSWER.replace("dhprebn = dbndiff.clone()", "dhprebn = dbndiff")
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex1=ex1)), exercise=1,
                            batches=2)
    row = rows_by(report)[1, "bndiff"]
    assert row["cause"] == "local" and "equals your dhprebn exactly" in row["hint"] and ".clone()" in row["hint"]


def test_a_missing_upstream_gradient_is_cannot_tell_not_local(tmp_path):
    """dh assigned under a name check cannot read: dW2 is right but dhpreact, computed from the
    hidden dh, cannot be blamed on its own step."""
    ex1 = EX1_ANSWER.replace("dh = dlogits @ W2.T", "grad_h = dlogits @ W2.T * 2").replace(
        "dhpreact = (1.0 - h**2) * dh", "dhpreact = (1.0 - h**2) * grad_h")
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex1=ex1)), exercise=1,
                            batches=2)
    rows = rows_by(report)
    assert rows[1, "h"]["verdict"] == "missing" and rows[1, "W2"]["verdict"] in ("exact", "approximate")
    # its own check, cmp('h', dh, h), raises where dh was never made: a line that only checks
    # takes nothing from the grade, and is said in a note
    assert any("name 'dh' is not defined" in note for note in report.notes)
    assert rows[1, "hpreact"]["cause"] == "unknown" and "your dh is missing" in rows[1, "hpreact"]["hint"]


# ---------------------------------------------------------------- broken and hostile work

HOSTILE = {
    "loops forever": "while True:\n    pass\n",
    "sleeps": "import time\ntime.sleep(60)\n",
    "exits": "exit(3)\n",
    "kills itself": "import os\nos._exit(0)\n",
    "allocates without bound": "hog = []\nwhile True:\n    hog.append(bytearray(2**28))\n",
    "changes directory and writes": "import os\nos.chdir('/tmp')\nopen('hostile-was-here', 'w').write('x')\n",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_exercise_cells_are_that_exercises_error(tmp_path, name):
    """A cell that loops, sleeps, exits, allocates or wanders off is stopped (--timeout) and
    reported as its exercise's error, saying why; check's own directory is untouched."""
    path = write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex2=HOSTILE[name] + EX2_ANSWER))
    t0 = time.monotonic()
    report = check_solution(path, exercise=2, batches=2, timeout=1.5 if name in ("loops forever", "sleeps") else 10)
    assert time.monotonic() - t0 < 20
    row = rows_by(report)[2, "logits"]
    says = {"loops forever": "stopped after 1.5 s", "sleeps": "stopped after 1.5 s",
            "exits": "SystemExit: 3", "kills itself": "the code ended the process",
            "allocates without bound": "out of memory"}
    if name in says:
        assert row["verdict"] == "error" and says[name] in row["hint"] and not report.passed, row
    else:  # it ran in a directory of its own, since removed
        assert row["verdict"] == "approximate" and not os.path.exists("/tmp/hostile-was-here")
    assert os.getcwd() != "/tmp" and sorted(os.listdir(tmp_path)) == ["nb.ipynb"]


def test_the_other_exercises_are_graded_beside_one_that_exits(tmp_path):
    report = check_solution(write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex2="exit()\n" + EX2_ANSWER)),
                            batches=2)
    assert rows_by(report)[2, "logits"]["verdict"] == "error"
    assert {r["verdict"] for r in report.rows if r["exercise"] != 2} <= {"exact", "approximate"}


def numpy_ninja(*commands, cwd):
    """[(exit status, stdout, stderr)] of `numpy-ninja ARGS` for each ARGS, through numpy_ninja.cli.main
    in one interpreter (one torch import)."""
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from numpy_ninja.cli import main
        results = []
        for argv in {json.dumps([[str(a) for a in c] for c in commands])}:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    status = main(argv)
                except SystemExit as e:
                    status = e.code
            results.append((status, out.getvalue(), err.getvalue()))
        print(json.dumps(results))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_broken_notebooks_are_one_line(tmp_path):
    (tmp_path / "invalid.ipynb").write_text('{"cells": [')
    (tmp_path / "none.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": "x = 1"}]}))
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    (tmp_path / "binary.ipynb").write_bytes(b"\xff\xfe{}")
    (tmp_path / "deep.ipynb").write_text("[" * 100000)
    expected = {"invalid.ipynb": "not a notebook: invalid JSON", "none.ipynb": "no exercise cells found",
                "list.ipynb": "not a notebook: no list of cells", "binary.ipynb": "not UTF-8",
                "deep.ipynb": "not a notebook"}
    results = numpy_ninja(*(["check", name] for name in expected), cwd=tmp_path)
    for (status, out, err), (name, says) in zip(results, expected.items()):
        assert status == 2 and out == "" and err.count("\n") == 1 and says in err, (name, err)
        assert "Traceback" not in err


def test_megabytes_of_outputs_and_a_cell_that_does_not_parse(tmp_path):
    """Outputs are never read; a cell that does not parse and answers no exercise is passed over,
    one that answers an exercise makes that exercise's error."""
    cells = lecture_cells()
    path = write_notebook(tmp_path / "nb.ipynb", cells)
    nb = json.loads(path.read_text())
    nb["cells"][3]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["x" * 1000 + "\n"] * 8000}]
    nb["cells"].insert(5, {"cell_type": "code", "source": ["def broken(:\n"], "metadata": {}, "outputs": [],
                           "execution_count": None})
    ex2 = next(c for c in nb["cells"] if "dlogits = F.softmax" in "".join(c["source"]))
    ex2["source"] = ["dlogits = F.softmax(logits, 1\n"]
    path.write_text(json.dumps(nb))
    assert path.stat().st_size > 8e6
    t0 = time.monotonic()
    report = check_solution(path, batches=2)
    assert time.monotonic() - t0 < 15
    row = rows_by(report)[2, "logits"]
    number = [c for c in nb["cells"] if c["cell_type"] == "code"].index(ex2) + 1
    assert row["verdict"] == "error" and row["hint"].startswith("SyntaxError") and f"cell {number}, line 1" in row["hint"]
    assert {r["verdict"] for r in report.rows if r["exercise"] != 2} <= {"exact", "approximate"}


def test_the_command_writes_the_picture_and_exits_by_the_verdicts(tmp_path, capsys):
    ex1 = EX1_ANSWER.replace("dlogprobs[range(n), Yb] = -1.0/n", "dlogprobs[range(n), Yb] = -1.0")
    path = write_notebook(tmp_path / "nb.ipynb", lecture_cells(ex1=ex1))
    status = main(["check", str(path), "--batches", "2", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 1 and "start with exercise 1 logprobs" in out, err
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "dlogprobs[range(n), Yb] = -1.0" in page
    assert json.loads((tmp_path / "out" / "report.json").read_text())["passed"] is False
