"""The lecture's broken-up graph in PyTorch: reference gradients for numpy_ninja.atomic."""
import numpy as np
import torch

from numpy_ninja.atomic import EPS, GRAD_NAMES, PARAM_NAMES


def autograd_backprop(params, Xb, Yb):
    """The same forward as numpy_ninja.atomic.forward, line by line, in torch with retain_grad on
    every intermediate. Returns (loss, grads): grads maps the 26 names of GRAD_NAMES to NumPy
    arrays in the parameters' dtype."""
    p = {k: torch.tensor(np.asarray(params[k]), requires_grad=True) for k in PARAM_NAMES}
    C, W1, b1, W2, b2, bngain, bnbias = (p[k] for k in PARAM_NAMES)
    Xb, Yb = torch.as_tensor(np.asarray(Xb)), torch.as_tensor(np.asarray(Yb))
    n = Xb.shape[0]
    t = {}
    t["emb"] = emb = C[Xb]
    t["embcat"] = embcat = emb.view(n, -1)
    t["hprebn"] = hprebn = embcat @ W1 + b1
    t["bnmeani"] = bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    t["bndiff"] = bndiff = hprebn - bnmeani
    t["bndiff2"] = bndiff2 = bndiff**2
    t["bnvar"] = bnvar = 1 / (n - 1) * bndiff2.sum(0, keepdim=True)
    t["bnvar_inv"] = bnvar_inv = (bnvar + EPS) ** -0.5
    t["bnraw"] = bnraw = bndiff * bnvar_inv
    t["hpreact"] = hpreact = bngain * bnraw + bnbias
    t["h"] = h = torch.tanh(hpreact)
    t["logits"] = logits = h @ W2 + b2
    t["logit_maxes"] = logit_maxes = logits.max(1, keepdim=True).values
    t["norm_logits"] = norm_logits = logits - logit_maxes
    t["counts"] = counts = norm_logits.exp()
    t["counts_sum"] = counts_sum = counts.sum(1, keepdim=True)
    t["counts_sum_inv"] = counts_sum_inv = counts_sum**-1
    t["probs"] = probs = counts * counts_sum_inv
    t["logprobs"] = logprobs = probs.log()
    loss = -logprobs[torch.arange(n), Yb].mean()
    for v in t.values():
        v.retain_grad()
    loss.backward()
    t.update(p)
    return loss.item(), {k: t[k].grad.numpy() for k in GRAD_NAMES}
