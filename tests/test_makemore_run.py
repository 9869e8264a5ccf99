"""makemore.py's models as numpy-ninja trains them: the sequence data, the loss with ignored
targets, the exact trimming of a batch, the sizes a configuration implies, AdamW's state through a
checkpoint (a resumed run is bitwise the one that never stopped), and the command line's
settings, evaluation and refusals."""
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_ninja import run as runs
from numpy_ninja.checkpoint import load_checkpoint
from numpy_ninja.config import MAKEMORE_MODELS, RunConfig
from numpy_ninja.data import IGNORE, Vocab, build_sequences, load_words, sequence_length, split_words
from numpy_ninja.models import build_model, parameter_count, state_shapes
from numpy_ninja.nn import CrossEntropyLoss
from numpy_ninja.rundir import RunDirectory
from numpy_ninja.train import split_loss, trimmed

from clirun import NO_PLOT, one_line_error, run_many

TINY = {"bigram": {}, "bengio": dict(n_embd=3, n_embd2=5), "rnn": dict(n_embd=3, n_embd2=5),
        "gru": dict(n_embd=3, n_embd2=5), "bow": dict(n_embd=4, n_embd2=6),
        "transformer": dict(n_layer=2, n_head=2, n_embd=4)}


def tiny(model, **settings):
    return RunConfig(model=model, **{**TINY[model], **settings})


def options(model):
    return [a for k, v in TINY[model].items() for a in ("--" + k.replace("_", "-"), v)]


def test_a_word_becomes_makemores_sequence():
    vocab = Vocab("abc")
    X, Y = build_sequences(["ab", "c", ""], vocab, 4)
    assert X.tolist() == [[0, 1, 2, 0], [0, 3, 0, 0], [0, 0, 0, 0]]
    assert Y.tolist() == [[1, 2, 0, IGNORE], [3, 0, IGNORE, IGNORE], [0, IGNORE, IGNORE, IGNORE]]
    assert sequence_length(["ab", "c"]) == 3


def test_the_loss_counts_only_targets_not_ignored():
    """The mean over counted positions, each weighing 1/n (not 1/(B*T)); ignored positions get
    no gradient; nothing counted is nan and a zero gradient, as torch's."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 4, 5))
    targets = rng.integers(0, 5, (3, 4))
    targets[0, 2:] = IGNORE
    targets[2] = IGNORE
    crit = CrossEntropyLoss(ignore_index=IGNORE)
    loss, dlogits = crit(logits, targets), crit.backward()
    counted = targets != IGNORE
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, np.where(counted, targets, 0)[..., None], -1)[..., 0]
    assert loss == pytest.approx(nll[counted].mean(), rel=1e-14)
    onehot = np.eye(5)[np.where(counted, targets, 0)]
    expected = (np.exp(logp) - onehot) * counted[..., None] / counted.sum()
    np.testing.assert_allclose(dlogits, expected, rtol=0, atol=1e-16)
    assert np.isnan(crit(logits, np.full((3, 4), IGNORE))) and not crit.backward().any()
    with pytest.raises(ValueError, match="targets must be in"):
        crit(logits, np.where(counted, 7, IGNORE))


@pytest.mark.parametrize("model", MAKEMORE_MODELS)
def test_trimming_a_batch_changes_no_loss_and_no_gradient(model):
    """Positions after a batch's last counted target see nothing earlier positions need (the
    models are causal): cutting them leaves the loss and every gradient as they were, up to the
    rounding of sums over fewer terms."""
    words = ["ab", "abc", "a", "ca"]
    X, Y = build_sequences(words, Vocab("abc"), 7)  # the longest word needs 4: 3 columns of padding
    net = build_model(tiny(model, block_size=7, dtype="float64", seed=1), 4)
    crit = CrossEntropyLoss(ignore_index=IGNORE)
    results = []
    for x, y in ((X, Y), trimmed(X, Y)):
        loss = crit(net(x), y)
        net.backward(crit.backward())
        results.append((loss, {k: p.grad.copy() for k, p in net.named_parameters()}))
    assert trimmed(X, Y)[0].shape == (4, 4)
    (loss, grads), (cut_loss, cut_grads) = results
    assert cut_loss == pytest.approx(loss, rel=1e-14)
    for k in grads:
        np.testing.assert_allclose(cut_grads[k], grads[k], rtol=0, atol=1e-14 * np.abs(grads[k]).max(), err_msg=k)


@given(model=st.sampled_from(MAKEMORE_MODELS), vocab=st.integers(1, 9), block=st.integers(1, 9),
       a=st.integers(1, 6), b=st.integers(1, 3))
def test_the_sizes_a_configuration_implies_are_the_models(model, vocab, block, a, b):
    """state_shapes, read from the sizes alone (what a checkpoint is checked against before
    anything is built), is what the built model holds; parameter_count counts it."""
    sizes = {"bigram": {}, "bengio": dict(n_embd=a, n_embd2=b), "rnn": dict(n_embd=a, n_embd2=b),
             "gru": dict(n_embd=a, n_embd2=b), "bow": dict(n_embd=a, n_embd2=b),
             "transformer": dict(n_layer=b, n_head=b, n_embd=a * b)}[model]
    config = RunConfig(model=model, block_size=block, **sizes)
    net = build_model(config, vocab)
    assert {k: v.shape for k, v in net.state_dict().items()} == state_shapes(config, vocab)
    assert parameter_count(config, vocab) == sum(p.data.size for p in net.parameters())


def test_makemores_sizes_have_makemores_parameter_counts():
    """makemore.py's defaults on names (27 characters, sequences of 16) give its models' sizes:
    the transformer is its README's "super tiny 200K param" one."""
    counts = {m: parameter_count(RunConfig(model=m, block_size=16), 27) for m in MAKEMORE_MODELS}
    assert counts == {"bigram": 27 * 27, "bengio": 28 * 64 + (16 * 64 + 1) * 64 + (64 + 1) * 27,
                      "rnn": 64 + 27 * 64 + (128 + 1) * 64 + (64 + 1) * 27,
                      "gru": 64 + 27 * 64 + 3 * (128 + 1) * 64 + (64 + 1) * 27,
                      "bow": 27 * 64 + 16 * 64 + 2 * 64 * 64 + 64 + 64 + (64 + 1) * 27,
                      "transformer": 27 * 64 + 16 * 64 + 4 * (12 * 64 * 64 + 13 * 64) + 2 * 64 + 64 * 27}


class StopAfter:
    """Signals as Run.execute reads them, asking to stop at the n-th look (between steps)."""

    graceful = False

    def __init__(self, n):
        self.looks, self.n = 0, n

    @property
    def requested(self):
        self.looks += 1
        return self.looks > self.n


@pytest.mark.parametrize("model", ["gru", "transformer"])
def test_a_resumed_adamw_run_is_bitwise_the_one_that_never_stopped(names, tmp_path, model):
    """AdamW's step count and moments travel in the checkpoint: stopped at step 37 and resumed,
    the run ends with the same parameters, moments and batch losses as one run straight."""
    config = tiny(model, data=str(names), steps=90, checkpoint_every=50, dtype="float64")
    state = runs.RunState.fresh(config)
    directory = RunDirectory.create(tmp_path / "stopped")
    assert runs.Run(directory, state, quiet=True).guarded(StopAfter(37)) == runs.EXIT_INTERRUPTED
    stopped = load_checkpoint(tmp_path / "stopped")
    assert stopped.step == 37 and int(stopped.optimizer_state["step"]) == 37
    assert runs.resume(tmp_path / "stopped", quiet=True) == 0
    assert runs.train(config, tmp_path / "straight", quiet=True) == 0
    with np.load(tmp_path / "stopped" / "checkpoint.npz") as a, np.load(tmp_path / "straight" / "checkpoint.npz") as b:
        assert a.files == b.files and {"optim/exp_avg", "optim/exp_avg_sq", "optim/step"} <= set(a.files)
        for k in set(a.files) - {"seconds"}:
            assert np.array_equal(a[k], b[k]), k


def test_split_losses_weigh_every_counted_target_the_same(names):
    """split_loss over whole sequences is the mean over all counted targets, whatever the
    chunking: against a word-by-word sum."""
    words = load_words(names)
    vocab, T = Vocab.from_words(words), sequence_length(words)
    net = build_model(tiny("gru", block_size=T, dtype="float64", seed=2), len(vocab))
    X, Y = build_sequences(split_words(words, 42)[2], vocab, T)
    crit = CrossEntropyLoss(ignore_index=IGNORE)
    total = sum(crit(net(X[i:i + 1]), Y[i:i + 1]) * int((Y[i] != IGNORE).sum()) for i in range(len(Y)))
    expected = total / int((Y != IGNORE).sum())
    for chunk in (None, 7, 100):
        assert split_loss(net, X, Y, chunk=chunk) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("model", MAKEMORE_MODELS)
def test_train_eval_and_sample_through_the_command_line(names, tmp_path, model):
    out = tmp_path / "run"
    (rc, stdout, err), (rc2, evaluated, err2), (rc3, sampled, err3) = run_many(
        ["train", "--model", model, "--data", names, "--out", out, "--steps", "40", "--quiet", *options(model)],
        ["eval", "--checkpoint", out],
        ["sample", "--checkpoint", out, "-n", "50", "--top-k", "3"], block=NO_PLOT)
    assert rc == 0 and rc2 == 0 and rc3 == 0, (err, err2, err3)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["block_size"] == sequence_length(load_words(names))
    assert metrics["config"]["weight_decay"] == 0.01 and metrics["config"]["lr"] == 5e-4
    for line in evaluated.splitlines()[1:]:
        split, loss = line.split()
        assert float(loss) == pytest.approx(metrics[split], abs=5e-5)
    lines = sampled.splitlines()
    assert len(lines) == 50 and all(len(n.rstrip(" *+")) < metrics["config"]["block_size"] for n in lines)
    assert "new, of 50" in err3


@pytest.mark.parametrize("args, says", [
    (["--model", "transformer", "--n-hidden", "8"], "--n-hidden: does not apply to the transformer model"),
    (["--model", "mlp", "--n-head", "2"], "--n-head: does not apply to the mlp model"),
    (["--model", "bigram", "--n-embd", "2"], "--n-embd: does not apply to the bigram model (it takes --block-size)"),
    (["--model", "transformer", "--n-embd", "6", "--n-head", "4"], "--n-head: must divide --n-embd (6)"),
    (["--model", "mlp", "--weight-decay", "0.1"], "--weight-decay: applies to AdamW"),
    (["--model", "rnn", "--weight-decay", "-1"], "--weight-decay: must be a finite number >= 0"),
    (["--model", "gru", "--block-size", "3"], "--block-size 3 is too short for"),
    (["--model", "bow", "--batch-size", "0"], "--batch-size: must be a positive integer"),
])
def test_settings_a_model_cannot_take_are_one_line(names, tmp_path, args, says):
    for rc, out, err in run_many(["train", "--data", names, "--out", tmp_path / "run", "--steps", "5", *args]):
        assert one_line_error((rc, out, err)) and says in err, err
    assert not (tmp_path / "run").exists()


def test_eval_and_sample_refuse_what_the_sequence_length_cannot_hold(names, tmp_path):
    out = tmp_path / "run"
    longer = tmp_path / "longer.txt"
    longest = max(load_words(names), key=len)
    longer.write_text(longest + "ma\n")
    results = run_many(["train", "--model", "bigram", "--data", names, "--out", out, "--steps", "5", "--quiet"],
                       ["eval", "--checkpoint", out, "--data", longer],
                       ["sample", "--checkpoint", out, "--prefix", longest], block=NO_PLOT)
    assert results[0][0] == 0, results[0][2]
    assert one_line_error(results[1]) and f"has {len(longest) + 2} characters; this model reads words" in results[1][2]
    assert one_line_error(results[2]) and "--prefix: this model writes names of at most" in results[2][2]


def test_a_damaged_optimizer_state_is_refused_in_one_line(names, tmp_path):
    """The moments are checked as the parameters are: shape, dtype, finite, v >= 0, and the
    step count is the run's."""
    out = tmp_path / "run"
    assert run_many(["train", "--model", "rnn", "--data", names, "--out", out, "--steps", "5", "--quiet",
                     *options("rnn")], block=NO_PLOT)[0][0] == 0
    with np.load(out / "checkpoint.npz") as f:
        good = dict(f)
    damages = {"damaged optimizer state": ("optim/exp_avg_sq", lambda a: -a - 1),
               "exp_avg is (": ("optim/exp_avg", lambda a: a[:-1]),
               "its optimizer's step count (6) is not the run's (5)": ("optim/step", lambda a: a + 1),
               "damaged optimizer state ": ("optim/exp_avg", lambda a: a * np.nan)}
    commands = []
    for name, (key, damage) in damages.items():
        path = tmp_path / f"damaged-{len(commands)}.npz"
        np.savez(path, **{**good, key: damage(good[key])})
        commands.append(["eval", "--checkpoint", path])
    for (rc, out_, err), says in zip(run_many(*commands, block=NO_PLOT), damages):
        assert one_line_error((rc, out_, err)) and says.strip() in err, err


def test_a_version_2_checkpoint_of_the_lecture_still_loads(names, tmp_path):
    """Checkpoints written before makemore's models (version 2: no optimizer state, a config
    without the new settings) still evaluate and resume."""
    out = tmp_path / "run"
    assert run_many(["train", "--data", names, "--out", out, "--steps", "20", "--checkpoint-every", "10",
                     "--n-embd", "3", "--n-hidden", "5", "--quiet"], block=NO_PLOT)[0][0] == 0
    with np.load(out / "checkpoint.npz") as f:
        arrays = dict(f)
    config = json.loads(str(arrays["config"]))
    for k in ("n_embd2", "n_layer", "n_head", "weight_decay"):
        del config[k]
    arrays.update(version=np.array(2), config=np.array(json.dumps(config)))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    with zipfile.ZipFile(old) as z:
        assert not [n for n in z.namelist() if n.startswith("optim/")]
    ckpt = load_checkpoint(old)
    assert ckpt.config.weight_decay == 0.0 and ckpt.config.n_head is None and ckpt.optimizer_state == {}
    rc, evaluated, err = run_many(["eval", "--checkpoint", old], block=NO_PLOT)[0]
    assert rc == 0, err
    assert evaluated == run_many(["eval", "--checkpoint", out], block=NO_PLOT)[0][1]
