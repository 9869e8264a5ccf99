"""`numpy-ninja compare --model bigram|bengio|rnn|gru|bow|transformer`: makemore.py's models pass
against makemore's module tree in torch, in float32 and float64, row by row under makemore's
state_dict names; one part in a million planted in any one layer's backward fails the report."""
import json

import numpy as np
import pytest

import numpy_ninja as nn
from numpy_ninja import models
from numpy_ninja.cli import main
from numpy_ninja.data import Vocab, load_words, sequence_length
from oracle.reference import makemore

# small sizes: one block of two heads, embeddings of 8, hidden 8 (the option each model takes)
SMALL = {"bigram": [], "bengio": ["--n-embd", "8", "--n-embd2", "8"], "rnn": ["--n-embd", "8", "--n-embd2", "8"],
         "gru": ["--n-embd", "8", "--n-embd2", "8"], "bow": ["--n-embd", "8", "--n-embd2", "8"],
         "transformer": ["--n-layer", "1", "--n-head", "2", "--n-embd", "8"]}
MAKEMORE_TYPE = {"bengio": "mlp"}  # makemore.py's --type of a numpy-ninja model, where it differs


def compare(names, model, *more):
    return main(["compare", "--model", model, "--data", str(names), "--batch-size", "4",
                 *SMALL[model], *more])


def makemore_parameters(names, model):
    """{name: shape} of makemore's own model of these sizes: oracle.reference.makemore's torch
    module tree, built from makemore.py's architecture (not from numpy-ninja's model)."""
    sizes = dict(zip(SMALL[model][::2], map(int, SMALL[model][1::2])))
    words = load_words(names)
    config = makemore.ModelConfig(block_size=sequence_length(words), vocab_size=len(Vocab.from_words(words)),
                                  **{k[2:].replace("-", "_"): v for k, v in sizes.items()})
    torch_model = makemore.build(MAKEMORE_TYPE.get(model, model), config)
    return {name: list(p.shape) for name, p in torch_model.named_parameters()}


@pytest.mark.parametrize("model", list(SMALL))
def test_every_model_passes_in_float32_and_float64(names, capsys, model):
    assert compare(names, model, "--steps", "4", "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["model"] == model
    expected = makemore_parameters(names, model)
    for dtype in ("float32", "float64"):
        rows = [r for r in report["rows"] if r["dtype"] == dtype]
        assert {r["name"]: r["shape"] for r in rows} == expected
        assert all(r["passed"] and r["section"] == "model parameters" for r in rows)
    lock = report["lockstep"]
    assert lock["optimizer"] == "adamw" and lock["steps"] == 4
    assert [len(lock["curves"][d]["ours"]) for d in ("float32", "float64")] == [4, 4]
    assert lock["passed"] and lock["max_param_rel_divergence"]["float64"] <= 1e-8
    assert 0 <= lock["float64_drift"] <= 1e-8


def off_by_a_millionth(backward, where):
    """A layer's backward with its input gradient, or its parameters' gradients, scaled by
    1 + 1e-6. A recurrent cell's scan_backward returns (dx, dh0): both are scaled."""
    def mutated(self, *dout):
        dx = backward(self, *dout)
        if where == "input":
            return tuple(d * (1 + 1e-6) for d in dx) if isinstance(dx, tuple) else dx * (1 + 1e-6)
        for p in self.parameters():
            p.grad *= 1 + 1e-6
        return dx
    return mutated


# every layer type of the six models (and the models' own backward, which routes the gradient),
# the model it is planted in, and a row the planted error must reach in float64: the layer's own
# parameter, or one upstream of the scaled input gradient
PLANTED = [
    (nn.CrossEntropyLoss, "backward", "input", "bigram", "logits"),
    (models.Bigram, "backward", "params", "bigram", "logits"),
    (nn.Embedding, "backward", "params", "bengio", "wte.weight"),
    (nn.Linear, "backward", "input", "bengio", "wte.weight"),
    (nn.Linear, "backward", "params", "bengio", "mlp.2.weight"),
    (nn.Tanh, "backward", "input", "bengio", "mlp.0.weight"),
    (nn.Sequential, "backward", "input", "bengio", "wte.weight"),
    (models.Bengio, "backward", "params", "bengio", "mlp.0.bias"),
    (nn.RNNCell, "scan_backward", "input", "rnn", "start"),
    (nn.RNNCell, "scan_backward", "params", "rnn", "cell.xh_to_h.weight"),
    (nn.GRUCell, "scan_backward", "input", "gru", "wte.weight"),
    (nn.GRUCell, "scan_backward", "params", "gru", "cell.xh_to_r.bias"),
    (nn.Recurrent, "backward", "input", "rnn", "wte.weight"),
    (nn.Recurrent, "backward", "params", "gru", "start"),
    (models.RNN, "backward", "params", "rnn", "lm_head.bias"),
    (nn.PositionEmbedding, "backward", "params", "bow", "wpe.weight"),
    (nn.CausalBoW, "backward", "input", "bow", "wte.weight"),
    (nn.BoWBlock, "backward", "input", "bow", "wpe.weight"),
    (nn.MLP, "backward", "input", "bow", "wte.weight"),
    (models.BoW, "backward", "params", "bow", "context_block.mlp.c_fc.bias"),
    (nn.GELU, "backward", "input", "transformer", "transformer.h.0.mlp.c_fc.weight"),
    (nn.LayerNorm, "backward", "input", "transformer", "transformer.wte.weight"),
    (nn.LayerNorm, "backward", "params", "transformer", "transformer.ln_f.bias"),
    (nn.CausalSelfAttention, "backward", "input", "transformer", "transformer.h.0.ln_1.weight"),
    (nn.CausalSelfAttention, "backward", "params", "transformer", "transformer.h.0.attn.c_attn.bias"),
    (nn.Block, "backward", "input", "transformer", "transformer.wpe.weight"),
    (models.Transformer, "backward", "params", "transformer", "lm_head.weight"),
]


@pytest.mark.parametrize("cls, method, where, model, reached", PLANTED,
                         ids=[f"{c.__name__}-{w}-{m}" for c, _, w, m, _ in PLANTED])
def test_one_part_in_a_million_in_any_layer_fails_the_report(names, monkeypatch, capsys, cls, method,
                                                             where, model, reached):
    """float64's 1e-10 sees it; float32's 1e-5 cannot, and needs not to."""
    if cls is nn.CrossEntropyLoss:  # its backward takes no gradient: the scaled result is dlogits
        backward = cls.backward
        monkeypatch.setattr(cls, "backward", lambda self: backward(self) * (1 + 1e-6))
    else:
        monkeypatch.setattr(cls, method, off_by_a_millionth(getattr(cls, method), where))
    assert compare(names, model, "--steps", "1", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    failed = {(r["name"], r["dtype"]) for r in report["rows"] if not r["passed"]}
    assert (reached, "float64") in failed and not report["passed"]


def test_the_planted_layers_are_every_layer_of_the_six_models(names):
    """PLANTED covers each layer type the six models are made of (and the loss)."""
    words = load_words(names)
    vocab, T = len(Vocab.from_words(words)), sequence_length(words)
    used = set()
    for m in SMALL:
        config_sizes = dict(zip(SMALL[m][::2], map(int, SMALL[m][1::2])))
        kwargs = {k[2:].replace("-", "_"): v for k, v in config_sizes.items()}
        model = {"bigram": models.Bigram, "bengio": models.Bengio, "bow": models.BoW,
                 "transformer": models.Transformer}.get(m)
        built = (models.RNN(vocab, T, cell_type=m, **kwargs) if m in ("rnn", "gru")
                 else model(vocab, T, **kwargs))
        used |= {type(layer) for _, layer in built.named_modules()}
    assert used | {nn.CrossEntropyLoss} <= {cls for cls, *_ in PLANTED}


@pytest.mark.parametrize("args, says", [
    (["--model", "transformer", "--hidden", "10"],
     "--hidden does not apply to the transformer model (it takes --n-layer, --n-head, --n-embd)"),
    (["--model", "bigram", "--n-embd", "8"], "--n-embd does not apply to the bigram model (it has no sizes to set)"),
    (["--model", "mlp", "--n-layer", "2"], "--n-layer does not apply to the mlp model (it takes --hidden)"),
    (["--model", "transformer", "--n-head", "3"], "--n-head: must divide --n-embd (64) into equal heads, got 3"),
    (["--model", "gru", "--n-embd2", "0"], "--n-embd2: must be a positive integer, got 0"),
    (["--model", "rnn", "--steps", "0"], "--steps: must be a positive integer, got 0"),
    (["--model", "transformer", "--n-embd", str(10**9), "--n-head", "1"], "these settings need at least"),
    (["--model", "bow", "--data", "/nonexistent/names.txt"], "/nonexistent/names.txt: no such file"),
])
def test_bad_settings_are_refused_in_one_line(names, capsys, args, says):
    assert main(["compare", "--data", str(names), *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and says in err, err


def test_a_lockstep_whose_rounding_drifts_past_the_limit_is_refused(names, monkeypatch, capsys, tmp_path):
    """The refusal's plumbing (the drift is measured with the lockstep): with every gradient of ours' copy moved by a thousandth of the
    largest (not by one rounding; a scaling would hardly move AdamW) the copy drifts past 1e-8,
    and the settings are refused in one line, nothing printed and no --out left behind."""
    from oracle.compare import makemore as compare_makemore

    def nudge(seed=0):
        def moved(flat, step):
            flat += 1e-3 * np.abs(flat).max()
        return moved
    monkeypatch.setattr(compare_makemore, "rounding_nudge", nudge)
    assert compare(names, "bow", "--steps", "3", "--out", str(tmp_path / "report")) == 2
    out, err = capsys.readouterr()
    *progress, err = err.splitlines()  # progress lines come first on a slow machine
    assert out == "" and all("error" not in line for line in progress)
    assert "the lockstep cannot be judged at --batch-size 4 --seed 42 over 3 steps" in err
    assert "one rounding of each gradient per step" in err and not (tmp_path / "report").exists()
