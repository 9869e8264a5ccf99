"""Exercises 1-4 answered line by line as a learner writes them, in NumPy (the default backend).
The broken solutions of test_check are this file with one line changed."""
import numpy as np


def exercise1(t):
    Xb, Yb, n = t.Xb, t.Yb, t.n
    dlogprobs = np.zeros_like(t.logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n
    dprobs = (1.0 / t.probs) * dlogprobs
    dcounts_sum_inv = (t.counts * dprobs).sum(1, keepdims=True)
    dcounts = t.counts_sum_inv * dprobs
    dcounts_sum = -t.counts_sum**-2 * dcounts_sum_inv
    dcounts = dcounts + np.ones_like(t.counts) * dcounts_sum
    dnorm_logits = t.counts * dcounts
    dlogit_maxes = -dnorm_logits.sum(1, keepdims=True)
    dlogits = dnorm_logits.copy()
    dlogits[range(n), t.logits.argmax(1)] += dlogit_maxes[:, 0]
    dh = dlogits @ t.W2.T
    dW2 = t.h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - t.h**2) * dh
    dbngain = (t.bnraw * dhpreact).sum(0, keepdims=True)
    dbnraw = t.bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdims=True)
    dbndiff = t.bnvar_inv * dbnraw
    dbnvar_inv = (t.bndiff * dbnraw).sum(0, keepdims=True)
    dbnvar = -0.5 * (t.bnvar + 1e-5) ** -1.5 * dbnvar_inv
    dbndiff2 = 1.0 / (n - 1) * np.ones_like(t.bndiff2) * dbnvar
    dbndiff = dbndiff + 2 * t.bndiff * dbndiff2
    dbnmeani = -dbndiff.sum(0, keepdims=True)
    dhprebn = dbndiff + 1.0 / n * np.ones_like(t.hprebn) * dbnmeani
    dembcat = dhprebn @ t.W1.T
    dW1 = t.embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.reshape(t.emb.shape)
    dC = np.zeros_like(t.C)
    np.add.at(dC, Xb, demb)
    return dict(logprobs=dlogprobs, probs=dprobs, counts_sum_inv=dcounts_sum_inv,
                counts_sum=dcounts_sum, counts=dcounts, norm_logits=dnorm_logits,
                logit_maxes=dlogit_maxes, logits=dlogits, h=dh, W2=dW2, b2=db2, hpreact=dhpreact,
                bngain=dbngain, bnbias=dbnbias, bnraw=dbnraw, bnvar_inv=dbnvar_inv, bnvar=dbnvar,
                bndiff2=dbndiff2, bndiff=dbndiff, bnmeani=dbnmeani, hprebn=dhprebn,
                embcat=dembcat, W1=dW1, b1=db1, emb=demb, C=dC)


def exercise2(logits, Yb):
    n = logits.shape[0]
    counts = np.exp(logits - logits.max(1, keepdims=True))
    dlogits = counts / counts.sum(1, keepdims=True)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    return dlogits


def exercise3(dhpreact, bngain, bnvar_inv, bnraw, n):
    return bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                     - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))


def exercise4(t):
    Xb, Yb, n = t.Xb, t.Yb, t.n
    counts = np.exp(t.logits - t.logits.max(1, keepdims=True))
    dlogits = counts / counts.sum(1, keepdims=True)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    dh = dlogits @ t.W2.T
    dW2 = t.h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - t.h**2) * dh
    dbngain = (t.bnraw * dhpreact).sum(0, keepdims=True)
    dbnbias = dhpreact.sum(0, keepdims=True)
    dhprebn = t.bngain * t.bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                            - n / (n - 1) * t.bnraw * (dhpreact * t.bnraw).sum(0))
    dembcat = dhprebn @ t.W1.T
    dW1 = t.embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.reshape(t.emb.shape)
    dC = np.zeros_like(t.C)
    np.add.at(dC, Xb, demb)
    return dict(C=dC, W1=dW1, b1=db1, W2=dW2, b2=db2, bngain=dbngain, bnbias=dbnbias)
