"""The scale a gradient's error is measured against: the magnitude of the terms it is summed from.

A gradient whose true value is zero by construction (logit_maxes's, a bias feeding BatchNorm) or
nearly zero by cancellation (BatchNorm's input gradient when dout lies in the span of 1 and xhat;
1 - tanh^2 near saturation) carries rounding of the size of the terms it is computed from, not of
its own size. Running the backward pass on absolute values gives those terms (DESIGN.md: "measure
against the scale they are summed from").
"""
import numpy as np

import numpy_ninja as nn
from numpy_ninja import atomic


def backward_by_layer(model, dout):
    """model.backward(dout), layer by layer: returns dx and {i: the gradient reaching layer i}."""
    douts = {}
    for i in reversed(range(len(model))):
        douts[i] = dout
        dout = model.layers[i].backward(dout)
    return dout, douts


def term_scales(model, douts, top=None):
    """The magnitude of the terms each gradient is summed from: the backward pass run on absolute
    values (|dout|, |weights|, |inputs|), starting from |gradient at the output|. A gradient whose
    true value is (nearly) zero by cancellation, such as a bias feeding BatchNorm or BatchNorm's
    input gradient when dout lies in the span of 1 and xhat, carries rounding of the size of these
    terms, so its error is measured against them (DESIGN.md). Returns {name: scale} for every
    parameter gradient, and "dx" for the input gradient. top: the terms of the gradient at the
    output, when they are larger than its value (default |douts[last]|)."""
    scales = {}
    B = np.abs(douts[len(model) - 1]).astype(np.float64) if top is None else top
    for i in reversed(range(len(model))):
        layer = model.layers[i]
        if isinstance(layer, nn.Tanh):  # the terms of 1 - h^2 are 1 and h^2: it cancels as h -> +-1
            B = (1 + layer.cache.astype(np.float64) ** 2) * B
        elif isinstance(layer, nn.Linear):
            x = np.abs(layer.cache.astype(np.float64)).reshape(-1, layer.weight.shape[0])
            B2 = B.reshape(-1, layer.weight.shape[1])
            scales[f"{i}.weight"] = float((x.T @ B2).max(initial=0))
            if layer.bias is not None:
                scales[f"{i}.bias"] = float(B2.sum(0).max(initial=0))
            B = B @ np.abs(layer.weight.data.astype(np.float64)).T
        elif isinstance(layer, nn.BatchNorm1d):
            xc, istd, n = (np.asarray(v, np.float64) if v is not None else None for v in layer.cache)
            B2, xhat = B.reshape(xc.shape), np.abs(xc * istd)
            k = np.abs(layer.weight.data.astype(np.float64) * istd)
            scales[f"{i}.weight"] = float((B2 * xhat).sum(0).max(initial=0))
            scales[f"{i}.bias"] = float(B2.sum(0).max(initial=0))
            if n is None:
                B = (k * B2).reshape(B.shape)
            else:
                d = 1 if layer.unbiased else 0
                B = (k * (B2 + B2.sum(0) / n + xhat * (B2 * xhat).sum(0) / (n - d))).reshape(B.shape)
        elif isinstance(layer, nn.Embedding):
            terms = np.zeros(layer.weight.shape)
            np.add.at(terms, layer.cache.reshape(-1), B.reshape(-1, layer.weight.shape[1]))
            scales[f"{i}.weight"] = float(terms.max(initial=0))
            B = None
        else:  # Flatten, FlattenConsecutive: reshapes
            B = B.reshape(layer.cache)
    if B is not None:
        scales["dx"] = float(B.max(initial=0))
    return scales


class Given(dict):
    """Terms where some gradients are given: reading a name in `grads` gives |grads[name]|, so
    what is stored for a tensor computed from them is the terms of its own step."""

    def __init__(self, grads):
        super().__init__()
        self.grads = grads

    def __getitem__(self, name):
        if name in self.grads:
            return np.abs(np.asarray(self.grads[name], np.float64))
        return super().__getitem__(name)


def atomic_term_scales(t, Xb, grads=None):
    """For each of the broken-up graph's 26 gradients, the magnitude of the terms it is summed
    from: manual_backprop's chain run on absolute values (t: the forward's tensors). A gradient
    that is zero by construction (logit_maxes, b1) or by cancellation carries rounding of this
    size, so its error is measured against it (DESIGN.md).

    grads: gradients (shaped as their tensors) the steps are computed from instead of the chain,
    e.g. a learner's: a tensor fed only by given gradients then gets the terms of its own step
    computed from them (what one step's rounding is measured against); the others keep the
    chain's terms."""
    a = {k: np.abs(np.asarray(v, np.float64)) for k, v in t.items()}
    n = Xb.shape[0]
    B = Given(grads or {})
    B["logprobs"] = np.full((n, 1), 1 / n)  # |dlogprobs|: one entry of 1/n per row
    B["probs"] = B["logprobs"] / a["probs"]  # a bound for every entry of the row
    B["counts_sum_inv"] = (a["counts"] * B["probs"]).sum(1, keepdims=True)
    B["counts_sum"] = a["counts_sum"] ** -2 * B["counts_sum_inv"]
    B["counts"] = a["counts_sum_inv"] * B["probs"] + B["counts_sum"]
    B["norm_logits"] = a["counts"] * B["counts"]
    B["logit_maxes"] = B["norm_logits"].sum(1, keepdims=True)
    B["logits"] = B["norm_logits"] + B["logit_maxes"]
    B["h"] = B["logits"] @ a["W2"].T
    B["W2"], B["b2"] = a["h"].T @ B["logits"], B["logits"].sum(0)
    B["hpreact"] = (1 + a["h"] ** 2) * B["h"]  # the terms of 1 - h^2 are 1 and h^2
    B["bngain"] = (a["bnraw"] * B["hpreact"]).sum(0, keepdims=True)
    B["bnbias"] = B["hpreact"].sum(0, keepdims=True)
    B["bnraw"] = a["bngain"] * B["hpreact"]
    B["bnvar_inv"] = (a["bndiff"] * B["bnraw"]).sum(0, keepdims=True)
    B["bnvar"] = 0.5 * (a["bnvar"] + atomic.EPS) ** -1.5 * B["bnvar_inv"]
    B["bndiff2"] = np.ones_like(a["bndiff2"]) * B["bnvar"] / (n - 1)
    B["bndiff"] = a["bnvar_inv"] * B["bnraw"] + 2 * a["bndiff"] * B["bndiff2"]
    B["bnmeani"] = B["bndiff"].sum(0, keepdims=True)
    B["hprebn"] = B["bndiff"] + B["bnmeani"] / n
    B["embcat"] = B["hprebn"] @ a["W1"].T
    B["W1"], B["b1"] = a["embcat"].T @ B["hprebn"], B["hprebn"].sum(0)
    B["emb"] = B["embcat"].reshape(a["emb"].shape)
    terms_C = np.zeros_like(a["C"])
    np.add.at(terms_C, Xb, B["emb"])
    B["C"] = terms_C
    return {k: float(v.max()) for k, v in B.items()}
