"""`numpy-ninja compare`: registered by the oracle under the entry-point group
`numpy_ninja.commands`, so numpy_ninja itself never imports the oracle or torch. This module
imports neither torch nor the report until the command runs."""
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

from numpy_ninja.cli import ArgumentParser, option
from numpy_ninja.config import DEFAULTS, MODEL_DEFAULTS, ConfigError
from numpy_ninja.data import DataError, count_examples, default_data_path, load_dataset
from numpy_ninja.files import make_dirs, reason, remove_dirs, write_atomic
from numpy_ninja.resources import ResourceError, check_memory
from oracle.threads import one_thread

COLUMNS = ("section", "name", "dtype", "shape", "exact", "allclose", "max_abs_diff", "max_rel_err",
           "max_ulp", "passed")
INSTALL = "numpy-ninja compare needs PyTorch: pip install 'numpy-ninja[oracle]' (torch 2.13.0)"
# With two rows BatchNorm's output is -+1/sqrt(2) (up to eps) whatever its input: the gradients
# through it cancel to rounding (measured against their terms every float32 row passes, against
# their own size several fail), which no tolerance on their own size can tell from an error.
TWO_ROWS = ("--batch-size 2 cannot be judged: BatchNorm normalises two rows to -1/sqrt(2) and "
            "+1/sqrt(2) whatever their values, so the gradients through it cancel to rounding; "
            "use --batch-size 3 or more")


EXIT_FAILED, EXIT_CANNOT_RUN = 1, 2  # a row breaks the tolerance; the report cannot be made


class CompareError(Exception):
    """One line for the user; exit status 2."""


def parser():
    p = ArgumentParser(
        prog="numpy-ninja compare",
        description="Compare numpy-ninja with PyTorch autograd: the lecture's 26 gradients, the "
                    "one-step backward of exercises 2 and 3, every parameter gradient of a model, "
                    "and lockstep training, in float32 and float64. Exits 1 when any row breaks "
                    "the tolerance (float64: relative error <= 1e-10; float32: torch.allclose "
                    "defaults against the tensor's scale; float64 lockstep parameters within 1e-8), "
                    "2 when the report cannot be made (a bad setting, data or --out).")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help=f"initialisation and batches, >= 0 (default: {DEFAULTS.seed})")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help=f"rows per batch, at least 3 (default: {DEFAULTS.batch_size})")
    p.add_argument("--hidden", type=int, help="hidden units (default: the model's, "
                   + "; ".join(f"{d['n_hidden']} for {m}" for m, d in MODEL_DEFAULTS.items()) + ")")
    p.add_argument("--steps", type=int, default=1000, help="lockstep training steps (default: 1000)")
    p.add_argument("--model", choices=tuple(MODEL_DEFAULTS), default=DEFAULTS.model,
                   help="network for sections 3 and 4")
    p.add_argument("--data", default=str(default_data_path()), help="names file (default: the shipped one)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    p.add_argument("--out", type=Path, help="also write report.md, report.json and pictures into DIR")
    return p


def fmt(value):
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.2e}"
    if isinstance(value, list):
        return "x".join(map(str, value)) or "()"
    return str(value)


def lockstep_lines(lock):
    lines = [f"lockstep training, {lock['steps']} steps:"]
    for dtype in lock["curves"]:
        lines.append(f"  {dtype}: largest parameter relative difference "
                     f"{lock['max_param_rel_divergence'][dtype]:.2e}, largest loss difference "
                     f"{lock['max_loss_abs_diff'][dtype]:.2e}")
    lines.append(f"  float64 limit {lock['float64_limit']:.0e}: {'passed' if lock['passed'] else 'FAILED'}")
    return lines


def render(report, style):
    """The report as a terminal table or markdown."""
    head = list(COLUMNS) + ["note"]
    body = [[fmt(r[c]) for c in COLUMNS] + [r["note"]] for r in report["rows"]]
    if style == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        lines += [""] + [f"- {line.strip()}" for line in lockstep_lines(report["lockstep"])]
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head] + body]
        lines += [""] + lockstep_lines(report["lockstep"])
    failed = [f"{r['name']} ({r['dtype']})" for r in report["rows"] if not r["passed"]]
    lines.append("")
    lines.append("PASSED: every row within tolerance" if report["passed"] else
                 "FAILED: " + (", ".join(failed) if failed else "lockstep divergence"))
    return "\n".join(lines)


def write_pictures(out, report, pictures):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["pictures skipped: matplotlib is not installed (pip install 'numpy-ninja[plot]')"]
    curves = report["lockstep"]["curves"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for dtype, c in curves.items():
        ax.plot(c["ours"], label=f"numpy {dtype}", lw=1)
        ax.plot(c["torch"], label=f"torch {dtype}", lw=1, ls="--")
    ax.set(xlabel="step", ylabel="batch loss", title="lockstep training")
    ax.legend()
    save(fig, out / "lockstep_loss.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4))
    for dtype, c in curves.items():
        ax.plot([max(d, 1e-300) for d in c["divergence"]], label=dtype)
    ax.set(yscale="log", xlabel="step", ylabel="max relative parameter difference",
           title="numpy vs torch parameters")
    ax.legend()
    save(fig, out / "divergence.png")
    plt.close(fig)
    p = pictures["float32"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (title, img) in zip(axes, [("numpy dlogits", p["ours"]), ("torch dlogits", p["ref"]),
                                       ("difference", p["ours"] - p["ref"])]):
        ax.imshow(img, cmap="gray")
        ax.set_title(f"{title} (float32)")
    save(fig, out / "dlogits.png")
    plt.close(fig)
    return []


def save(fig, path):
    """A figure as PNG, written atomically; the figure is closed either way."""
    import matplotlib.pyplot as plt
    try:
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)


def prepare_out(out):
    """Make --out and check a file can be created in it, before the long report runs; returns the
    directories made (removed again if the report does not get written)."""
    try:
        if out.exists() and not out.is_dir():
            raise CompareError(f"--out {out} exists and is not a directory")
        created = make_dirs(out)
        tempfile.NamedTemporaryFile(dir=out).close()
    except OSError as e:
        raise CompareError(f"cannot write into --out {out} ({reason(e)})") from None
    return created


def check(args):
    """Settings the report can judge, and data that fits in memory: CompareError or ConfigError."""
    from oracle.report import config_for
    config = config_for(args)
    if args.batch_size == 2:
        raise CompareError(TWO_ROWS)
    data = load_dataset(args.data, config.block_size, args.seed)
    check_memory(config, len(data.vocab), count_examples(data.words))  # no calibration
    return data


def main(argv):
    args = parser().parse_args(argv)
    try:
        importlib.import_module("torch")
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        with one_thread():
            return compare(args, Progress())
    except ConfigError as e:
        error(f"{option({'n_hidden': 'hidden'}.get(e.name, e.name))}: {e.message}")
    except (CompareError, DataError, ResourceError) as e:
        error(str(e))
    return EXIT_CANNOT_RUN


def error(message):
    print(f"numpy-ninja compare: error: {message}", file=sys.stderr)


class Progress:
    """What the report is doing, on stderr, once it has run for more than a couple of seconds
    (and then every couple of seconds)."""

    def __init__(self, every=2.0):
        self.t0 = self.next = time.monotonic() + every
        self.every = every

    def __call__(self, doing):
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.every
            print(f"numpy-ninja compare: {doing} ({now - self.t0 + self.every:.0f} s)",
                  file=sys.stderr, flush=True)


def compare(args, progress):
    from oracle.report import LOCKSTEP_F64_MAX, build_report, lockstep_drift

    data = check(args)
    created = prepare_out(args.out) if args.out else []
    written = False
    try:
        drift = lockstep_drift(args, data, progress)
        if drift > LOCKSTEP_F64_MAX:
            raise CompareError(
                f"the lockstep cannot be judged at --batch-size {args.batch_size} --seed {args.seed} "
                f"over {args.steps} steps: this training turns one rounding per parameter per step "
                f"into a relative difference of {drift:.1e}, beyond the limit {LOCKSTEP_F64_MAX:.0e}; "
                "use a larger --batch-size or fewer --steps")
        report, pictures = build_report(args, data, progress)
        text = json.dumps(report) if args.format == "json" else render(report, args.format)
        print(text)
        if args.out:
            try:
                for name, content in (("report.md", render(report, "markdown") + "\n"),
                                      ("report.json", json.dumps(report, indent=1) + "\n")):
                    write_atomic(args.out / name, lambda f: f.write(content.encode()))
                    written = True
                for line in write_pictures(args.out, report, pictures):
                    print(line, file=sys.stderr)
            except OSError as e:
                raise CompareError(f"cannot write the report into --out {args.out} ({reason(e)})") from None
    finally:
        if not written:
            remove_dirs(created)
    return 0 if report["passed"] else EXIT_FAILED
