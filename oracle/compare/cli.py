"""`numpy-ninja compare`: registered by the oracle under the entry-point group
`numpy_ninja.commands`, so numpy_ninja itself never imports the oracle or torch. This module
imports neither torch nor the report until the command runs."""
import json
import sys
from pathlib import Path

from numpy_ninja.cli import ArgumentParser
from numpy_ninja.config import (DEFAULTS, LECTURE_MODELS, MAKEMORE_MODELS, MODEL_DEFAULTS, SIZES,
                                ConfigError, option_name)
from numpy_ninja.console import Progress, UserError, error, render_table
from numpy_ninja.data import (Dataset, Vocab, count_examples, default_data_path, load_dataset, load_words,
                              sequence_length)
from numpy_ninja.files import reason
from numpy_ninja.resources import check_memory
from oracle._common import OutDir, install_hint, missing, one_thread

PROG = "numpy-ninja compare"
COLUMNS = ("section", "name", "dtype", "shape", "exact", "allclose", "max_abs_diff", "max_rel_err",
           "max_ulp", "passed")
# With two rows BatchNorm's output is -+1/sqrt(2) (up to eps) whatever its input: the gradients
# through it cancel to rounding (measured against their terms every float32 row passes, against
# their own size several fail), which no tolerance on their own size can tell from an error.
TWO_ROWS = ("--batch-size 2 cannot be judged: BatchNorm normalises two rows to -1/sqrt(2) and "
            "+1/sqrt(2) whatever their values, so the gradients through it cancel to rounding; "
            "use --batch-size 3 or more")
EXIT_FAILED, EXIT_CANNOT_RUN = 1, 2  # a row breaks the tolerance; the report cannot be made
SIZE_OPTIONS = {"hidden": "n_hidden", "n_layer": "n_layer", "n_head": "n_head", "n_embd": "n_embd",
                "n_embd2": "n_embd2"}  # compare's size options and the settings they set


def sizes_taken(model):
    """compare's size options (dest names) that apply to `model`: --hidden for the lecture's
    models, makemore's sizes for theirs (the block size of makemore's comes from the data)."""
    if model in LECTURE_MODELS:
        return ("hidden",)
    return tuple(o for o, k in SIZE_OPTIONS.items() if k != "n_hidden" and k in SIZES[model])


def parser():
    p = ArgumentParser(
        prog=PROG,
        description="Compare numpy-ninja with PyTorch autograd, in float32 and float64. The "
                    "lecture's models (mlp, wavenet): the lecture's 26 gradients, the one-step "
                    "backward of exercises 2 and 3, every parameter gradient of the model, and "
                    "lockstep training with SGD. makemore.py's models (bigram, bengio, rnn, gru, "
                    "bow, transformer): every parameter gradient on a batch of its sequences, by "
                    "makemore's state_dict names, against makemore's module tree in torch, and "
                    "lockstep training with AdamW against torch.optim.AdamW. Exits 1 when any row "
                    "breaks the tolerance (float64: relative error <= 1e-10; float32: "
                    "torch.allclose defaults against the tensor's scale; float64 lockstep "
                    "parameters within 1e-8), 2 when the report cannot be made (a bad setting, "
                    "data or --out).")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help=f"initialisation and batches, >= 0 (default: {DEFAULTS.seed})")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help=f"rows per batch, at least 3 for the lecture's models (BatchNorm) "
                        f"(default: {DEFAULTS.batch_size})")
    p.add_argument("--hidden", type=int, help="hidden units of the lecture's models (default: the model's, "
                   + "; ".join(f"{MODEL_DEFAULTS[m]['n_hidden']} for {m}" for m in LECTURE_MODELS) + ")")
    for option, what in (("n_layer", "transformer blocks"), ("n_head", "attention heads per block"),
                         ("n_embd", "embedding size"), ("n_embd2", "hidden size")):
        users = [m for m in MAKEMORE_MODELS if option in SIZES[m]]
        default = MODEL_DEFAULTS[users[0]][option]
        p.add_argument(option_name(option), type=int, dest=option,
                       help=f"{what}, for {', '.join(users)} (default: makemore's {default})")
    p.add_argument("--steps", type=int, default=1000, help="lockstep training steps (default: 1000)")
    p.add_argument("--model", choices=LECTURE_MODELS + MAKEMORE_MODELS, default=DEFAULTS.model,
                   help=f"the network compared (default: {DEFAULTS.model}); the broken-up graph and "
                        "the one-step backward are the lecture's MLP whichever lecture model is chosen")
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
    adamw = " with AdamW" if lock.get("optimizer") == "adamw" else ""
    lines = [f"lockstep training{adamw}, {lock['steps']} steps:"]
    for dtype in lock["curves"]:
        lines.append(f"  {dtype}: largest parameter relative difference "
                     f"{lock['max_param_rel_divergence'][dtype]:.2e}, largest loss difference "
                     f"{lock['max_loss_abs_diff'][dtype]:.2e}")
    if "float64_drift" in lock:
        lines.append(f"  float64 rounding drift (the training against itself with each gradient "
                     f"nudged by a rounding per step): {lock['float64_drift']:.2e}")
    lines.append(f"  float64 limit {lock['float64_limit']:.0e}: {'passed' if lock['passed'] else 'FAILED'}")
    return lines


def render(report, style):
    """The report as a terminal table or markdown."""
    head = list(COLUMNS) + ["note"]
    body = [[fmt(r[c]) for c in COLUMNS] + [r["note"]] for r in report["rows"]]
    lines = render_table(head, body, style) + [""]
    lock = lockstep_lines(report["lockstep"])
    lines += [f"- {line.strip()}" for line in lock] if style == "markdown" else lock
    failed = [f"{r['name']} ({r['dtype']})" for r in report["rows"] if not r["passed"]]
    lines.append("")
    lines.append("PASSED: every row within tolerance" if report["passed"] else
                 "FAILED: " + (", ".join(failed) if failed else "lockstep divergence"))
    return "\n".join(lines)


def check(args):
    """Settings the report can judge, and data that fits in memory: UserError or ConfigError."""
    from oracle.compare.report import config_for
    for option in SIZE_OPTIONS:
        if getattr(args, option) is not None and option not in sizes_taken(args.model):
            taken = sizes_taken(args.model)
            takes = (f"it takes {', '.join(option_name(o) for o in taken)}" if taken else
                     "it has no sizes to set")
            raise UserError(f"{option_name(option)} does not apply to the {args.model} model ({takes})")
    if args.model in MAKEMORE_MODELS:
        words = load_words(args.data)
        config = config_for(args, block_size=sequence_length(words))
        check_memory(config, len(Vocab.from_words(words)), count_examples(words, sequences=True))
        return Dataset.from_words(args.data, words, config.block_size, args.seed, sequences=True)
    config = config_for(args)
    if args.batch_size == 2:
        raise UserError(TWO_ROWS)
    data = load_dataset(args.data, config.block_size, args.seed)
    check_memory(config, len(data.vocab), count_examples(data.words))  # no calibration
    return data


def main(argv):
    args = parser().parse_args(argv)
    if missing("torch"):
        print(f"{PROG} needs PyTorch: {install_hint()}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        with one_thread():
            return compare(args, Progress(PROG, delay=2, every=2))
    except ConfigError as e:
        error(PROG, f"{option_name({'n_hidden': 'hidden'}.get(e.name, e.name))}: {e.message}")
    except UserError as e:
        error(PROG, str(e))
    return EXIT_CANNOT_RUN


def unjudgeable(args, drift, what):
    """The refusal of a lockstep whose own rounding drifts past the float64 limit."""
    from oracle.compare.report import LOCKSTEP_F64_MAX
    return UserError(
        f"the lockstep cannot be judged at --batch-size {args.batch_size} --seed {args.seed} "
        f"over {args.steps} steps: this training turns {what} into a relative difference of "
        f"{drift:.1e}, beyond the limit {LOCKSTEP_F64_MAX:.0e}; use a larger --batch-size or fewer --steps")


def compare(args, progress):
    from oracle.compare.pictures import write_pictures
    from oracle.compare.makemore import build_makemore_report
    from oracle.compare.report import LOCKSTEP_F64_MAX, build_report, lockstep_drift

    def doing(what):
        progress.update(status=what)

    data = check(args)
    out = OutDir(args.out) if args.out else None
    try:
        if args.model in MAKEMORE_MODELS:
            report, pictures = build_makemore_report(args, data, doing)
            drift = report["lockstep"]["float64_drift"]
            if drift > LOCKSTEP_F64_MAX:
                raise unjudgeable(args, drift, "one rounding of each gradient per step")
        else:
            drift = lockstep_drift(args, data, doing)
            if drift > LOCKSTEP_F64_MAX:
                raise unjudgeable(args, drift, "one rounding per parameter per step")
            report, pictures = build_report(args, data, doing)
        print(json.dumps(report) if args.format == "json" else render(report, args.format))
        if out:
            out.write("report.md", render(report, "markdown") + "\n")
            out.write("report.json", json.dumps(report, indent=1) + "\n")
            try:
                for line in write_pictures(args.out, report, pictures):
                    print(line, file=sys.stderr)
            except OSError as e:
                raise UserError(f"cannot write the report into --out {args.out} ({reason(e)})") from None
    finally:
        if out:
            out.close()
    return 0 if report["passed"] else EXIT_FAILED
