"""The numpy-ninja command: training without torch, bad input, interrupt and resume, checkpoints,
sampling and evaluation. Commands run in subprocesses, as a user runs them."""
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numpy_ninja import models
from numpy_ninja.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from numpy_ninja.config import RunConfig
from numpy_ninja.data import Vocab, load_words, split_words, words_sha256
from numpy_ninja.sample import sample_names

from clirun import NO_PLOT, ROOT, SMALL, code_for, one_line_error, run, run_many, shipped_at
from torchfree import BLOCK_TORCH, blocking

@pytest.fixture(scope="module")
def trained(names, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    r = run("train", "--data", names, "--out", out, "--steps", "600", *SMALL)
    assert r.returncode == 0, r.stderr
    return out, r


def test_train_writes_run_directory_without_torch(trained):
    out, r = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 600 and metrics["config"]["n_hidden"] == 16
    assert {"train", "val", "test", "parameters", "seconds"} <= set(metrics)
    assert all(0 < metrics[k] < np.log(14) for k in ("train", "val", "test"))  # better than uniform
    assert (out / "loss.png").stat().st_size > 0
    assert "checkpoint.npz" in r.stdout and "val" in r.stdout


def test_train_without_matplotlib_says_so_and_goes_on(names, tmp_path):
    out = tmp_path / "run"
    r = run("train", "--data", names, "--out", out, "--steps", "50", *SMALL,
            block=blocking("torch", "oracle", "matplotlib"))
    assert r.returncode == 0, r.stderr
    assert "skipped: matplotlib is not installed" in r.stdout
    assert (out / "metrics.json").exists() and not (out / "loss.png").exists()


def test_eval_reproduces_metrics(trained):
    out, _ = trained
    r = run("eval", "--checkpoint", out / "checkpoint.npz")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for line in r.stdout.splitlines()[1:]:
        split, loss = line.split()
        assert float(loss) == pytest.approx(metrics[split], abs=5e-5)


def test_sample_with_prefix_marks_training_and_held_out_names(trained, names):
    out, _ = trained
    r = run("sample", "--checkpoint", out, "-n", "300", "--seed", "3", "--prefix", "ka")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 300 and all(line.startswith("ka") for line in lines)
    seed = json.loads((out / "metrics.json").read_text())["config"]["seed"]
    train, val, test = (set(part) for part in split_words(load_words(names), seed))
    in_train = [line[:-2] for line in lines if line.endswith(" *")]
    held_out = [line[:-2] for line in lines if line.endswith(" +")]
    unmarked = [line for line in lines if not line.endswith((" *", " +"))]
    # marked exactly when the name is in that split (a name in both is the training set's)
    assert in_train and set(in_train) <= train and held_out and set(held_out) <= (val | test) - train
    assert not set(unmarked) & (train | val | test)
    assert r.stderr == (f"{len(in_train)} in the training set (*), {len(held_out)} in the validation "
                        f"or test set (+), {len(unmarked)} new, of 300\n")
    assert run("sample", "--checkpoint", out, "-n", "300", "--seed", "3", "--prefix", "ka").stdout == r.stdout


def test_interrupt_and_resume_is_bitwise_identical(names, tmp_path):
    args = ["--data", names, "--steps", "20000", "--checkpoint-every", "3000",
            "--n-embd", "4", "--n-hidden", "16", "--batch-size", "8"]
    code = BLOCK_TORCH + "from numpy_ninja.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "train", "--out", str(tmp_path / "a"),
                             *map(str, args)], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    while not proc.stderr.readline().startswith("step"):  # training has begun
        assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: numpy-ninja train --resume" in err
    interrupted = load_checkpoint(tmp_path / "a" / "checkpoint.npz")
    assert 0 < interrupted.step < 20000 and interrupted.seconds > 0
    assert not (tmp_path / "a" / "metrics.json").exists()
    r = run("train", "--resume", tmp_path / "a", "--quiet")
    assert r.returncode == 0, r.stderr
    seconds = json.loads((tmp_path / "a" / "metrics.json").read_text())["seconds"]
    assert seconds > interrupted.seconds  # the whole run's training time, both sessions
    assert f"trained 20,000 steps in {seconds:.1f} s" in r.stdout
    r = run("train", "--out", tmp_path / "b", "--quiet", *args)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "a" / "checkpoint.npz") as a, np.load(tmp_path / "b" / "checkpoint.npz") as b:
        assert a.files == b.files
        for k in set(a.files) - {"seconds"}:  # the time differs; the run does not
            assert np.array_equal(a[k], b[k]), k


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    config = RunConfig(n_embd=2, n_hidden=4, seed=1, steps=5)
    vocab = Vocab("abc")
    model = models.build_model(config, len(vocab))
    save_checkpoint(path, model, vocab, config, 2, np.ones(5), 0.5)
    before = path.read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    model.parameters()[0].data += 1
    with pytest.raises(OSError):
        save_checkpoint(path, model, vocab, config, 3, np.ones(5), 1.0)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_corrupt_and_mismatched_checkpoints_are_rejected(trained, tmp_path):
    good = trained[0] / "checkpoint.npz"
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("not a checkpoint")
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(tmp_path / "shape.npz", **dict(arrays, **{"state/2.weight": np.zeros((3, 3), np.float32)}))
    np.savez(tmp_path / "pickled.npz", **dict(arrays, config=np.array([{"model": "mlp"}], dtype=object)))
    np.savez(tmp_path / "vocab.npz", **dict(arrays, vocab=np.array("ab")))
    for name in ("truncated", "text", "shape", "pickled", "vocab", "absent"):
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / f"{name}.npz")
        r = run("sample", "--checkpoint", tmp_path / f"{name}.npz")
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith("numpy-ninja: error:") and "Traceback" not in r.stderr


def test_hand_edited_checkpoints_are_refused_before_anything_is_allocated(trained, tmp_path):
    """A configuration asking for a billion hidden units, missing or mistyped settings, arrays of
    the wrong dtype or missing, compressed or non-finite: one line from eval, sample and --resume,
    within 1 GB of address space (the billion-unit model alone would take 120 GB)."""
    with np.load(trained[0] / "checkpoint.npz") as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(str(arrays["config"]))

    def edited(**settings):
        return {"config": np.array(json.dumps({k: v for k, v in dict(config, **settings).items() if v is not None}))}

    cases = {
        "huge": edited(n_hidden=10**9), "missing": edited(steps=None), "mistyped": edited(steps="many"),
        "boolean": edited(seed=True), "negative": edited(seed=-1),
        "dtype": {"state/2.weight": arrays["state/2.weight"].astype(np.float64)},
        "absent": {"state/3.running_var": None}, "nan": {"state/5.bias": arrays["state/5.bias"] * np.nan},
        "step": {"step": np.array(10**6)}, "vocab": {"vocab": np.array("ba" + str(arrays["vocab"])[2:])},
    }
    commands = []
    for name, changes in [*cases.items(), ("compressed", {})]:
        a = {k: v for k, v in dict(arrays, **changes).items() if v is not None}
        (tmp_path / name).mkdir()
        path = tmp_path / name / "checkpoint.npz"
        (np.savez_compressed if name == "compressed" else np.savez)(path, **a)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        assert "\n" not in str(e.value)
        commands += [["eval", "--checkpoint", path], ["sample", "--checkpoint", path],
                     ["train", "--resume", tmp_path / name]]
    results = run_many(*commands, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30)))
    for command, result in zip(commands, results):
        assert one_line_error(result), (command, result)


@pytest.mark.parametrize("content, args, message", [
    (None, [], "no such file"),
    (b"", [], "no words"),
    (b"anna\n\xc3\x28bad\n", [], "names.txt:2: not valid UTF-8"),
    (b"anna\nbo.b\n", [], "names.txt:2: the word 'bo.b' contains '.'"),
    (b"anna\nbob\n", ["--batch-size", "1"], "BatchNorm needs 2 rows"),
    (b"anna\nbob\n", ["--steps", "0"], "--steps: must be a positive integer"),
    (b"anna\nbob\n", ["--lr", "nan"], "--lr: must be a finite number"),
    (b"anna\nbob\n", ["--lr", "-0.1"], "--lr: must be a finite number"),
    (b"anna\nbob\n", ["--lr", "inf"], "--lr: must be a finite number"),
    (b"anna\nbob\n", ["--model", "wavenet", "--block-size", "6"], "power-of-two"),
])
def test_train_bad_input_is_one_line_and_writes_nothing(tmp_path, content, args, message):
    data = tmp_path / "names.txt"
    if content is not None:
        data.write_bytes(content)
    r = run("train", "--data", data, "--out", tmp_path / "run", *args)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_failed_train_never_overwrites_an_existing_run(trained):
    out, _ = trained
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = run("train", "--data", trained[0].parent / "missing.txt", "--out", out)
    assert r.returncode == 1
    data = json.loads((out / "metrics.json").read_text())["config"]["data"]
    again, finished, changed, nowhere, not_empty = run_many(
        ["train", "--data", data, "--out", out, "--steps", "10", *SMALL], ["train", "--resume", out],
        ["train", "--resume", out, "--steps", "5", "--out", out], ["train", "--resume", out / "nowhere"],
        ["train", "--data", data, "--out", out.parent, "--steps", "10", *SMALL])
    assert one_line_error(again) and "already holds a run" in again[2]
    assert one_line_error(finished) and "has already finished" in finished[2]
    assert one_line_error(changed) and "drop --steps --out" in changed[2]
    assert one_line_error(nowhere) and "not a run directory" in nowhere[2]
    assert one_line_error(not_empty) and "is not empty" in not_empty[2]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_nonfinite_loss_stops_naming_the_step_and_keeps_last_checkpoint(names, tmp_path):
    out = tmp_path / "run"
    r = run("train", "--data", names, "--out", out, "--steps", "2000", "--checkpoint-every", "100",
            "--dtype", "float64", "--lr-final", "1e300", "--lr-decay-step", "300", *SMALL)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "the loss became" in r.stderr and "kept the last finite checkpoint" in r.stderr
    step = int(r.stderr.split("at step ")[1].split(";")[0])
    assert step > 300
    ckpt = load_checkpoint(out / "checkpoint.npz")
    assert ckpt.step == step // 100 * 100 and np.isfinite(ckpt.lossi).all()
    assert not (out / "metrics.json").exists()


def test_the_shipped_list_is_found_again_after_a_reinstall_moves_it(names, tmp_path):
    """A run on the default data records the shipped list as a symbol, not the path of its
    installed copy: after the copy moves (a reinstall), eval and sample find it again."""
    before, after = tmp_path / "venv1" / "names.txt", tmp_path / "venv2" / "names.txt"
    before.parent.mkdir()
    before.write_bytes(names.read_bytes())
    r = run("train", "--out", tmp_path / "run", "--steps", "200", *SMALL, block=NO_PLOT + shipped_at(before))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["data"] == "shipped:names.txt"
    after.parent.mkdir()
    before.rename(after)
    (rc, out, err), (rc2, out2, err2) = run_many(
        ["eval", "--checkpoint", tmp_path / "run"], ["sample", "--checkpoint", tmp_path / "run", "-n", "200"],
        block=BLOCK_TORCH + shipped_at(after))
    assert rc == 0 and rc2 == 0, (err, err2)
    for line in out.splitlines()[1:]:
        split, loss = line.split()
        assert float(loss) == pytest.approx(metrics[split], abs=5e-5)
    assert "in the training set (*)" in err2 and sum(n.endswith(" *") for n in out2.splitlines()) > 0


def test_resume_and_eval_refuse_data_whose_words_changed(names, tmp_path):
    """The same vocabulary but one word changed: --resume and eval (of the run's own data) refuse
    in one line, sample stops marking names, and eval --data evaluates the file as it is."""
    data = tmp_path / "names.txt"
    data.write_bytes(names.read_bytes())
    words = data.read_text().split()
    config = RunConfig(data=str(data), data_sha256=words_sha256(words), n_embd=4, n_hidden=16,
                       batch_size=8, steps=100)
    vocab = Vocab.from_words(words)
    (tmp_path / "run").mkdir()
    save_checkpoint(tmp_path / "run" / "checkpoint.npz", models.build_model(config, len(vocab)), vocab,
                    config, 0, np.zeros(100), 0.0)
    data.write_text("\n".join(words[:-1] + [words[-1][::-1]]) + "\n")  # an anagram: same letters
    resumed, evaluated, sampled, other = run_many(
        ["train", "--resume", tmp_path / "run"], ["eval", "--checkpoint", tmp_path / "run"],
        ["sample", "--checkpoint", tmp_path / "run"], ["eval", "--checkpoint", tmp_path / "run", "--data", data])
    assert one_line_error(resumed) and "is not the data" in resumed[2]
    assert one_line_error(evaluated) and "has changed since the model was trained" in evaluated[2]
    assert sampled[0] == 0 and "names are not marked" in sampled[2] and " *" not in sampled[1]
    assert other[0] == 0 and len(other[1].splitlines()) == 4


def test_output_that_cannot_be_written_is_one_line(trained):
    with open("/dev/full", "w") as full:  # every write: ENOSPC
        r = subprocess.run([sys.executable, "-c", code_for(["eval", "--checkpoint", trained[0]], BLOCK_TORCH)],
                           stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert r.returncode == 1 and r.stderr == "numpy-ninja: error: No space left on device\n"


def test_sample_draws_chunk_by_chunk(trained):
    """The model never sees more than `chunk` rows at once, the names come lazily, and a chunk's
    names do not depend on how many follow."""
    ckpt = load_checkpoint(trained[0])
    rows = []
    forward = ckpt.model.forward
    ckpt.model.forward = lambda x: rows.append(len(x)) or forward(x)
    names = sample_names(ckpt.model, ckpt.vocab, ckpt.config.block_size, 1000, seed=5, chunk=64)
    assert next(names) and rows and max(rows) <= 64
    assert len(list(names)) == 999 and max(rows) == 64
    first = list(sample_names(ckpt.model, ckpt.vocab, ckpt.config.block_size, 64, seed=5, chunk=64))
    assert first == list(sample_names(ckpt.model, ckpt.vocab, ckpt.config.block_size, 1000, seed=5, chunk=64))[:64]


def test_sample_memory_does_not_grow_with_n(trained):
    """Peak resident memory of `sample -n 8192` and `-n 256`, in chunks of 256 names: the same,
    where holding every name's context at once would take n * (block_size + 64) * 8 bytes."""
    small_chunks = BLOCK_TORCH + "import numpy_ninja.sample; numpy_ninja.sample.CHUNK = 256\n"
    peak = {}
    for n in (256, 8192):
        p = subprocess.Popen([sys.executable, "-c", code_for(["sample", "--checkpoint", trained[0], "-n", n],
                                                             small_chunks)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        peak[n] = usage.ru_maxrss * 1024
    held = (8192 - 256) * (load_checkpoint(trained[0]).config.block_size + 64) * 8
    assert peak[8192] - peak[256] < held / 2, (peak, held)


def test_a_reader_that_goes_away_stops_sample_quietly(trained):
    p = subprocess.Popen([sys.executable, "-c", code_for(["sample", "--checkpoint", trained[0], "-n", 10**6],
                                                         BLOCK_TORCH)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline()  # `| head -1`
    p.stdout.close()
    assert p.wait(timeout=60) == 141 and p.stderr.read() == ""


def test_help_explains_every_option():
    r = subprocess.run([sys.executable, "-m", "numpy_ninja", "train", "--help"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0
    for option in ("--data", "--out", "--steps", "--batch-size", "--seed", "--dtype", "--model",
                   "--resume", "--checkpoint-every", "--quiet", "--lr"):
        assert option in r.stdout


def test_the_training_steps_run_on_the_blas_threads_asked_for(names, tmp_path):
    """--threads (default 1) holds while the steps run: a second BLAS thread makes the small
    matrices of a step wait whenever the machine is busy."""
    spy = NO_PLOT + textwrap.dedent("""
        import atexit
        from threadpoolctl import threadpool_info
        import numpy_ninja.run
        real, seen = numpy_ninja.run.train_steps, set()

        def train_steps(*args, **kwargs):
            seen.add(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
            return real(*args, **kwargs)

        numpy_ninja.run.train_steps = train_steps
        atexit.register(lambda: print("threads", sorted(seen), file=sys.stderr))
    """)
    for given, expected in (([], [1]), (["--threads", "2"], [2])):
        r = run("train", "--data", names, "--out", tmp_path / str(expected), "--steps", "20",
                *given, *SMALL, block=spy)
        assert r.returncode == 0 and f"threads {expected}" in r.stderr, r.stderr
