"""Shared pieces of the property suite: strategies, and the checks that compare numpy_ninja with
the torch oracle. A check returns the list of disagreements, so the mutation tests can show that
the very check the suite uses reports a planted bug."""
import numpy as np
from hypothesis import assume, currently_in_test_context
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import torch
import torch.nn.functional as F

import numpy_ninja as nn
from numpy_ninja import atomic, models
from numpy_ninja.tolerance import disagreements, rtol_for
from oracle.reference.graph import autograd_backprop
from oracle.reference.scales import atomic_term_scales, term_scales
from oracle.reference.twin import build_twin, run_twin

DTYPES = hnp.floating_dtypes(sizes=(32, 64), endianness="=")
SCALES = st.sampled_from([1e-3, 1e-2, 0.1, 1.0, 10.0])  # init scales over four orders of magnitude

# Every layer for oracle.check_layer: make_layer(dtype, rng), features, input ranks, input kind;
# the harness draws the rest (batch size, sequence length, mode, dtype, initialisation, input
# magnitude, dout).
LAYERS = {
    "Linear": (lambda dtype, rng: nn.Linear(4, int(rng.integers(1, 6)), bias=bool(rng.integers(2)),
                                            rng=rng, dtype=dtype), 4, (2, 3), "float"),
    "Linear, one input feature": (lambda dtype, rng: nn.Linear(1, 3, rng=rng, dtype=dtype), 1, (2, 3), "float"),
    "BatchNorm1d n-1": (lambda dtype, rng: nn.BatchNorm1d(3, momentum=float(rng.choice([0.1, 0.5, 1.0])),
                                                           dtype=dtype), 3, (2, 3), "float"),
    "BatchNorm1d n": (lambda dtype, rng: nn.BatchNorm1d(3, unbiased=False, dtype=dtype), 3, (2, 3), "float"),
    "BatchNorm1d, one channel": (lambda dtype, rng: nn.BatchNorm1d(1, dtype=dtype), 1, (2, 3), "float"),
    "LayerNorm": (lambda dtype, rng: nn.LayerNorm(5, dtype=dtype), 5, (2, 3), "float"),
    "LayerNorm, two features": (lambda dtype, rng: nn.LayerNorm(2, dtype=dtype), 2, (2, 3), "float"),
    "Tanh": (lambda dtype, rng: nn.Tanh(), 3, (2, 3, 4), "float"),
    "Embedding": (lambda dtype, rng: nn.Embedding(6, int(rng.integers(1, 5)), rng=rng, dtype=dtype),
                  6, (1, 2), "index"),
    "Flatten": (lambda dtype, rng: nn.Flatten(), 2, (3, 4), "float"),
    "FlattenConsecutive": (lambda dtype, rng: nn.FlattenConsecutive(int(rng.choice([1, 2, 3]))), 2, (3,), "float"),
}


class SequenceLoss(nn.Module):
    """nn.CrossEntropyLoss(ignore_index=-1) over logits (B, T, V), makemore's loss, as a layer
    check_layer can fuzz: forward(logits) is the loss, a 0-d array of the logits' dtype, against
    the targets ``targets(shape)`` draws from the layer's seed for that shape, about a quarter of
    them -1 (ignored, as makemore's padding; the first always counted: a batch with none counted
    has no loss to check); backward(dout) is dout times the criterion's backward."""

    def __init__(self, seed):
        self.seed = seed
        self.criterion = nn.CrossEntropyLoss(ignore_index=-1)

    def targets(self, shape):
        B, T, V = shape
        rng = np.random.default_rng([self.seed, B, T, V])
        targets = rng.integers(0, V, (B, T))
        targets[rng.random((B, T)) < 0.25] = -1
        targets[0, 0] = abs(targets[0, 0])
        return targets

    def forward(self, logits):
        self.cache = logits
        return np.asarray(self.criterion(logits, self.targets(logits.shape)), logits.dtype)

    def backward(self, dout):
        self.saved()
        return self.criterion.backward() * dout

    def terms(self, dout_terms):
        t = self.criterion.terms(np.abs(self.saved().astype(np.float64)))  # the logits are exact
        return {"out": np.asarray(t["out"]), "dx": t["dx"] * dout_terms}


class SequenceLossTwin(torch.nn.Module):
    """F.cross_entropy(ignore_index=-1) on the targets a SequenceLoss draws."""

    def __init__(self, layer):
        super().__init__()
        self.targets = layer.targets

    def forward(self, logits):
        targets = torch.as_tensor(self.targets(tuple(logits.shape)))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)


def _model(cls, **sizes):
    """make_layer for a makemore model of VOCAB tokens and block size 6, seeded from rng."""
    return lambda dtype, rng: cls(VOCAB, 6, **sizes, seed=int(rng.integers(2**31)), dtype=dtype)


# makemore's layers and models for oracle.check_layer, as LAYERS, with their torch twin last
# (makemore's own modules: oracle.reference.makemore.layer_twin through build_twin). Without a
# twin, a layer whose tensors all have at most 64 values has every element checked by central
# differences; one with a larger tensor, along one random direction per tensor (a wrong gradient
# shows along almost every direction), far cheaper for a layer that runs many small operations per
# forward. So the attention, the GRU, the block and the models (a vocabulary of VOCAB = 33 tokens)
# are sized just over it; the twin checks every element of every layer.
VOCAB = 33
MAKEMORE_LAYERS = {
    "GELU": (lambda dtype, rng: nn.GELU(), 4, (2, 3), "float", build_twin),
    "PositionEmbedding": (lambda dtype, rng: nn.PositionEmbedding(6, 3, rng=rng, dtype=dtype), 5, (2,),
                          "index", build_twin),
    "CausalSelfAttention": (lambda dtype, rng: nn.CausalSelfAttention(6, 2, 6, rng=rng, dtype=dtype), 6,
                            (3,), "float", build_twin),
    "CausalBoW": (lambda dtype, rng: nn.CausalBoW(6), 3, (3,), "float", build_twin),
    "MLP": (lambda dtype, rng: nn.MLP(3, 5, nn.GELU(), rng=rng, dtype=dtype), 3, (2, 3), "float",
            build_twin),  # the Transformer's; the BoWBlock holds the tanh one
    "Block": (lambda dtype, rng: nn.Block(5, 1, 6, rng=rng, dtype=dtype), 5, (3,), "float",
              build_twin),  # one head: the attention's heads are checked above, and in the model
    "BoWBlock": (lambda dtype, rng: nn.BoWBlock(3, 5, 6, rng=rng, dtype=dtype), 3, (3,), "float",
                 build_twin),
    "Recurrent, RNNCell": (lambda dtype, rng: nn.Recurrent(nn.RNNCell(3, 4, rng=rng, dtype=dtype)), 3,
                           (3,), "float", build_twin),
    "Recurrent, GRUCell": (lambda dtype, rng: nn.Recurrent(nn.GRUCell(3, 8, rng=rng, dtype=dtype)), 3,
                           (3,), "float", build_twin),
    "CrossEntropyLoss, ignore_index": (lambda dtype, rng: SequenceLoss(int(rng.integers(2**31))), 5,
                                       (3,), "float", SequenceLossTwin),
    "bigram": (_model(models.Bigram), VOCAB, (2,), "index", build_twin),
    "bengio": (_model(models.Bengio, n_embd=2, n_embd2=4), VOCAB, (2,), "index", build_twin),
    "rnn": (_model(models.RNN, n_embd=2, n_embd2=3, cell_type="rnn"), VOCAB, (2,), "index", build_twin),
    "gru": (_model(models.RNN, n_embd=2, n_embd2=3, cell_type="gru"), VOCAB, (2,), "index", build_twin),
    "bow": (_model(models.BoW, n_embd=3, n_embd2=4), VOCAB, (2,), "index", build_twin),
    "transformer": (_model(models.Transformer, n_layer=2, n_head=2, n_embd=4), VOCAB, (2,), "index",
                    build_twin),
}


def floats(dtype, shape, lo=-2.0, hi=2.0):
    """A float array of the given dtype and shape, no subnormals, every element drawn: with a fill
    value hypothesis makes most of an array one number, and equal rows give BatchNorm constant
    channels that no dtype can normalise."""
    elements = st.floats(lo, hi, width=32, allow_subnormal=False)
    return hnp.arrays(dtype, shape, elements=elements, fill=st.nothing())


def contexts(draw, V, N, block):
    """Integer contexts (N, block) in [0, V), every entry drawn (no fill value), the first two
    rows different: a batch whose rows are all the same context gives BatchNorm constant
    channels, which no dtype can normalise (V >= 2, N >= 2). draw: data.draw, or a composite's."""
    X = draw(hnp.arrays(np.int64, (N, block), elements=st.integers(0, V - 1), fill=st.nothing()),
             label="X")
    if np.array_equal(X[0], X[1]):
        X[1, 0] = (X[0, 0] + draw(st.integers(1, V - 1), label="X[1, 0] - X[0, 0]")) % V
    return X


def set_params(data, model, dtype, scale):
    """Draw every parameter (and positive running variances) with hypothesis, times scale."""
    for name, p in model.named_parameters():
        p.data = data.draw(floats(dtype, p.shape), label=name) * np.asarray(scale, dtype)
        p.grad = np.zeros_like(p.data)
    for layer in model.layers:
        if isinstance(layer, nn.BatchNorm1d):
            C = layer.weight.shape[0]
            layer.running_mean = data.draw(floats(dtype, C), label="running_mean")
            layer.running_var = data.draw(floats(dtype, C, 0.0625, 4.0), label="running_var")


def our_pass(model, x, targets=None, dout=None):
    """Forward layer by layer and backward; returns out, loss, dx, the input of each layer, the
    gradient at the output and the criterion (None without targets)."""
    inputs = []
    out = x
    for layer in model.layers:
        inputs.append(out)
        out = layer(out)
    loss = criterion = None
    if targets is not None:
        criterion = nn.CrossEntropyLoss()
        loss = criterion(out, targets)
        dout = criterion.backward()
    return out, loss, model.backward(dout), inputs, dout, criterion


def require(condition):
    """Inside a hypothesis test, skip the example; elsewhere (fixed cases) it must hold."""
    if currently_in_test_context():
        assume(condition)
    else:
        assert condition, "the batch cannot be resolved in this dtype (see resolvable)"


def resolvable(model, inputs, dtype):
    """Whether every BatchNorm in training can resolve x - mean of its input (its check_domain):
    through several BatchNorm layers the relative errors of x - mean add up, so each gets an
    equal share of the tolerance. Below it the output is rounding noise amplified by up to
    1/sqrt(eps), in any implementation; test_properties covers the exactly-constant channel
    separately."""
    bns = [(layer, x) for layer, x in zip(model.layers, inputs)
           if isinstance(layer, nn.BatchNorm1d) and layer.training]
    return all(layer.check_domain(x, rtol_for(dtype) / len(bns)) is None for layer, x in bns)


def twin_disagreements(model, x, targets=None, dout=None):
    """Everything numpy_ninja computes for one pass of `model`, against its torch twin.

    Returns the Comparisons (numpy_ninja.tolerance.check_tensor) of every output, loss, input
    gradient, parameter gradient and running statistic that breaks the tolerance policy for the
    model's dtype, each measured against the terms it is summed from (the layers' and the
    loss's ``terms``).
    """
    dtype = model.parameters()[0].data.dtype if model.parameters() else x.dtype
    ref = run_twin(model, x, targets=targets, dout=dout)  # before ours: ours updates buffers
    out, loss, dx, inputs, dout, criterion = our_pass(model, x, targets=targets, dout=dout)
    require(resolvable(model, inputs, dtype))
    results = []
    if criterion is None:
        scales = term_scales(model, np.abs(np.asarray(dout, np.float64)))
    else:
        logit_terms = model.layers[-1].terms(np.zeros(out.shape))["out"]
        loss_terms = criterion.terms(logit_terms)
        scales = term_scales(model, loss_terms["dx"])
        results.append(("loss", np.array(loss, dtype), np.array(ref["loss"], dtype), loss_terms["out"]))
    results.append(("out", out, ref["out"], scales.get("out")))
    if ref["dx"] is not None:
        results.append(("dx", dx, ref["dx"], scales["dx"]))
    for name, p in model.named_parameters():
        results.append((f"grad {name}", p.grad, ref["grads"][name], scales[name]))
    for name, b in model.named_buffers():  # running statistics: (1-m) running + m stat can cancel
        results.append((name, b, ref["buffers"][name], scales[name]))
    for name, ours, theirs, _ in results:
        assert ours.shape == theirs.shape and ours.dtype == dtype, name
    return disagreements(results)


def atomic_disagreements(params, Xb, Yb):
    """All 26 gradients of the broken-up graph (and the loss) against autograd: the failing
    Comparisons."""
    dtype = params["C"].dtype
    _, t = atomic.forward(params, Xb, Yb)
    require(atomic.resolves(t["hprebn"]))
    loss, grads = atomic.manual_backprop(params, Xb, Yb)
    ref_loss, ref = autograd_backprop(params, Xb, Yb)
    scales = atomic_term_scales(t, Xb, Yb)
    results = [("loss", np.array(loss, dtype), np.array(ref_loss, dtype), None)]
    for name in atomic.GRAD_NAMES:
        assert grads[name].shape == ref[name].shape and grads[name].dtype == dtype, name
        results.append((name, grads[name], ref[name], scales.get(name)))
    return disagreements(results)


def one_step_disagreements(params, Xb, Yb):
    """The one-step backward of exercise 2 (cross_entropy_backward -> dlogits) and exercise 3
    (batchnorm_backward -> dhprebn, fed autograd's dhpreact), and every gradient of fast_backprop,
    against autograd: the failing Comparisons."""
    dtype = params["C"].dtype
    _, t = atomic.forward(params, Xb, Yb)
    require(atomic.resolves(t["hprebn"]))
    _, ref = autograd_backprop(params, Xb, Yb)
    scales = atomic_term_scales(t, Xb, Yb)
    pairs = [("dlogits", atomic.cross_entropy_backward(t["logits"], Yb), "logits"),
             ("dhprebn", atomic.batchnorm_backward(ref["hpreact"], t["bngain"], t["bnraw"], t["bnvar_inv"]), "hprebn")]
    _, fast = atomic.fast_backprop(params, Xb, Yb)
    pairs += [(f"fast {name}", g, name) for name, g in fast.items()]
    for what, ours, name in pairs:
        assert ours.shape == ref[name].shape and ours.dtype == dtype, what
    return disagreements((what, ours, ref[name], scales[name]) for what, ours, name in pairs)


@st.composite
def lecture_params(draw, dtype=None):
    """Params, Xb, Yb for the broken-up graph: random vocabulary, block, embedding, hidden and batch
    sizes, initialisation scale and dtype."""
    dtype = dtype or draw(DTYPES)
    V, block, E = draw(st.integers(2, 12)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    H, n = draw(st.integers(1, 12)), draw(st.integers(2, 24))
    scale = draw(SCALES)
    shapes = dict(C=(V, E), W1=(block * E, H), b1=(H,), W2=(H, V), b2=(V,), bngain=(1, H), bnbias=(1, H))
    params = {k: draw(floats(dtype, s, -1, 1), label=k) for k, s in shapes.items()}
    for k in ("W1", "b1", "W2"):  # b1 with W1: hprebn keeps a spread BatchNorm can resolve
        params[k] *= np.asarray(scale, dtype)
    params["bngain"] += np.asarray(1, dtype)
    Xb = contexts(draw, V, n, block)
    Yb = draw(hnp.arrays(np.int64, n, elements=st.integers(0, V - 1)), label="Yb")
    return params, Xb, Yb
