"""Exercises 1-4 answered as the lecture's notebook answers them, in torch: with BACKEND = "torch"
the notebook's code runs unchanged on the tensors it receives."""
import torch
import torch.nn.functional as F

BACKEND = "torch"


def exercise1(t):
    Xb, Yb, n = t.Xb, t.Yb, t.n
    C, W1, W2, bngain = t.C, t.W1, t.W2, t.bngain
    emb, embcat, hprebn, bndiff, bndiff2, bnvar, bnvar_inv, bnraw, h = (
        t.emb, t.embcat, t.hprebn, t.bndiff, t.bndiff2, t.bnvar, t.bnvar_inv, t.bnraw, t.h)
    logits, counts, counts_sum, counts_sum_inv, probs, logprobs = (
        t.logits, t.counts, t.counts_sum, t.counts_sum_inv, t.probs, t.logprobs)

    dlogprobs = torch.zeros_like(logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n
    dprobs = (1.0 / probs) * dlogprobs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    dcounts = counts_sum_inv * dprobs
    dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv
    dcounts += torch.ones_like(counts) * dcounts_sum
    dnorm_logits = counts * dcounts
    dlogits = dnorm_logits.clone()
    dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
    dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdim=True)
    dbndiff = bnvar_inv * dbnraw
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
    dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(bndiff2) * dbnvar
    dbndiff += (2 * bndiff) * dbndiff2
    dhprebn = dbndiff.clone()
    dbnmeani = (-dbndiff).sum(0, keepdim=True)
    dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(C)
    for k in range(Xb.shape[0]):
        for j in range(Xb.shape[1]):
            dC[Xb[k, j]] += demb[k, j]
    return dict(logprobs=dlogprobs, probs=dprobs, counts_sum_inv=dcounts_sum_inv,
                counts_sum=dcounts_sum, counts=dcounts, norm_logits=dnorm_logits,
                logit_maxes=dlogit_maxes, logits=dlogits, h=dh, W2=dW2, b2=db2, hpreact=dhpreact,
                bngain=dbngain, bnbias=dbnbias, bnraw=dbnraw, bnvar_inv=dbnvar_inv, bnvar=dbnvar,
                bndiff2=dbndiff2, bndiff=dbndiff, bnmeani=dbnmeani, hprebn=dhprebn,
                embcat=dembcat, W1=dW1, b1=db1, emb=demb, C=dC)


def exercise2(logits, Yb):
    n = logits.shape[0]
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    return dlogits


def exercise3(dhpreact, bngain, bnvar_inv, bnraw, n):
    return bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                     - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))


def exercise4(t):
    Xb, Yb, n = t.Xb, t.Yb, t.n
    logits, h, bnraw, bnvar_inv, embcat, emb = t.logits, t.h, t.bnraw, t.bnvar_inv, t.embcat, t.emb
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    dh = dlogits @ t.W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnbias = dhpreact.sum(0, keepdim=True)
    dhprebn = t.bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                          - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    dembcat = dhprebn @ t.W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(t.C)
    for k in range(Xb.shape[0]):
        for j in range(Xb.shape[1]):
            dC[Xb[k, j]] += demb[k, j]
    return dict(C=dC, W1=dW1, b1=db1, W2=dW2, b2=db2, bngain=dbngain, bnbias=dbnbias)
