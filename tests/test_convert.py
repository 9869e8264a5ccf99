"""`numpy-ninja export` and `numpy-ninja import`: models moved to and from makemore.py.

An export loads, strictly, into the torch model with makemore.py's module tree
(oracle.reference.makemore) and gives the test loss numpy-ninja eval computes; a model.pt saved
from that torch model, imported, gives its logits, and exports back to the same bytes of every
tensor (makemore's float32; a float64 file comes back rounded to float32); every refusal is one
line, a non-zero exit, and leaves nothing behind.

Every command line runs as a user runs it, through numpy_ninja.cli.main, all of them in one fresh
interpreter (one torch import), matplotlib unimportable (the loss plot is not under test)."""
import os
from collections import namedtuple

import numpy as np
import pytest
import torch
from torch import nn

from clirun import one_line_error, run_many
from numpy_ninja.checkpoint import load_checkpoint
from numpy_ninja.cli import main
from numpy_ninja.config import DTYPES, MAKEMORE_MODELS, SIZES
from numpy_ninja.data import build_sequences, load_words, split_words
from numpy_ninja.tolerance import agreement
from numpy_ninja.train import split_loss
from oracle.reference import makemore as ref
from torchfree import blocking

# small models: a few seconds for the whole file
SMALL = dict(n_layer=2, n_head=2, n_embd=8, n_embd2=12)
TYPE_OF = {ref.NUMPY_NAMES.get(m, m): m for m in ref.TYPES}    # ours -> makemore's --type
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
ORACLE = blocking("matplotlib")  # the oracle's commands import torch; the plot is not under test
# issue 20: an export gives numpy-ninja eval's test loss to 1e-5. What separates the two is
# float32 rounding (a float64 checkpoint's values rounded once to float32; both forward passes
# and the mean over 256 targets summed in float32, unit roundoff 6e-8 of a loss near 3):
# the differences measured for these twelve runs are 0 to 4.8e-7.
ISSUE_LOSS_TOLERANCE = 1e-5
PRINTED = 0.5e-4  # eval prints the loss to 4 decimals


def size_options(model):
    return [a for k in SIZES[model] if k in SMALL for a in (f"--{k.replace('_', '-')}", SMALL[k])]


def commands(named, **kwargs):
    """run_many of {name: argv}: {name: (exit status, stdout, stderr)}."""
    return dict(zip(named, run_many(*named.values(), **kwargs)))


def files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def trainings(names, root):
    """Command lines that train a run of each makemore model in each dtype (and one of the
    lecture's mlp) 3 steps, and evaluate it: ({name: argv}, {(model, dtype): run directory})."""
    todo, runs = {}, {}
    for model, dtype in [(m, d) for m in MAKEMORE_MODELS for d in DTYPES] + [("mlp", "float32")]:
        runs[model, dtype] = out = root / f"{model}-{dtype}"
        sizes = size_options(model) if model != "mlp" else ["--n-embd", 4, "--n-hidden", 8]
        todo["train", model, dtype] = ["train", "--data", names, "--model", model, "--dtype", dtype,
                                       "--steps", 3, "--batch-size", 8, "--out", out, "--quiet", *sizes]
        todo["evaluate", model, dtype] = ["eval", "--checkpoint", out]
    return todo, runs


def torch_model(model, dtype, vocab_size, block_size, seed=0):
    """makemore's torch model of our `model`, every parameter drawn N(0, 0.5^2) (away from
    torch's initialisation, where the bigram is all zeros)."""
    torch.manual_seed(seed)
    config = ref.ModelConfig(vocab_size=vocab_size, block_size=block_size, **SMALL)
    m = ref.build(TYPE_OF[model], config).to(TORCH_DTYPES[dtype])
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)
    return m


def makemore_file(path, model, dtype, names, saved=lambda m: m.state_dict()):
    """torch.save(saved(m)) of makemore's model m of `model` sized for the names file as
    makemore.py sizes it (by default its state_dict, as makemore.py saves it); m."""
    words = load_words(names)
    vocab_size, block_size = len(set("".join(words))) + 1, max(map(len, words)) + 1
    m = torch_model(model, dtype, vocab_size, block_size)
    torch.save(saved(m), path)
    return m


# ---------------------------------------------------------------- what a refusal is given

def edited(edit):
    """What to save: the model's state_dict after edit(state)."""
    return lambda m: edit(m.state_dict())


def drop(name):
    return edited(lambda s: {k: v for k, v in s.items() if k != name})


def replace(name, value):
    return edited(lambda s: {**s, name: value(s[name])})


def nan_at(t):
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


FILE_REFUSALS = {  # what is wrong with a model.pt: (model, what is saved, words of the one line)
    "a whole model": ("transformer", lambda m: m, "save model.state_dict(), not the model"),
    "a training checkpoint": ("transformer", edited(lambda s: {"model": s, "step": 3}), "'model' is a dict"),
    "a list": ("transformer", edited(lambda s: list(s.values())), "holds a list, not a state_dict"),
    "a missing name": ("transformer", drop("lm_head.weight"), "missing ['lm_head.weight']"),
    "an extra name": ("transformer", edited(lambda s: {**s, "lm_head.bias": torch.zeros(14)}),
                      "unexpected ['lm_head.bias']"),
    "a missing layer's name": ("transformer", drop("transformer.h.1.ln_2.bias"),
                               "missing ['transformer.h.1.ln_2.bias']"),
    "a missing mask": ("bow", drop("context_block.cbow.bias"), "missing ['context_block.cbow.bias']"),
    "torch's layout transposed": ("transformer", replace("lm_head.weight", lambda t: t.T.contiguous()),
                                  "lm_head.weight: expected shape (14, 8), got (8, 14)"),
    "a matrix that is not one": ("transformer", replace("transformer.wte.weight", lambda t: t.reshape(-1)),
                                 "transformer.wte.weight has shape (112,)"),
    "a wrong shape": ("gru", replace("cell.xh_to_r.bias", lambda t: t[:-1]),
                      "cell.xh_to_r.bias: expected shape (12,), got (11,)"),
    "float16": ("transformer", lambda m: m.half().state_dict(), "is a torch.float16"),
    "integers": ("rnn", replace("lm_head.weight", lambda t: t.long()), "is a torch.int64"),
    "two dtypes": ("transformer", replace("lm_head.weight", lambda t: t.double()), "mixes float32 and float64"),
    "a mask that is not causal": ("transformer", replace("transformer.h.0.attn.bias", torch.ones_like),
                                  "transformer.h.0.attn.bias: not the causal mask of block size 7"),
    "a value that is not finite": ("transformer", replace("transformer.h.1.mlp.c_fc.weight", nan_at),
                                   "transformer.h.1.mlp.c_fc.weight holds values that are not finite"),
    "a context width no embedding divides": ("bengio", replace("mlp.0.weight", lambda t: t[:, :-1]),
                                             "mlp.0.weight reads 55 features, not a whole number of "
                                             "embeddings of wte.weight's 8"),
    "no start state to size the rnn": ("rnn", drop("start"), "--type rnn: it has no start"),
    "another model type": ("bengio", lambda m: m.state_dict(),
                           "makemore.py's --type mlp state_dict (numpy-ninja's bengio), not transformer; "
                           "import it with --model bengio"),
}


Commands = namedtuple("Commands", "tmp done theirs runs")


@pytest.fixture(scope="module")
def converted(names, tmp_path_factory):
    """Every command line of these tests, in order, in one interpreter: Commands(tmp, done:
    {name: (exit status, stdout, stderr)}, theirs: {(model, dtype): the torch model saved in
    makemore/}, runs: {(model, dtype): a run trained by numpy-ninja})."""
    tmp = tmp_path_factory.mktemp("convert")
    for d in ("runs", "export", "makemore", "imported", "back", "tuned", "refused", "files"):
        (tmp / d).mkdir()
    todo, runs = trainings(names, tmp / "runs")
    theirs = {}
    for model in MAKEMORE_MODELS:
        heads = ["--n-head", SMALL["n_head"]] if model == "transformer" else []
        for dtype in DTYPES:
            todo["export", model, dtype] = ["export", runs[model, dtype], tmp / "export" / f"{model}-{dtype}.pt"]
            pt, run = tmp / "makemore" / f"{model}-{dtype}.pt", tmp / "imported" / f"{model}-{dtype}"
            theirs[model, dtype] = makemore_file(pt, model, dtype, names)
            todo["import", model, dtype] = ["import", pt, "--model", model, "--out", run, "--data", names,
                                            "--steps", 2, *heads]
            todo["back", model, dtype] = ["export", run, tmp / "back" / f"{model}-{dtype}.pt"]
        run = tmp / "tuned" / model  # a second import of makemore's float32 file, to use
        todo["import again", model] = ["import", tmp / "makemore" / f"{model}-float32.pt", "--model", model,
                                       "--out", run, "--data", names, "--steps", 2, *heads]
        todo["eval", model] = ["eval", "--checkpoint", run]
        todo["sample", model] = ["sample", "--checkpoint", run, "-n", 5]
        todo["resume", model] = ["train", "--resume", run, "--quiet"]
    wide = tmp / "runs" / "bigram-wide"  # a block size of 9, where names.txt gives makemore.py 7
    todo["train", "bigram", "wide"] = ["train", "--data", names, "--model", "bigram", "--block-size", 9,
                                       "--steps", 3, "--batch-size", 8, "--out", wide, "--quiet"]
    todo["export wide"] = ["export", wide, tmp / "export" / "model.pt"]
    pt = tmp / "makemore" / "transformer-float32.pt"
    todo["heads"] = ["import", pt, "--model", "transformer", "--out", tmp / "heads", "--data", names,
                     "--n-head", 2, "--dtype", "float64"]
    todo["default heads"] = ["import", pt, "--model", "transformer", "--out", tmp / "heads4", "--data", names]

    # refusals: each --out (under refused/) must not exist afterwards
    for case, (model, saved, _) in FILE_REFUSALS.items():
        path = tmp / "files" / f"{case}.pt"
        makemore_file(path, model, "float32", names, saved)
        todo["refused", case] = ["import", path, "--model", "transformer" if case == "another model type" else model,
                                 "--out", tmp / "refused" / case, "--data", names]
    f = tmp / "files"
    huge = replace("logits", lambda t: torch.full_like(t, 1e300))  # beyond float32's 3.4e38
    makemore_file(f / "huge.pt", "bigram", "float64", names, huge)
    (f / "text.pt").write_text("not a model\n")
    (f / "empty.pt").write_bytes(b"")
    (f / "pickle.pt").write_bytes(b"\x80\x04}q\x00.")  # pickle.dumps({}): torch.save did not write it
    (f / "other.txt").write_text(names.read_text() + "zz\n")  # one character more: 15 tokens
    (f / "long.txt").write_text(names.read_text() + "marianna\n")  # 8 characters; the block size is 7
    (f / "notes").mkdir()
    (f / "notes" / "mine.txt").write_text("mine\n")
    (f / "empty").mkdir()
    (f / "precious.pt").write_bytes(b"precious")
    (f / "folder").mkdir()
    bow, lecture = runs["bow", "float32"], runs["mlp", "float32"]
    refused = tmp / "refused"
    transformer = ["--model", "transformer", "--data", names]
    for case, args in {
        "not torch's: text": ["import", f / "text.pt", "--out", refused / "text", *transformer],
        "not torch's: empty": ["import", f / "empty.pt", "--out", refused / "empty", *transformer],
        "not torch's: a pickle": ["import", f / "pickle.pt", "--out", refused / "pickle", *transformer],
        "not torch's: a numpy-ninja checkpoint": ["import", bow / "checkpoint.npz", "--out", refused / "npz",
                                                  *transformer],
        "no file": ["import", f / "missing.pt", "--out", refused / "missing", *transformer],
        "not a file": ["import", os.devnull, "--out", refused / "devnull", *transformer],
        "float64 beyond float32": ["import", f / "huge.pt", "--out", refused / "huge", "--model", "bigram",
                                   "--data", names, "--dtype", "float32"],
        "another vocabulary": ["import", pt, "--out", refused / "vocab", "--model", "transformer",
                               "--data", f / "other.txt"],
        "a longer word": ["import", pt, "--out", refused / "long", "--model", "transformer", "--data", f / "long.txt"],
        "heads that do not divide": ["import", pt, "--out", refused / "heads", *transformer, "--n-head", 3],
        "heads of a bow": ["import", tmp / "makemore" / "bow-float32.pt", "--out", refused / "bow",
                           "--model", "bow", "--data", names, "--n-head", 2],
        "a directory that holds a run": ["import", pt, "--out", tmp / "heads", *transformer],
        "a directory that holds something": ["import", pt, "--out", f / "notes", *transformer],
        "a file as --out": ["import", pt, "--out", f / "precious.pt", *transformer],
        "makemore's mlp by name": ["import", pt, "--out", refused / "mlp", "--model", "mlp"],
        "an empty directory is used": ["import", pt, "--out", f / "empty", *transformer],
        "export: the lecture's mlp": ["export", lecture, refused / "mlp.pt"],
        "export: an existing file": ["export", bow, f / "precious.pt"],
        "export: a directory": ["export", bow, f / "folder"],
        "export: over its own checkpoint": ["export", bow, bow / "checkpoint.npz", "--force"],
        "export: nowhere to write": ["export", bow, refused / "no" / "model.pt"],
        "export: not a checkpoint": ["export", f / "precious.pt", refused / "x.pt"],
        "export: no checkpoint": ["export", refused / "nothing", refused / "y.pt"],
        "export: --force replaces": ["export", bow, f / "precious.pt", "--force"],
    }.items():
        todo["refused", case] = args
    done = commands(todo, block=ORACLE, torch_free=False)
    assert all(done[k][0] == 0 for k in done if k[0] in ("train", "evaluate")), done
    return Commands(tmp, done, theirs, runs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", MAKEMORE_MODELS)
def test_an_export_loads_strictly_into_makemores_model_with_evals_test_loss(converted, names, model, dtype):
    tmp, done, _, runs = converted
    rc, out, err = done["export", model, dtype]
    assert rc == 0 and err == "", err
    run, evaluated = runs[model, dtype], done["evaluate", model, dtype][1]
    ckpt = load_checkpoint(run)
    config = ref.ModelConfig(vocab_size=len(ckpt.vocab), block_size=ckpt.config.block_size, **SMALL)
    theirs = ref.build(TYPE_OF[model], config)  # makemore's: float32, torch's default
    state = torch.load(tmp / "export" / f"{model}-{dtype}.pt", weights_only=True)
    theirs.load_state_dict(state, strict=True)
    assert list(state) == list(theirs.state_dict())  # makemore's names, in torch's order
    assert {t.dtype for t in state.values()} == {torch.float32}
    # every value the checkpoint's, rounded to float32; an nn.Linear's weight transposed
    modules, params = dict(theirs.named_modules()), dict(ckpt.model.named_parameters())
    for name, value in state.items():
        owner, what = name.rpartition(".")[::2]
        if name in params:
            mine = params[name].data
            mine = mine.T if isinstance(modules[owner], nn.Linear) and what == "weight" else mine
            assert torch.equal(value, torch.from_numpy(np.ascontiguousarray(mine)).float()), name
        else:  # a buffer: makemore's causal mask, ones on and below the diagonal
            T = ckpt.config.block_size
            assert torch.equal(value, torch.tril(torch.ones(T, T)).view(value.shape)), name
    # numpy-ninja eval's test loss: split_loss over the test split of the run's seed
    test = split_words(load_words(names), ckpt.config.seed)[2]
    X, Y = build_sequences(test, ckpt.vocab, ckpt.config.block_size)
    with torch.no_grad():
        loss = theirs(torch.from_numpy(X), torch.from_numpy(Y))[1].item()
    assert abs(split_loss(ckpt.model, X, Y) - loss) <= ISSUE_LOSS_TOLERANCE
    printed = float(next(line.split()[1] for line in evaluated.splitlines() if line.startswith("test ")))
    assert abs(printed - loss) <= PRINTED + ISSUE_LOSS_TOLERANCE
    # what it says: makemore.py's command line, and the rounding of a float64 checkpoint
    line = next(l for l in out.splitlines() if l.strip().startswith("python makemore.py"))
    assert f"--input-file {names} --work-dir {(tmp / 'export').resolve()} --type {TYPE_OF[model]}" in line
    assert all(f"--{k.replace('_', '-')} {SMALL[k]}" in line for k in SIZES[model] if k in SMALL)
    assert ("float64 values are written rounded to float32" in out) == (dtype == "float64")
    assert f"makemore.py reads model.pt in its --work-dir: rename {model}-{dtype}.pt to model.pt" in out
    assert "takes the vocabulary and block size from --input-file" not in out  # names.txt gives them


def test_export_says_what_makemore_py_needs_that_its_command_line_cannot_say(converted):
    tmp, done, _, _ = converted
    rc, out, err = done["export wide"]
    assert rc == 0 and err == "", err
    assert torch.load(tmp / "export" / "model.pt", weights_only=True)["logits"].shape == (14, 14)
    assert "rename" not in out  # model.pt, the name makemore.py reads
    assert ("note: makemore.py takes the vocabulary and block size from --input-file: give it a names "
            "file of the characters 'aeijklmnorsty' whose longest word has 8") in out
    assert "gives another block size" in out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("model", MAKEMORE_MODELS)
def test_an_import_gives_the_torch_models_logits_and_exports_back_exactly(converted, names, model, dtype):
    tmp, done, theirs, _ = converted
    rc, out, err = done["import", model, dtype]
    assert rc == 0 and err == "", err
    ckpt = load_checkpoint(tmp / "imported" / f"{model}-{dtype}")
    assert ckpt.step == 0 and ckpt.config.dtype == dtype and ckpt.config.model == model
    X, _ = build_sequences(load_words(names)[:50], ckpt.vocab, ckpt.config.block_size)
    with torch.no_grad():
        expected = theirs[model, dtype](torch.from_numpy(X))[0].numpy()
    a = agreement(ckpt.model(X), expected)
    assert a.passes(dtype), a  # the same logits: the same distribution to sample from
    assert done["back", model, dtype][0] == 0
    original, back = (torch.load(tmp / d / f"{model}-{dtype}.pt", weights_only=True) for d in ("makemore", "back"))
    assert list(back) == list(original)
    # makemore's float32 back bit for bit; a float64 file rounded to makemore's float32
    assert all(back[k].dtype == torch.float32 and torch.equal(back[k], v.float()) for k, v in original.items())


@pytest.mark.parametrize("model", MAKEMORE_MODELS)
def test_an_imported_model_evaluates_samples_and_fine_tunes(converted, model):
    tmp, done, _, _ = converted
    assert done["import again", model][0] == 0
    assert done["eval", model][0] == 0 and "test " in done["eval", model][1]
    rc, out, err = done["sample", model]
    assert rc == 0 and len(out.splitlines()) == 5 and err.endswith(" new, of 5\n"), (out, err)
    assert done["resume", model][0] == 0, done["resume", model]
    assert load_checkpoint(tmp / "tuned" / model).step == 2


def test_import_reads_the_transformers_sizes_and_says_where_n_head_came_from(converted, names):
    tmp, done, _, _ = converted
    rc, out, _ = done["heads"]
    assert rc == 0
    config = load_checkpoint(tmp / "heads").config
    assert (config.n_layer, config.n_embd, config.n_head, config.dtype) == (2, 8, 2, "float64")
    assert config.block_size == max(map(len, load_words(names))) + 1
    assert "n_head 2, which no shape records: --n-head" in out
    rc, out, _ = done["default heads"]  # without --n-head: makemore's default, and said so
    assert rc == 0 and load_checkpoint(tmp / "heads4").config.n_head == 4
    assert "n_head 4, which no shape records: makemore.py's default" in out


REFUSALS = {  # case -> words of its one line
    **{case: words for case, (_, _, words) in FILE_REFUSALS.items()},
    "not torch's: text": "not a file torch.save wrote",
    "not torch's: empty": "not a file torch.save wrote (it is empty or cut short)",
    "not torch's: a pickle": "not a file torch.save wrote",
    "not torch's: a numpy-ninja checkpoint": "a numpy-ninja checkpoint, not makemore.py's model.pt",
    "no file": "missing.pt: no such file",
    "not a file": f"{os.devnull}: not a regular file",
    "float64 beyond float32": "logits holds values beyond float32's range; import it with --dtype float64",
    "another vocabulary": "gives a vocabulary of 15 tokens",
    "a longer word": "the word 'marianna' has 8 characters; the model reads words of at most 6",
    "heads that do not divide": "--n-head 3 does not divide the transformer's n_embd (8)",
    "heads of a bow": "--n-head applies to the transformer, not to bow",
    "a directory that holds a run": "already holds a run",
    "a directory that holds something": "is not empty",
    "a file as --out": "exists and is not a directory",
    "export: the lecture's mlp": "the lecture's mlp, which is not one of makemore.py's",
    "export: an existing file": "precious.pt exists; choose another name, or pass --force",
    "export: a directory": "folder is a directory",
    "export: over its own checkpoint": "is the checkpoint being exported",
    "export: nowhere to write": "cannot write",
    "export: not a checkpoint": "not a checkpoint",
    "export: no checkpoint": "no such checkpoint",
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_is_one_line_and_writes_nothing(converted, case):
    tmp, done, _, _ = converted
    rc, out, err = done["refused", case]
    assert one_line_error((rc, out, err)) and out == "", (rc, out, err)
    assert REFUSALS[case] in err, err
    assert err.startswith(f"numpy-ninja {'export' if case.startswith('export') else 'import'}: error: ")


def test_refusals_leave_everything_as_it_was(converted):
    tmp, done, _, runs = converted
    assert done["refused", "makemore's mlp by name"][0] == 2  # argparse: mlp is not a --model here
    assert os.listdir(tmp / "refused") == []
    assert files(tmp / "files" / "notes") == ["mine.txt"]
    assert (tmp / "files" / "notes" / "mine.txt").read_text() == "mine\n"
    assert load_checkpoint(tmp / "heads").config.dtype == "float64"  # the run it refused to replace
    assert load_checkpoint(runs["bow", "float32"]).step == 3     # the checkpoint it would not overwrite
    # after the refusals, in order: an empty directory is used, --force replaces the file
    assert done["refused", "an empty directory is used"][0] == 0
    assert load_checkpoint(tmp / "files" / "empty").config.model == "transformer"
    assert done["refused", "export: --force replaces"][0] == 0
    assert set(torch.load(tmp / "files" / "precious.pt", weights_only=True)) >= {"wte.weight", "lm_head.bias"}
    assert not [p for p in files(tmp) if p.endswith(".tmp")]  # no temporary file left anywhere


def test_a_failed_export_keeps_the_file_it_was_to_replace(converted, tmp_path, capsys, monkeypatch):
    (tmp_path / "model.pt").write_bytes(b"precious")

    def full_disk(obj, f):
        f.write(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    rc = main(["export", str(converted.runs["rnn", "float32"]), str(tmp_path / "model.pt"), "--force"])
    out, err = capsys.readouterr()
    assert one_line_error((rc, out, err)) and "No space left on device" in err, err
    assert (tmp_path / "model.pt").read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["model.pt"]


def test_without_torch_they_say_how_to_install(tmp_path):
    done = run_many(["export", "a", "b"], ["import", "a", "--model", "rnn", "--out", tmp_path / "run"],
                    block=blocking("torch"), torch_free=False)
    for command, (rc, out, err) in zip(("export", "import"), done):  # as compare and check say it
        assert rc == 1 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"numpy-ninja {command} needs PyTorch: pip install 'numpy-ninja[oracle]'")
    assert os.listdir(tmp_path) == []
