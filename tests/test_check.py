"""`numpy-ninja check`: right answers pass in both backends and dtypes, each planted mistake is
blamed on its own step with a hint naming its kind, and the command's errors are one line."""
import contextlib
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_ninja import atomic
from numpy_ninja.atomic import GRAD_NAMES, PARAM_NAMES
from numpy_ninja.tolerance import ATOL, F64_RTOL, RTOL
from oracle.reference.graph import STEPS
from oracle.grade.blame import BatchReference, grade_batch
from oracle.grade.cases import hard_cases
from oracle.grade import check_solution, cmp
from oracle.grade.hints import Context, diagnose, named_factors, shape_hint
from oracle.grade.learner import namespace
from oracle.grade.work import SolutionError
from oracle.compare.report import LOCKSTEP_F64_MAX
from props import lecture_params, require
from torchfree import blocking

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "tests" / "solutions"
LECTURE = (SOLUTIONS / "lecture_numpy.py").read_text()
LECTURE_SOLUTION = {}
exec(compile(LECTURE, "lecture_numpy.py", "exec"), LECTURE_SOLUTION)
ROW_KEYS = {"exercise", "name", "verdict", "cause", "upstream", "hint", "max_abs_diff", "max_ulp", "rel_err",
            "where"}
# which lines of the lecture's forward read each tensor (its consumers)
CONSUMERS = {
    "logprobs": ["loss"], "probs": ["logprobs"], "counts_sum_inv": ["probs"],
    "counts_sum": ["counts_sum_inv"], "counts": ["counts_sum", "probs"], "norm_logits": ["counts"],
    "logit_maxes": ["norm_logits"], "logits": ["logit_maxes", "norm_logits"], "h": ["logits"],
    "W2": ["logits"], "b2": ["logits"], "hpreact": ["h"], "bngain": ["hpreact"],
    "bnbias": ["hpreact"], "bnraw": ["hpreact"], "bnvar_inv": ["bnraw"], "bnvar": ["bnvar_inv"],
    "bndiff2": ["bnvar"], "bndiff": ["bndiff2", "bnraw"], "bnmeani": ["bndiff"],
    "hprebn": ["bnmeani", "bndiff"], "embcat": ["hprebn"], "W1": ["hprebn"], "b1": ["hprebn"],
    "emb": ["embcat"], "C": ["emb"]}


def numpy_ninja(*args, block=""):
    """`numpy-ninja ARGS` in a subprocess, as a user runs it."""
    code = block + f"import sys\nfrom numpy_ninja.cli import main\nsys.exit(main({[str(a) for a in args]!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def mutated(tmp_path, exercise, old, new):
    """lecture_numpy.py with `old` replaced by `new` inside exercise<k> (where it occurs once)."""
    start = LECTURE.index(f"def exercise{exercise}(")
    end = LECTURE.find("\ndef exercise", start + 1) % (len(LECTURE) + 1)
    body = LECTURE[start:end]
    assert body.count(old) == 1, old
    path = tmp_path / "mine.py"
    path.write_text(LECTURE[:start] + body.replace(old, new) + LECTURE[end:])
    return path


def rows_by_name(report):
    return {r["name"]: r for r in report.rows}


# ---------------------------------------------------------------- right answers

@pytest.mark.parametrize("solution", ["atomic_numpy", "atomic_torch", "lecture_torch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_right_answers_pass(solution, dtype):
    """The project's own numpy_ninja.atomic (wrapped, either backend) and the lecture's own torch
    code: every gradient of the four exercises exact or approximate, in both dtypes."""
    report = check_solution(SOLUTIONS / f"{solution}.py", dtype=dtype)
    assert len(report.rows) == 26 + 1 + 1 + 7 and report.passed
    assert {r["verdict"] for r in report.rows} <= {"exact", "approximate"}
    if solution == "lecture_torch" and dtype == "float32":
        # the lecture's float32 one-step answers differ from autograd (maxdiff ~5e-9 for exercise 2)
        one_step = [r for r in report.rows if r["exercise"] in (2, 3)]
        assert all(r["verdict"] == "approximate" and r["max_abs_diff"] > 0 for r in one_step)
        assert all(r["hint"].startswith("float32 rounding only") for r in one_step)


@pytest.mark.parametrize("old, new", [
    ("    dlogits[range(n), t.logits.argmax(1)] += dlogit_maxes[:, 0]\n", ""),  # the max branch left out
    ("    dlogits[range(n), t.logits.argmax(1)] += dlogit_maxes[:, 0]\n",  # to every tied entry
     "    dlogits += (t.logits == t.logits.max(1, keepdims=True)) * dlogit_maxes\n"),
])
def test_the_logit_maxes_branch_is_not_needed(tmp_path, old, new):
    """dlogit_maxes is zero up to rounding (the softmax does not change when a row is shifted), so
    leaving its branch out, or passing it to every tied maximum, is not wrong."""
    report = check_solution(mutated(tmp_path, 1, old, new), exercise=1)
    assert report.passed


def test_a_shape_that_broadcasts_the_same_way_is_not_wrong(tmp_path):
    """The lecture's own dbnmeani = (-dbndiff).sum(0) is (H,) where bnmeani is (1, H): broadcasting
    prepends axes, so it acts as (1, H) does and is graded on its values, with a note. (N,) for
    (N, 1), or (1, H) for (H,), stays wrong: see the keepdims cases below."""
    report = check_solution(mutated(tmp_path, 1, "dbnmeani = -dbndiff.sum(0, keepdims=True)",
                                    "dbnmeani = -dbndiff.sum(0)"), exercise=1)
    row = rows_by_name(report)["bnmeani"]
    assert report.passed and row["verdict"] in ("exact", "approximate")
    assert "broadcasts the same way" in row["hint"]


# ---------------------------------------------------------------- broken answers

BESSEL_DOWNSTREAM = {"bndiff", "hprebn", "embcat", "W1", "emb", "C"}  # not bnmeani, b1: the error ~ bndiff sums to 0
ALL_BELOW_COUNTS = set(GRAD_NAMES[GRAD_NAMES.index("counts") + 1:]) - {"b1"}  # db1 is 0 for any dhpreact


@pytest.mark.parametrize("exercise, old, new, name, kind, inherited", [
    (1, "dbndiff2 = 1.0 / (n - 1) *", "dbndiff2 = 1.0 / n *", "bndiff2", "(n-1)/n", BESSEL_DOWNSTREAM),
    (1, "np.add.at(dC, Xb, demb)", "dC[Xb] += demb", "C", "looked up more than once", set()),
    (1, "dW2 = t.h.T @ dlogits", "dW2 = dlogits.T @ t.h", "W2", "transposed", set()),
    (1, "dbnmeani = -dbndiff.sum(0, keepdims=True)", "dbnmeani = dbndiff.sum(0, keepdims=True)",
     "bnmeani", "opposite sign", {"hprebn", "embcat", "W1", "b1", "emb", "C"}),
    (1, "dcounts = dcounts + np.ones_like(t.counts) * dcounts_sum", "dcounts = dcounts",
     "counts", "misses the branch through counts_sum", ALL_BELOW_COUNTS),
    (1, "dbnvar = -0.5 *", "dbnvar = -1.0 *", "bnvar", "factor 2", {"bndiff2"} | BESSEL_DOWNSTREAM),
    (1, "dbnbias = dhpreact.sum(0, keepdims=True)", "dbnbias = dhpreact.sum(1, keepdims=True)",
     "bnbias", "summed over axis 1 instead of axis 0", set()),
    (1, "dlogprobs[range(n), Yb] = -1.0 / n", "dlogprobs[range(n), Yb] = -1.0", "logprobs",
     "factor n", set(GRAD_NAMES[1:]) - {"logit_maxes", "b1"}),  # n times zero is still zero
    (1, "dbndiff = dbndiff + 2 * t.bndiff", "dbndiff = dbndiff + t.bndiff", "bndiff",
     "branch through bndiff2 is off by a factor 1/2", {"hprebn", "embcat", "W1", "emb", "C"}),
    (1, "dbnraw = t.bngain * dhpreact", "dbnraw = dhpreact", "bnraw", "factor bngain is missing",
     {"bnvar_inv", "bnvar", "bndiff2", "bnmeani"} | BESSEL_DOWNSTREAM),
    (2, "    dlogits /= n\n", "", "logits", "factor n", set()),
    (2, "    dlogits[range(n), Yb] -= 1\n", "", "logits", "target entries", set()),
    (3, "- n / (n - 1) * bnraw", "- bnraw", "hprebn", "bnvar -> bnvar_inv is off by a factor (n-1)/n", set()),
    (3, "- dhpreact.sum(0)", "", "hprebn", "misses the term through bnmeani", set()),
    (4, "db1 = dhprebn.sum(0)", "db1 = dhprebn.sum(0, keepdims=True)", "b1", "sum without keepdims", set()),
    (4, "dW1 = t.embcat.T @ dhprebn", "dW1 = dhprebn.T @ t.embcat", "W1", "transposed", set()),
])
def test_a_mistake_is_blamed_on_its_step(tmp_path, exercise, old, new, name, kind, inherited):
    """Each broken solution (one line changed) is wrong at its own tensor with cause `local` and
    a hint naming the kind of mistake; every tensor whose gradient it changes is `inherited`,
    from exactly the consumers whose gradients are wrong; nothing else is wrong."""
    report = check_solution(mutated(tmp_path, exercise, old, new), exercise=exercise)
    rows = rows_by_name(report)
    assert not report.passed
    assert rows[name]["verdict"] == "wrong" and rows[name]["cause"] == "local"
    assert kind in rows[name]["hint"] and rows[name]["upstream"] is None
    wrong = {r["name"] for r in report.rows if r["verdict"] != "exact" and r["verdict"] != "approximate"}
    assert wrong == {name} | inherited
    for x in inherited:
        assert rows[x]["verdict"] == "wrong" and rows[x]["cause"] == "inherited"
        assert set(rows[x]["upstream"].split(", ")) == {c for c in CONSUMERS[x] if c in wrong}


def test_exercise_4_traces_a_wrong_parameter_to_its_own_intermediate_gradient(tmp_path):
    """dlogits without its 1/n: every parameter below it is wrong, inherited through the lecture's
    names (dlogits, dhpreact, dhprebn, demb), and the hint names the local mistake in dlogits."""
    old = "    dlogits /= n\n    dh = dlogits @ t.W2.T"
    report = check_solution(mutated(tmp_path, 4, old, "    dh = dlogits @ t.W2.T"), exercise=4)
    rows = rows_by_name(report)
    came_from = {"W2": "logits", "b2": "logits", "bngain": "hpreact", "bnbias": "hpreact",
                 "W1": "hprebn", "C": "emb"}
    for name, upstream in came_from.items():
        assert (rows[name]["verdict"], rows[name]["cause"], rows[name]["upstream"]) == ("wrong", "inherited", upstream)
        assert "your dlogits is wrong: off by a factor n" in rows[name]["hint"]
    assert rows["b1"]["verdict"] == "approximate"  # zero for any dhpreact


def test_what_is_not_a_gradient_gets_a_verdict_not_a_traceback():
    """A function that raises: its rows are `error` with the message, the rest is graded; NaN,
    another dtype, something that is not an array, None: each its own row."""
    lecture = LECTURE_SOLUTION

    def exercise1(t):
        g = lecture["exercise1"](t)
        g["probs"] = np.where(np.arange(g["probs"].size).reshape(g["probs"].shape) == 5, np.nan, g["probs"])
        g["h"] = g["h"].astype(np.float32)
        g["W2"], g["bnraw"], g["zzz"] = [1.0], None, 1
        return g

    def exercise3(dhpreact, bngain, bnvar_inv, bnraw, n):
        if n == 2:
            raise ZeroDivisionError("only for two rows")
        return lecture["exercise3"](dhpreact, bngain, bnvar_inv, bnraw, n)

    solution = SimpleNamespace(exercise1=exercise1, exercise2=lambda logits, Yb: 1 / 0, exercise3=exercise3,
                               exercise4=lambda t: "not a dict")
    report = check_solution(solution)
    rows = {(r["exercise"], r["name"]): r for r in report.rows}
    assert rows[1, "probs"]["verdict"] == "wrong" and "1 of 864 entries are NaN" in rows[1, "probs"]["hint"]
    # right to its own dtype's precision: approximate, saying so (a float64 check, a float32 answer)
    assert rows[1, "h"]["verdict"] == "approximate" and "float32, where the check runs in float64" in rows[1, "h"]["hint"]
    assert rows[1, "W2"]["verdict"] == "error" and "list, not an array" in rows[1, "W2"]["hint"]
    assert rows[1, "bnraw"]["verdict"] == "missing"
    assert rows[1, "counts"]["verdict"] in ("exact", "approximate") and rows[1, "hpreact"]["verdict"] == "approximate"
    assert rows[2, "logits"]["verdict"] == "error" and rows[2, "logits"]["hint"] == "ZeroDivisionError: division by zero"
    assert rows[3, "hprebn"]["verdict"] == "error" and rows[3, "hprebn"]["hint"].endswith("[in batch n=2]")
    assert all(rows[4, k]["verdict"] == "error" and "str, not a dict" in rows[4, k]["hint"] for k in PARAM_NAMES)
    assert report.notes == ["exercise1 returned 'zzz', which is not one of its gradients (ignored)"]
    with pytest.raises(SolutionError, match="none of exercise1"):
        check_solution(SimpleNamespace())


@settings(max_examples=settings.default.max_examples // 4)  # drawing lecture_params is most of the cost
@given(lecture_params(), st.data())
def test_any_graph_right_answers_pass_and_a_doubled_one_is_local(case, data):
    """On any graph lecture_params draws (sizes, scales, dtype), answers computed from the forward
    tensors handed out (lecture_numpy) are never wrong; one of them doubled, and nothing else
    changed, is wrong and `local`, the hint naming the factor, unless its true value is within
    rounding of zero. In float64 nothing else is wrong; in float32 a right neighbour that also
    fails the element-wise allclose can be blamed next to a returned upstream it was not computed
    from (docs/check.md)."""
    params, Xb, Yb = case
    dtype = params["C"].dtype
    batch = BatchReference.of(params, Xb, Yb, dtype)
    require(atomic.resolves(batch.t["hprebn"], dtype))
    answers = LECTURE_SOLUTION["exercise1"](namespace(batch, "numpy"))
    grades = grade_batch(STEPS, GRAD_NAMES, answers, batch)
    assert {g.verdict for g in grades.values()} <= {"exact", "approximate"}
    name = data.draw(st.sampled_from(GRAD_NAMES), label="doubled")
    grades = grade_batch(STEPS, GRAD_NAMES, dict(answers, **{name: 2 * answers[name]}), batch)
    wrong = {k for k, g in grades.items() if g.verdict == "wrong"}
    floor = F64_RTOL if dtype == np.float64 else RTOL
    if np.abs(batch.truth[name]).max() > 10 * floor * batch.scales[name] + ATOL:
        assert name in wrong
    if name in wrong:  # the factor named may be n or n/(n-1) when they are 2
        named = {label: value for label, value, _ in named_factors(len(Xb))}
        label = re.match(r"off by a factor (\S+)", grades[name].hint).group(1)
        assert grades[name].cause == "local" and named[label] == 2
    if dtype == np.float64:
        assert wrong <= {name}


# ---------------------------------------------------------------- the pieces

def test_the_batches_hold_the_hard_cases():
    """n=2 and n=32; a row whose largest logit ties exactly in the logits autograd computes;
    contexts with a character twice; BatchNorm variance far below eps and far above 1; every
    batch resolvable in float32."""
    cases = hard_cases(4, seed=42)
    assert [len(c.Xb) for c in cases] == [2, 32, 32, 32]
    for dtype in (np.float32, np.float64):
        logits = BatchReference.of(cases[1].params, cases[1].Xb, cases[1].Yb, dtype, scales=False).t["logits"]
        tied = (logits == logits.max(1, keepdims=True)).sum(1) > 1
        assert 0 < tied.sum() < len(tied)
    assert any(len(set(row)) < 3 for row in cases[1].Xb.tolist())
    variance = BatchReference.of(cases[2].params, cases[2].Xb, cases[2].Yb, np.float64, scales=False).t["bnvar"]
    assert variance.min() < 1e-5 / 100 and variance.max() > 1e5
    for c in cases:
        assert atomic.resolves(BatchReference.of(c.params, c.Xb, c.Yb, np.float64, scales=False).t["hprebn"], np.float32)


@pytest.mark.parametrize("got, want, says", [
    ((32,), (32, 1), "keepdims=True); as (32,) it broadcasts along the last axis"),
    ((64,), (1, 64), "keep the summed axis (keepdims=True)"),
    ((1, 64), (64,), "sum without keepdims"),
    ((32, 27), (32, 1), "broadcast along axis 1 in the forward, so sum its gradient over axis 1 with keepdims=True"),
    ((32, 27), (27,), "sum its gradient over axis 0"),
    ((1, 64), (32, 64), "summed over axis 0 in the forward"),
    ((32, 1), (1, 64), "summed over axis 1 instead of axis 0"),
    ((27, 64), (64, 27), "transposed"),
])
def test_shape_hints(got, want, says):
    assert says in shape_hint("x", got, want)


def test_a_mistake_only_in_tied_rows_is_named():
    """Rows whose maximum is tied: the hint says so when the difference is confined to them (a
    mistake there is only visible when dlogit_maxes is not zero, i.e. after another mistake)."""
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((6, 5))
    ours = expected.copy()
    ours[[1, 4], 2] += 0.5
    ctx = Context("logits", 6, np.float64, 1.0, {}, tied_rows=np.isin(np.arange(6), [1, 3, 4]))
    assert "right except in rows whose largest logit is tied (rows 1, 4)" in diagnose(ours, expected, ctx)
    ctx.tied_rows = np.isin(np.arange(6), [3])
    assert "tied" not in diagnose(ours, expected, ctx)


def test_cmp_prints_the_lecture_line_with_ulp_and_a_hint():
    x = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    (x.softmax(1)[range(8), 0].log().mean() * -1).backward()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cmp("logits", x.grad.clone(), x)
        cmp("logits", x.grad * 8, x)
        cmp("logits", x.grad.sum(1), x)
    exact, scaled, summed = out.getvalue().splitlines()
    assert exact == "logits          | exact: True  | approximate: True  | maxdiff: 0.0 | ulp: 0"
    assert scaled.startswith("logits          | exact: False | approximate: False | maxdiff: ")
    assert scaled.endswith("| off by a factor n (the 1/n of the mean is missing)")
    assert "shape (8,), but logits is (8, 5)" in summed


# ---------------------------------------------------------------- training and the command

def test_training_in_lockstep_drifts_only_by_rounding(tmp_path):
    right = check_solution(SOLUTIONS / "lecture_numpy.py", exercise=4, batches=1, train=20).train
    assert right["steps"] == 20 and right["max_param_rel_diff"] < LOCKSTEP_F64_MAX
    old = "    dlogits /= n\n    dh = dlogits @ t.W2.T"
    broken = mutated(tmp_path, 4, old, "    dh = dlogits @ t.W2.T")
    assert check_solution(broken, exercise=4, batches=1, train=20).train["max_param_rel_diff"] > 1e-3


USER_ERRORS = {  # a solution file (None: no file), more arguments, what the one line says
    "no file": (None, [], "mine.py: no such file"),
    "syntax": ("def exercise1(t):\n    return {\n", [], "does not import: SyntaxError"),
    "raises": ("import numpy\nraise RuntimeError('half written')\ndef exercise1(t):\n    return {}\n", [],
               "does not import: RuntimeError: half written (line 2)"),
    "no exercise": ("x = 1\n", [], "no exercise cells found"),
    "not defined": ("def exercise2(logits, Yb):\n    return logits\n", ["--exercise", "3"], "does not define exercise3"),
    "backend": ("BACKEND = 'jax'\ndef exercise2(logits, Yb):\n    return logits\n", [], "BACKEND must be 'numpy' or 'torch'"),
    "batches": ("def exercise2(logits, Yb):\n    return logits\n", ["--batches", "0"], "must be a positive integer"),
    "train": ("def exercise2(logits, Yb):\n    return logits\n", ["--train", "5"], "training needs exercise 4"),
    "both": ("def exercise2(logits, Yb):\n    return logits\n", ["--template"], "either a solution file or --template"),
}


@pytest.fixture(scope="module")
def command(tmp_path_factory):
    """Every command line of these tests, run by numpy_ninja.cli.main in one subprocess (one
    torch import): {name: (exit status, stdout, stderr)}."""
    tmp = tmp_path_factory.mktemp("check")
    runs = {"template": ["check", "--template"],
            "broken": ["check", mutated(tmp, 1, "dbndiff2 = 1.0 / (n - 1) *", "dbndiff2 = 1.0 / n *"),
                       "--exercise", "1", "--format", "json", "--out", tmp / "out"],
            "right": ["check", SOLUTIONS / "lecture_torch.py", "--exercise", "2", "--batches", "1",
                      "--format", "markdown"]}
    for name, (content, args, _) in USER_ERRORS.items():
        path = tmp / name.replace(" ", "_") / "mine.py"
        path.parent.mkdir()
        if content is not None:
            path.write_text(content)
        runs[name] = ["check", path, *args]
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from numpy_ninja.cli import main
        results = {{}}
        for name, argv in {json.dumps({k: [str(a) for a in v] for k, v in runs.items()})}.items():
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    status = main(argv)
                except SystemExit as e:
                    status = e.code
            results[name] = (status, out.getvalue(), err.getvalue())
        print(json.dumps(results))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp)
    assert r.returncode == 0, r.stderr
    return tmp, json.loads(r.stdout)


def test_the_template_reports_every_gradient_missing(command, tmp_path):
    status, out, err = command[1]["template"]
    assert status == 0 and err == ""
    assert "    # logprobs = probs.log()\n    dprobs = None  # TODO\n" in out
    (tmp_path / "mine.py").write_text(out)
    report = check_solution(tmp_path / "mine.py")
    assert report.passed and {r["verdict"] for r in report.rows} == {"missing"} and len(report.rows) == 35
    assert report._repr_markdown_().startswith(f"{tmp_path / 'mine.py'}: float64, 4 batches")


def test_command_exit_status_json_and_files(command):
    tmp, results = command
    status, out, err = results["broken"]
    assert status == 1, err
    report = json.loads(out)
    assert report == json.loads((tmp / "out" / "report.json").read_text())
    assert report["passed"] is False and len(report["rows"]) == 26
    assert all(set(row) == ROW_KEYS for row in report["rows"])
    assert "| exercise | name | verdict |" in (tmp / "out" / "report.md").read_text()
    status, out, err = results["right"]
    assert status == 0 and "| 2 | logits | approximate |" in out, out + err


@pytest.mark.parametrize("name", USER_ERRORS)
def test_user_errors_are_one_line(command, name):
    status, out, err = command[1][name]
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and USER_ERRORS[name][2] in err, err


def test_without_torch_it_says_how_to_install(tmp_path):
    (tmp_path / "mine.py").write_text("def exercise2(logits, Yb):\n    return logits\n")
    r = numpy_ninja("check", tmp_path / "mine.py", block=blocking("torch") + "\n")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "pip install 'numpy-ninja[oracle]'" in r.stderr
