"""check's report: one row per tensor, rendered as a terminal table, markdown or JSON."""
from dataclasses import dataclass, field

from numpy_ninja.console import render_table
from oracle.grade.verdicts import VERDICTS


@dataclass
class Report:
    """The graded rows; printing it gives the table, Jupyter the markdown."""
    rows: list
    dtype: str
    batches: list
    seed: int
    source: str = ""
    notes: list = field(default_factory=list)
    train: dict = None

    @property
    def passed(self):
        return not any(r["verdict"] in ("wrong", "error") for r in self.rows)

    def as_dict(self):
        return dict(passed=self.passed, rows=self.rows, dtype=self.dtype, batches=self.batches,
                    seed=self.seed, file=self.source, notes=self.notes, train=self.train)

    @classmethod
    def from_dict(cls, d):
        """The Report whose as_dict() is d (a report.json read back)."""
        return cls(d["rows"], d["dtype"], d["batches"], d["seed"], d["file"], d["notes"], d["train"])

    def __str__(self):
        return render(self, "table")

    def _repr_markdown_(self):
        return render(self, "markdown")


COLUMNS = ("exercise", "name", "verdict", "cause", "upstream", "max_abs_diff", "max_ulp", "rel_err", "hint")


def fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2e}"
    return str(value)


def where_to_start(rows):
    """Where the summary says to start: (row, tensor). The first row, from the loss back, whose
    own step is wrong (cause local) or whose function raised, and its tensor; else, when the wrong
    step is not a graded row (exercise 4's intermediates), the first inherited row naming an
    upstream, and that upstream; else the first row whose cause cannot be told (an upstream
    gradient missing), and its tensor; else (None, None)."""
    first = next((r for r in rows if r["cause"] == "local" or r["verdict"] == "error"), None)
    if first:
        return first, first["name"]
    inherited = next((r for r in rows if r["cause"] == "inherited" and r["upstream"]), None)
    if inherited:
        return inherited, inherited["upstream"]
    unknown = next((r for r in rows if r["cause"] == "unknown"), None)  # cannot tell which step
    return unknown, unknown and unknown["name"]


def summary(report):
    """The last line: passed, or where to start."""
    counts = {v: sum(r["verdict"] == v for r in report.rows) for v in VERDICTS}
    tally = ", ".join(f"{counts[v]} {v}" for v in reversed(VERDICTS) if counts[v])
    if report.passed and counts["missing"]:
        given = len(report.rows) - counts["missing"]
        return (f"PASSED with {counts['missing']} of {len(report.rows)} missing: nothing wrong in the "
                f"{given} given ({tally})")
    if report.passed:
        return f"PASSED: nothing wrong ({tally})"
    row, tensor = where_to_start(report.rows)
    where = ""
    if row and row["verdict"] == "error":
        where = f"; start with the error of exercise {row['exercise']}: {row['hint']}"
    elif row and row["name"] == tensor:
        where = f"; start with exercise {row['exercise']} {tensor}"
    elif row:
        where = f"; start with exercise {row['exercise']} d{tensor}, where {row['name']}'s error comes from"
    return f"FAILED ({tally}){where}"


def train_lines(train):
    if train is None:
        return []
    if train.get("stopped"):
        return [f"training stopped: {train['stopped']}"]
    if "max_grad_rel_diff" in train:  # a notebook's own loop
        return [f"training {train['steps']} steps with your loop ({train['dtype']}), autograd at every "
                f"step's parameters: largest relative difference of a gradient "
                f"{train['max_grad_rel_diff']:.2e}; loss {train['first_loss']:.4f} -> {train['final_loss']:.4f}"]
    return [f"training {train['steps']} steps in lockstep with autograd ({train['dtype']}): largest "
            f"parameter relative difference {train['max_param_rel_diff']:.2e}, largest loss "
            f"difference {train['max_loss_diff']:.2e}; final loss yours {train['final_loss']:.4f}, "
            f"autograd {train['final_loss_autograd']:.4f}"]


def render(report, style):
    """The report as a terminal table or as markdown."""
    count = len(report.batches)
    head = [f"{report.source or 'solution'}: {report.dtype}, {count} batch{'es' if count != 1 else ''} "
            f"({'; '.join(report.batches)}), seed {report.seed}", ""]
    body = [[fmt(r[c]) for c in COLUMNS] for r in report.rows]
    tail = train_lines(report.train) + [summary(report)]
    if style == "markdown":
        tail = [f"- {line}" for line in tail]
    return "\n".join(head + render_table(COLUMNS, body, style) + [""] + tail)
