"""`numpy-ninja compare`: registered by the oracle under the entry-point group
`numpy_ninja.commands`, so numpy_ninja itself never imports the oracle or torch. This module
imports neither torch nor the report until the command runs."""
import argparse
import importlib
import json
import sys
from pathlib import Path

from numpy_ninja.data import DataError, default_data_path
from numpy_ninja.models import MODELS

COLUMNS = ("section", "name", "dtype", "shape", "exact", "allclose", "max_abs_diff", "max_rel_err",
           "max_ulp", "passed")
INSTALL = "numpy-ninja compare needs PyTorch: pip install 'numpy-ninja[oracle]' (torch 2.13.0)"


def parser():
    p = argparse.ArgumentParser(
        prog="numpy-ninja compare",
        description="Compare numpy-ninja with PyTorch autograd: the lecture's 26 gradients, the "
                    "one-step backward of exercises 2 and 3, every parameter gradient of a model, "
                    "and lockstep training, in float32 and float64. Exits 1 when any row breaks "
                    "the tolerance (float64: relative error <= 1e-10; float32: torch.allclose "
                    "defaults against the tensor's scale; float64 lockstep parameters within 1e-8).")
    p.add_argument("--seed", type=int, default=42, help="initialisation and batches (default: 42)")
    p.add_argument("--batch-size", type=int, default=32, help="rows per batch, at least 2 (default: 32)")
    p.add_argument("--hidden", type=int, help="hidden units (default: the model's, 200 for mlp)")
    p.add_argument("--steps", type=int, default=1000, help="lockstep training steps (default: 1000)")
    p.add_argument("--model", choices=sorted(MODELS), default="mlp", help="network for sections 3 and 4")
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
    fig.savefig(out / "lockstep_loss.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4))
    for dtype, c in curves.items():
        ax.plot([max(d, 1e-300) for d in c["divergence"]], label=dtype)
    ax.set(yscale="log", xlabel="step", ylabel="max relative parameter difference",
           title="numpy vs torch parameters")
    ax.legend()
    fig.savefig(out / "divergence.png", dpi=100)
    plt.close(fig)
    p = pictures["float32"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (title, img) in zip(axes, [("numpy dlogits", p["ours"]), ("torch dlogits", p["ref"]),
                                       ("difference", p["ours"] - p["ref"])]):
        ax.imshow(img, cmap="gray")
        ax.set_title(f"{title} (float32)")
    fig.savefig(out / "dlogits.png", dpi=100)
    plt.close(fig)
    return []


def main(argv):
    args = parser().parse_args(argv)
    for name in ("batch_size", "steps", "hidden"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "batch_size" else 1):
            print(f"numpy-ninja compare: error: --{name.replace('_', '-')} is too small ({value})", file=sys.stderr)
            return 1
    try:
        importlib.import_module("torch")
    except ImportError:
        print(INSTALL, file=sys.stderr)
        return 1
    from oracle.report import build_report

    try:
        report, pictures = build_report(args)
    except DataError as e:
        print(f"numpy-ninja compare: error: {e}", file=sys.stderr)
        return 1
    text = json.dumps(report) if args.format == "json" else render(report, args.format)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.md").write_text(render(report, "markdown") + "\n")
        (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        for line in write_pictures(args.out, report, pictures):
            print(line, file=sys.stderr)
    return 0 if report["passed"] else 1
