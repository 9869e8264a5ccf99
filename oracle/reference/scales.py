"""The scale a gradient's error is measured against: the magnitude of the terms it is summed from.

A gradient whose true value is zero by construction (logit_maxes's, a bias feeding BatchNorm) or
nearly zero by cancellation (BatchNorm's input gradient when dout lies in the span of 1 and xhat;
1 - tanh^2 near saturation) carries rounding of the size of the terms it is computed from, not of
its own size. Running the backward pass on absolute values gives those terms
(docs/tolerances.md).
"""
import numpy as np

from numpy_ninja import atomic


def term_scales(model, dout_terms):
    """{name: the largest magnitude of the terms it is summed from} for every result of model's
    last forward and backward: the layers' own ``terms`` (the backward run on absolute values),
    from dout_terms, the terms of the gradient at the output (|dout|, or more where dout itself
    cancels). Keys: "out", "dx", and the parameter and buffer names."""
    return {k: float(np.max(v, initial=0)) for k, v in model.terms(dout_terms).items()}


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


def atomic_term_scales(t, Xb, Yb, grads=None):
    """For each of the broken-up graph's 26 gradients, the magnitude of the terms it is summed
    from: manual_backprop's chain run on absolute values, entry by entry (t: the forward's
    tensors; Xb, Yb: the batch). A gradient
    that is zero by construction (logit_maxes, b1) or by cancellation carries rounding of this
    size, so its error is measured against it (docs/tolerances.md).

    grads: gradients (shaped as their tensors) the steps are computed from instead of the chain,
    e.g. a learner's: a tensor fed only by given gradients then gets the terms of its own step
    computed from them (what one step's rounding is measured against); the others keep the
    chain's terms."""
    a = {k: np.abs(np.asarray(v, np.float64)) for k, v in t.items()}
    n = Xb.shape[0]
    rows = np.arange(n)
    # dlogprobs is -1/n at the target of each row and 0 elsewhere, exact; but exp turns the
    # absolute rounding of norm_logits (eps times the terms of the logits, L, twice with the max)
    # into a relative one of counts, and every tensor of the softmax and every gradient from there
    # back carries it: the top's terms are 1/n times r = 1 + 2L at the targets
    L = (a["h"] @ a["W2"] + a["b2"]).max(1)
    B = Given(grads or {})
    B["logprobs"] = np.zeros_like(a["logprobs"])
    B["logprobs"][rows, Yb] = (1 + 2 * L) / n
    B["probs"] = B["logprobs"] / a["probs"]
    B["counts_sum_inv"] = (a["counts"] * B["probs"]).sum(1, keepdims=True)
    B["counts_sum"] = a["counts_sum"] ** -2 * B["counts_sum_inv"]
    B["counts"] = a["counts_sum_inv"] * B["probs"] + B["counts_sum"]
    B["norm_logits"] = a["counts"] * B["counts"]
    B["logit_maxes"] = B["norm_logits"].sum(1, keepdims=True)
    B["logits"] = B["norm_logits"].copy()
    B["logits"][rows, a["logits"].argmax(1)] += B["logit_maxes"][:, 0]  # to each row's maximum
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
