"""The training run's promises (numpy_ninja/run.py), through the real command line: one writer
per run directory, unique default names, a model that stops being finite is never reported as
trained, file-system errors and absurd sizes are one line, signals save and say how to resume,
metrics.json is JSON."""
import ctypes
import json
import os
import resource
import signal

import numpy as np
import pytest

from numpy_ninja.checkpoint import NonFiniteModel, load_checkpoint, save_checkpoint
from numpy_ninja.config import RunConfig
from numpy_ninja.data import Vocab, words_sha256
from numpy_ninja.models import build_model

from clirun import NO_PLOT, SMALL, one_line_error, run, run_many, start

LONG = ["--steps", "200000", "--checkpoint-every", "1000", "--n-embd", "4", "--n-hidden", "16",
        "--batch-size", "8"]


def result(r):
    return r.returncode, r.stdout, r.stderr


def wait_for_progress(proc):
    while not proc.stderr.readline().startswith("step"):  # training has begun
        assert proc.poll() is None, proc.stderr.read()


def test_a_run_directory_has_one_writer_and_sigterm_saves(names, tmp_path):
    out = tmp_path / "run"
    proc = start("train", "--data", names, "--out", out, *LONG)
    wait_for_progress(proc)
    other, again = run_many(["train", "--data", names, "--out", out, "--steps", "10", *SMALL],
                            ["train", "--resume", out])
    assert one_line_error(other) and "in use by another numpy-ninja train" in other[2]
    assert one_line_error(again) and "in use by another numpy-ninja train" in again[2]
    proc.send_signal(signal.SIGTERM)  # as Ctrl-C: save the step, say how to resume
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"resume with: numpy-ninja train --resume {out}" in err
    ckpt = load_checkpoint(out)
    assert 0 < ckpt.step < 200000 and ckpt.seconds > 0


def test_simultaneous_starts_never_share_a_directory(names, tmp_path):
    """Two trains into one --out: one trains, the other refuses in one line. Two with default
    names started in the same second (the clock is stopped): runs/STAMP and runs/STAMP-2."""
    same = [start("train", "--data", names, "--out", tmp_path / "same", "--steps", "300", *SMALL, block=NO_PLOT)
            for _ in range(2)]
    stopped_clock = NO_PLOT + "import time; time.strftime = lambda *a: '20250101-000000'\n"
    stamped = [start("train", "--data", names, "--steps", "300", *SMALL, block=stopped_clock, cwd=tmp_path)
               for _ in range(2)]
    done = [(p.wait(60), *p.communicate()) for p in same + stamped]
    (rc1, _, err1), (rc2, _, err2) = sorted(done[:2])
    assert rc1 == 0 and one_line_error((rc2, "", err2)), (err1, err2)
    assert "in use by another" in err2 or "already holds a run" in err2
    assert load_checkpoint(tmp_path / "same").step == 300 and (tmp_path / "same" / "metrics.json").exists()
    assert [d[0] for d in done[2:]] == [0, 0], done[2:]
    runs = tmp_path / "runs"
    assert sorted(os.listdir(runs)) == ["20250101-000000", "20250101-000000-2"]
    assert all((runs / d / "metrics.json").exists() for d in os.listdir(runs))


def test_a_diverging_run_keeps_its_last_finite_checkpoint_and_the_advice_works(names, tmp_path):
    """A rate of 1e12 from step 300: within the next hundred steps BatchNorm's running variance
    overflows float32 while the batch loss stays finite (BatchNorm normalises the huge
    pre-activations). Never exit 0; the last finite checkpoint (step 300) stays; resuming with a
    smaller rate (as the message says) finishes and records the change."""
    out = tmp_path / "run"
    r = run("train", "--data", names, "--out", out, "--steps", "2000", "--checkpoint-every", "100",
            "--lr-final", "1e12", "--lr-decay-step", "300", *SMALL, block=NO_PLOT)
    assert one_line_error(result(r)) and "training diverged" in r.stderr, r.stderr
    ckpt = load_checkpoint(out)  # loading refuses non-finite arrays
    assert f"kept the last finite checkpoint, {out / 'checkpoint.npz'} at step {ckpt.step}" in r.stderr
    assert ckpt.step == 300 and np.isfinite(ckpt.lossi).all()
    assert not (out / "metrics.json").exists()
    advice = r.stderr.split("Resume it with a smaller learning rate: ")[1].split()
    assert advice[:4] == ["numpy-ninja", "train", "--resume", str(out)] and advice[4] == "--lr-final"
    r = run(*advice[1:5], "0.01", "--quiet", block=NO_PLOT)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["lr_final"] == 1e12 and metrics["config"]["lr_changes"] == [[300, 0.1, 0.01]]


def test_divergence_before_the_first_checkpoint_removes_only_what_the_run_created(names, tmp_path):
    (tmp_path / "mine").mkdir()
    common = ["--data", names, "--steps", "300", "--checkpoint-every", "100", "--lr", "1e20", *SMALL]
    made, given = run_many(["train", "--out", tmp_path / "new" / "run", *common],
                           ["train", "--out", tmp_path / "mine", *common], block=NO_PLOT)
    for r in (made, given):
        assert one_line_error(r) and "no checkpoint had been written yet" in r[2] and "--lr 5e+19" in r[2]
    assert sorted(os.listdir(tmp_path)) == ["mine"] and os.listdir(tmp_path / "mine") == []


def test_a_non_finite_model_is_never_saved(tmp_path):
    config = RunConfig(n_embd=2, n_hidden=4, steps=5)
    model = build_model(config, 4)
    model.parameters()[2].data[0] = np.inf
    with pytest.raises(NonFiniteModel):
        save_checkpoint(tmp_path / "checkpoint.npz", model, Vocab("abc"), config, 1, np.ones(5), 0.0)
    assert os.listdir(tmp_path) == []


def without_dac_override():
    """In the child: root loses the capability to write where permissions forbid (so that a
    read-only directory refuses root too). Nothing to do for other users."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, out of the bounding set
            if libc.prctl(24, cap, 0, 0, 0):  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_out_that_cannot_be_created_is_one_line(names, tmp_path):
    a_file, read_only = tmp_path / "file", tmp_path / "read-only"
    a_file.write_text("not a directory")
    read_only.mkdir()
    read_only.chmod(0o555)
    common = ["--data", names, "--steps", "10", *SMALL]
    outs = {a_file / "run": "Not a directory", a_file: "exists and is not a directory",
            read_only / "run": "Permission denied", "/proc/numpy-ninja-run": "cannot create the run directory",
            "/sys/numpy-ninja-run": "cannot create the run directory"}
    results = run_many(*[["train", "--out", out, *common] for out in outs], preexec_fn=without_dac_override,
                       block=NO_PLOT)
    for (out, message), r in zip(outs.items(), results):
        assert one_line_error(r) and message in r[2], (out, r)
    assert os.listdir(read_only) == [] and a_file.read_text() == "not a directory"


def file_size_limit(n):
    """In the child: files larger than n bytes cannot be written (EFBIG, as a full disk gives
    ENOSPC: a write that fails part-way)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return limit


def test_failed_writes_keep_the_last_checkpoint_and_resume_finishes(names, tmp_path):
    out = tmp_path / "run"
    args = ["--data", names, "--steps", "3000", *SMALL]
    # checkpoints of this run: 11.9 KB at step 1000, 15.9 KB at 2000 (the loss history grows)
    none, failed = run_many(["train", "--out", tmp_path / "none", *args, "--checkpoint-every", "2000"],
                            ["train", "--out", out, *args, "--checkpoint-every", "1000"],
                            preexec_fn=file_size_limit(14000), block=NO_PLOT)
    assert one_line_error(none) and "nothing was saved" in none[2], none
    assert not (tmp_path / "none").exists()
    assert one_line_error(failed) and f"cannot write {out / 'checkpoint.npz'}" in failed[2], failed
    assert f"still holds step 1000; resume with: numpy-ninja train --resume {out}" in failed[2]
    assert load_checkpoint(out).step == 1000 and os.listdir(out) == ["checkpoint.npz"]
    (out / "metrics.json.tmp").mkdir()  # metrics.json cannot be written: EISDIR
    r = run("train", "--resume", out, "--quiet", block=NO_PLOT)
    assert one_line_error(result(r)) and f"cannot write {out / 'metrics.json'}" in r.stderr, r.stderr
    assert "finish the run with: numpy-ninja train --resume" in r.stderr
    assert load_checkpoint(out).step == 3000
    (out / "metrics.json.tmp").rmdir()
    r = run("train", "--resume", out, "--quiet")
    assert r.returncode == 0 and "trained 3,000 steps" in r.stdout, r.stderr
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "loss.png", "metrics.json"]


@pytest.mark.parametrize("stage, signum", [("calibrate_batchnorm", "SIGHUP"), ("split_loss", "SIGINT")])
def test_a_signal_after_training_leaves_a_run_that_resume_finishes(names, tmp_path, stage, signum):
    """Ctrl-C (or the terminal closing) while BatchNorm is calibrated or the splits evaluated: the
    trained checkpoint is kept, the hint says how to finish, and --resume does."""
    out = tmp_path / "run"
    r = run("train", "--data", names, "--out", out, "--steps", "300", *SMALL, block=signal_during(stage, signum))
    assert r.returncode == 130 and f"resume with: numpy-ninja train --resume {out}" in r.stderr, r.stderr
    assert not (out / "metrics.json").exists()
    r = run("train", "--resume", out, "--quiet", block=NO_PLOT)
    assert r.returncode == 0 and "trained 300 steps" in r.stdout, r.stderr


def test_an_ignored_hangup_stays_ignored(names, tmp_path):
    """Under nohup SIGHUP is ignored, and the run leaves it so."""
    r = run("train", "--data", names, "--out", tmp_path / "run", "--steps", "300", *SMALL,
            block=signal_during("calibrate_batchnorm", "SIGHUP"),
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert r.returncode == 0 and (tmp_path / "run" / "metrics.json").exists(), r.stderr


def signal_during(stage, signum):
    """Code that sends the process `signum` when numpy_ninja.run calls `stage`."""
    return NO_PLOT + (
        f"import os, signal, numpy_ninja.run as r\nreal = r.{stage}\n"
        f"def hooked(*a):\n    os.kill(os.getpid(), signal.{signum})\n    return real(*a)\nr.{stage} = hooked\n")


def test_a_byte_order_mark_is_no_character_and_an_empty_split_is_null_in_metrics(tmp_path):
    """A names file saved by an editor (byte-order mark, CRLF) whose validation split is empty
    (80/10/10 of five words): the mark is not in the vocabulary, and metrics.json is strict JSON."""
    words = ["annabel", "marianne", "rosalind", "josephine", "katherine"]
    data = tmp_path / "names.txt"
    data.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(words).encode() + b"\r\n")
    r = run("train", "--data", data, "--out", tmp_path / "run", "--steps", "20", "--n-embd", "4",
            "--n-hidden", "8", "--batch-size", "4", "--quiet", block=NO_PLOT)
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.vocab == Vocab.from_words(words) and ckpt.config.data_sha256 == words_sha256(words)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    assert metrics["val"] is None and metrics["train"] > 0 and metrics["test"] > 0
    assert "val       empty" in r.stdout


def test_absurd_sizes_and_bad_settings_are_one_line(names, tmp_path):
    out = tmp_path / "run"
    cases = {
        ("--steps", 10**12): "need at least 3.6 TiB of memory (3.6 TiB for the loss history",
        ("--n-hidden", 10**9): "for the calibration's activations",
        ("--batch-size", 10**9): "batch indices",
        ("--block-size", 10**6): "examples of context 1000000",
        ("--steps", 2**63): "64-bit",
        ("--seed", -1): "--seed: must be an integer >= 0",
        ("--lr", "1e400"): "--lr: must be a finite number",
        ("--lr-decay-step", -1): "--lr-decay-step: must be an integer >= 0",
        ("--checkpoint-every", 0): "--checkpoint-every: must be a positive integer",
    }
    results = run_many(*[["train", "--data", names, "--out", out, *map(str, k), "--quiet"] for k in cases],
                       ["train", "--data", names, "--out", out, "--steps", "1e12"],
                       ["sample", "--checkpoint", out, "--seed", "-1"])
    for (case, message), r in zip(cases.items(), results):
        assert one_line_error(r) and message in r[2], (case, r)
    assert one_line_error(results[-2], status=2) and "invalid int value: '1e12'" in results[-2][2]
    assert one_line_error(results[-1], status=2) and "--seed: must be an integer >= 0" in results[-1][2]
    assert not out.exists()
