"""The lecture's broken-up graph (exercise 1) and its one-step shortcuts (exercises 2 and 3).

The network is the 2-layer MLP with BatchNorm of makemore part 4. ``forward`` follows the
lecture line by line; ``manual_backprop`` walks back through every atomic step and returns
the gradient of the loss with respect to each named tensor. ``cross_entropy_backward`` and
``batchnorm_backward`` are the one-step answers to exercises 2 and 3; ``fast_backprop`` uses
them to get the parameter gradients.

Shapes: C (V, E), W1 (block*E, H), b1 (H,), W2 (H, V), b2 (V,), bngain (1, H), bnbias (1, H);
Xb (N, block) integer contexts, Yb (N,) integer targets. dtype follows the parameters.
"""
import numpy as np

from .nn import BatchNorm1d
from .tolerance import rtol_for

PARAM_NAMES = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")
GRAD_NAMES = (
    "logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits",
    "logit_maxes", "logits", "h", "W2", "b2", "hpreact", "bngain", "bnbias", "bnraw",
    "bnvar_inv", "bnvar", "bndiff2", "bndiff", "bnmeani", "hprebn", "embcat", "W1", "b1",
    "emb", "C",
)
EPS = 1e-5


def params_from_mlp(model):
    """The lecture's tensors of a models.mlp network (the same arrays, gain and bias as (1, H))."""
    sd = model.state_dict()
    return {"C": sd["0.weight"], "W1": sd["2.weight"], "b1": sd["2.bias"], "W2": sd["5.weight"],
            "b2": sd["5.bias"], "bngain": sd["3.weight"][None], "bnbias": sd["3.bias"][None]}


def resolves(hprebn, dtype=None):
    """Whether BatchNorm can resolve hprebn - bnmeani in dtype (default: hprebn's) to the
    tolerance the checks hold it to (BatchNorm1d.check_domain): below that spread, what it
    normalises is rounding noise in any implementation."""
    dtype = np.dtype(dtype or hprebn.dtype)
    x = np.asarray(hprebn).astype(dtype)
    return BatchNorm1d(x.shape[1], dtype=dtype).check_domain(x, rtol_for(dtype)) is None


def forward(params, Xb, Yb):
    """The lecture's forward pass. Returns (loss, t): t maps every tensor name to its value."""
    n = Xb.shape[0]
    if n < 2:
        raise ValueError(f"the batch needs at least 2 rows for the n-1 variance, got {n}")
    t = dict(params)
    C, W1, b1, W2, b2, bngain, bnbias = (params[k] for k in PARAM_NAMES)
    # embed the characters and concatenate the vectors of each context
    t["emb"] = emb = C[Xb]                                   # (N, block, E)
    t["embcat"] = embcat = emb.reshape(n, -1)                # (N, block*E)
    # linear layer 1
    t["hprebn"] = hprebn = embcat @ W1 + b1                  # (N, H)
    # batchnorm, Bessel-corrected variance
    t["bnmeani"] = bnmeani = 1 / n * hprebn.sum(0, keepdims=True)
    t["bndiff"] = bndiff = hprebn - bnmeani
    t["bndiff2"] = bndiff2 = bndiff**2
    t["bnvar"] = bnvar = 1 / (n - 1) * bndiff2.sum(0, keepdims=True)
    t["bnvar_inv"] = bnvar_inv = (bnvar + EPS) ** -0.5
    t["bnraw"] = bnraw = bndiff * bnvar_inv
    t["hpreact"] = hpreact = bngain * bnraw + bnbias
    # non-linearity
    t["h"] = h = np.tanh(hpreact)
    # linear layer 2
    t["logits"] = logits = h @ W2 + b2                       # (N, V)
    # cross-entropy, one step at a time
    t["logit_maxes"] = logit_maxes = logits.max(1, keepdims=True)
    t["norm_logits"] = norm_logits = logits - logit_maxes    # subtract the max for stability
    t["counts"] = counts = np.exp(norm_logits)
    t["counts_sum"] = counts_sum = counts.sum(1, keepdims=True)
    t["counts_sum_inv"] = counts_sum_inv = counts_sum**-1
    t["probs"] = probs = counts * counts_sum_inv
    t["logprobs"] = logprobs = np.log(probs)
    loss = -logprobs[np.arange(n), Yb].mean()
    return float(loss), t


def manual_backprop(params, Xb, Yb):
    """Exercise 1: backprop through every atomic step. Returns (loss, grads), grads keyed by GRAD_NAMES."""
    loss, t = forward(params, Xb, Yb)
    n = Xb.shape[0]
    rows = np.arange(n)
    g = {}
    # loss = -mean(logprobs[i, Yb[i]])
    g["logprobs"] = dlogprobs = np.zeros_like(t["logprobs"])
    dlogprobs[rows, Yb] = -1 / n
    # d log(p) = 1/p
    g["probs"] = dprobs = dlogprobs / t["probs"]
    # probs = counts * counts_sum_inv, counts_sum_inv broadcast across columns: sum it back
    g["counts_sum_inv"] = dcounts_sum_inv = (t["counts"] * dprobs).sum(1, keepdims=True)
    dcounts = t["counts_sum_inv"] * dprobs
    # d x^-1 = -x^-2
    g["counts_sum"] = dcounts_sum = -t["counts_sum"] ** -2 * dcounts_sum_inv
    # counts_sum = sum over columns: each count gets dcounts_sum (second branch into counts)
    g["counts"] = dcounts = dcounts + dcounts_sum
    # d exp(x) = exp(x)
    g["norm_logits"] = dnorm_logits = t["counts"] * dcounts
    # norm_logits = logits - logit_maxes (broadcast): logit_maxes collects minus the row sum
    g["logit_maxes"] = dlogit_maxes = -dnorm_logits.sum(1, keepdims=True)
    # logit_maxes = max(logits): the gradient flows to the arg-max entry of each row
    dlogits = dnorm_logits.copy()
    dlogits[rows, t["logits"].argmax(1)] += dlogit_maxes[:, 0]
    g["logits"] = dlogits
    # logits = h @ W2 + b2
    g["h"] = dh = dlogits @ t["W2"].T
    g["W2"] = t["h"].T @ dlogits
    g["b2"] = dlogits.sum(0)
    # d tanh = 1 - tanh^2
    g["hpreact"] = dhpreact = (1 - t["h"] ** 2) * dh
    # hpreact = bngain * bnraw + bnbias
    g["bngain"] = (t["bnraw"] * dhpreact).sum(0, keepdims=True)
    g["bnraw"] = dbnraw = t["bngain"] * dhpreact
    g["bnbias"] = dhpreact.sum(0, keepdims=True)
    # bnraw = bndiff * bnvar_inv
    dbndiff = t["bnvar_inv"] * dbnraw
    g["bnvar_inv"] = dbnvar_inv = (t["bndiff"] * dbnraw).sum(0, keepdims=True)
    # bnvar_inv = (bnvar + eps)^-0.5
    g["bnvar"] = dbnvar = -0.5 * (t["bnvar"] + EPS) ** -1.5 * dbnvar_inv
    # bnvar = 1/(n-1) * sum(bndiff2): every row gets the same share
    g["bndiff2"] = dbndiff2 = np.ones_like(t["bndiff2"]) * (1 / (n - 1) * dbnvar)
    # bndiff2 = bndiff^2 (second branch into bndiff)
    g["bndiff"] = dbndiff = dbndiff + 2 * t["bndiff"] * dbndiff2
    # bndiff = hprebn - bnmeani (broadcast)
    g["bnmeani"] = dbnmeani = -dbndiff.sum(0, keepdims=True)
    # bnmeani = 1/n * sum(hprebn) (second branch into hprebn)
    g["hprebn"] = dhprebn = dbndiff + 1 / n * dbnmeani
    # hprebn = embcat @ W1 + b1
    g["embcat"] = dembcat = dhprebn @ t["W1"].T
    g["W1"] = t["embcat"].T @ dhprebn
    g["b1"] = dhprebn.sum(0)
    # embcat is a view of emb
    g["emb"] = demb = dembcat.reshape(t["emb"].shape)
    # emb = C[Xb]: rows looked up several times accumulate
    g["C"] = dC = np.zeros_like(t["C"])
    np.add.at(dC, Xb, demb)
    return loss, {k: g[k] for k in GRAD_NAMES}


def cross_entropy_backward(logits, Yb):
    """Exercise 2: dloss/dlogits in one step, (softmax(logits) - onehot(Yb)) / N. (N, V) -> (N, V)."""
    n = logits.shape[0]
    counts = np.exp(logits - logits.max(1, keepdims=True))
    dlogits = counts / counts.sum(1, keepdims=True)
    dlogits[np.arange(n), Yb] -= 1
    return dlogits / n


def batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv):
    """Exercise 3: dloss/dhprebn in one step, for the lecture's n-1 variance. All (N, H) or (1, H)."""
    n = dhpreact.shape[0]
    return bngain * bnvar_inv / n * (
        n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))


def fast_backprop(params, Xb, Yb):
    """The parameter gradients with the one-step backward of exercises 2 and 3.

    Returns (loss, grads) with grads for PARAM_NAMES plus ``logits`` and ``hprebn``.
    """
    loss, t = forward(params, Xb, Yb)
    g = {}
    g["logits"] = dlogits = cross_entropy_backward(t["logits"], Yb)
    dh = dlogits @ t["W2"].T
    g["W2"] = t["h"].T @ dlogits
    g["b2"] = dlogits.sum(0)
    dhpreact = (1 - t["h"] ** 2) * dh
    g["bngain"] = (t["bnraw"] * dhpreact).sum(0, keepdims=True)
    g["bnbias"] = dhpreact.sum(0, keepdims=True)
    g["hprebn"] = dhprebn = batchnorm_backward(dhpreact, t["bngain"], t["bnraw"], t["bnvar_inv"])
    g["W1"] = t["embcat"].T @ dhprebn
    g["b1"] = dhprebn.sum(0)
    g["C"] = dC = np.zeros_like(t["C"])
    np.add.at(dC, Xb, (dhprebn @ t["W1"].T).reshape(t["emb"].shape))
    return loss, g
