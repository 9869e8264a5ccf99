"""Notebooks with the lecture's cell structure and names, written here (the lecture's own notebook
is not part of the repository): its setup cells, the forward pass in small steps, the four exercise
cells with their markers and cmp lines, and the training, calibration and sampling after them.
Each exercise's cell can be swapped for another answer, a blank one, or a broken one."""
import json
from pathlib import Path

SETUP = [
    "import torch\nimport torch.nn.functional as F\nimport matplotlib.pyplot as plt\n%matplotlib inline",
    "!wget https://example.invalid/names.txt",
    "words = open('names.txt', 'r').read().splitlines()\nprint(len(words), max(len(w) for w in words))",
    "chars = sorted(list(set(''.join(words))))\nstoi = {s: i + 1 for i, s in enumerate(chars)}\n"
    "stoi['.'] = 0\nitos = {i: s for s, i in stoi.items()}\nvocab_size = len(itos)",
    "block_size = 3\n\ndef build_dataset(words):\n    X, Y = [], []\n    for w in words:\n"
    "        context = [0] * block_size\n        for ch in w + '.':\n            ix = stoi[ch]\n"
    "            X.append(context)\n            Y.append(ix)\n            context = context[1:] + [ix]\n"
    "    return torch.tensor(X), torch.tensor(Y)\n\nimport random\nrandom.seed(42)\nrandom.shuffle(words)\n"
    "n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))\nXtr, Ytr = build_dataset(words[:n1])\n"
    "Xdev, Ydev = build_dataset(words[n1:n2])\nXte, Yte = build_dataset(words[n2:])",
    "# compare a manual gradient with autograd's\ndef cmp(s, dt, t):\n"
    "    ex = torch.all(dt == t.grad).item()\n    app = torch.allclose(dt, t.grad)\n"
    "    maxdiff = (dt - t.grad).abs().max().item()\n"
    "    print(f'{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s} | maxdiff: {maxdiff}')",
    "n_embd = 10\nn_hidden = 64\ng = torch.Generator().manual_seed(2147483647)\n"
    "C = torch.randn((vocab_size, n_embd), generator=g)\n"
    "W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5/3) / ((n_embd * block_size)**0.5)\n"
    "b1 = torch.randn(n_hidden, generator=g) * 0.1\nW2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1\n"
    "b2 = torch.randn(vocab_size, generator=g) * 0.1\nbngain = torch.randn((1, n_hidden)) * 0.1 + 1.0\n"
    "bnbias = torch.randn((1, n_hidden)) * 0.1\nparameters = [C, W1, b1, W2, b2, bngain, bnbias]\n"
    "for p in parameters:\n    p.requires_grad = True",
    "batch_size = 32\nn = batch_size\nix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)\n"
    "Xb, Yb = Xtr[ix], Ytr[ix]",
    "emb = C[Xb]\nembcat = emb.view(emb.shape[0], -1)\nhprebn = embcat @ W1 + b1\n"
    "bnmeani = 1/n*hprebn.sum(0, keepdim=True)\nbndiff = hprebn - bnmeani\nbndiff2 = bndiff**2\n"
    "bnvar = 1/(n-1)*(bndiff2).sum(0, keepdim=True)\nbnvar_inv = (bnvar + 1e-5)**-0.5\n"
    "bnraw = bndiff * bnvar_inv\nhpreact = bngain * bnraw + bnbias\nh = torch.tanh(hpreact)\n"
    "logits = h @ W2 + b2\nlogit_maxes = logits.max(1, keepdim=True).values\n"
    "norm_logits = logits - logit_maxes\ncounts = norm_logits.exp()\n"
    "counts_sum = counts.sum(1, keepdims=True)\ncounts_sum_inv = counts_sum**-1\n"
    "probs = counts * counts_sum_inv\nlogprobs = probs.log()\nloss = -logprobs[range(n), Yb].mean()\n"
    "for p in parameters:\n    p.grad = None\n"
    "for t in [logprobs, probs, counts, counts_sum, counts_sum_inv, norm_logits, logit_maxes, logits,\n"
    "          h, hpreact, bnraw, bnvar_inv, bnvar, bndiff2, bndiff, hprebn, bnmeani, embcat, emb]:\n"
    "    t.retain_grad()\nloss.backward()\nloss",
]

CHECKS_1 = ("logprobs probs counts_sum_inv counts_sum counts norm_logits logit_maxes logits h W2 b2 "
            "hpreact bngain bnbias bnraw bnvar_inv bnvar bndiff2 bndiff bnmeani hprebn embcat W1 b1 "
            "emb C").split()

EX1_HEAD = "# Exercise 1: backprop through the whole thing manually,\n# one line at a time\n"
EX1_ANSWER = """dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0/n
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
dbnvar = (-0.5*(bnvar + 1e-5)**-1.5) * dbnvar_inv
dbndiff2 = (1.0/(n-1))*torch.ones_like(bndiff2) * dbnvar
dbndiff += (2*bndiff) * dbndiff2
dhprebn = dbndiff.clone()
dbnmeani = (-dbndiff).sum(0)
dhprebn += 1.0/n * (torch.ones_like(hprebn) * dbnmeani)
dembcat = dhprebn @ W1.T
dW1 = embcat.T @ dhprebn
db1 = dhprebn.sum(0)
demb = dembcat.view(emb.shape)
dC = torch.zeros_like(C)
for k in range(Xb.shape[0]):
    for j in range(Xb.shape[1]):
        ix = Xb[k, j]
        dC[ix] += demb[k, j]
"""
EX1_CHECKS = "".join(f"cmp('{name}', d{name}, {name})\n" for name in CHECKS_1)

EX2_FORWARD = ("# Exercise 2: backprop through cross_entropy but all in one go\n"
               "loss_fast = F.cross_entropy(logits, Yb)\nprint(loss_fast.item(), 'diff:', (loss_fast - loss).item())")
EX2_ANSWER = "dlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n\n"
EX2_CHECK = "cmp('logits', dlogits, logits)\n"
EX3_FORWARD = ("# Exercise 3: backprop through batchnorm but all in one go\n"
               "hpreact_fast = bngain * (hprebn - hprebn.mean(0, keepdim=True)) / "
               "torch.sqrt(hprebn.var(0, keepdim=True, unbiased=True) + 1e-5) + bnbias\n"
               "print('max diff:', (hpreact_fast - hpreact).abs().max())")
EX3_ANSWER = ("dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - "
              "n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))\n")
EX3_CHECK = "cmp('hprebn', dhprebn, hprebn)\n"

EX4_BACKWARD = """        dlogits = F.softmax(logits, 1)
        dlogits[range(n), Yb] -= 1
        dlogits /= n
        dh = dlogits @ W2.T
        dW2 = h.T @ dlogits
        db2 = dlogits.sum(0)
        dhpreact = (1.0 - h**2) * dh
        dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
        dbnbias = dhpreact.sum(0, keepdim=True)
        dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))
        dembcat = dhprebn @ W1.T
        dW1 = embcat.T @ dhprebn
        db1 = dhprebn.sum(0)
        demb = dembcat.view(emb.shape)
        dC = torch.zeros_like(C)
        for k in range(Xb.shape[0]):
            for j in range(Xb.shape[1]):
                ix = Xb[k, j]
                dC[ix] += demb[k, j]
"""
EX4 = """# Exercise 4: putting it all together!
# Train the MLP neural net with your own backward pass

n_embd = 10
n_hidden = 200
g = torch.Generator().manual_seed(2147483647)
C = torch.randn((vocab_size, n_embd), generator=g)
W1 = torch.randn((n_embd * block_size, n_hidden), generator=g) * (5/3)/((n_embd * block_size)**0.5)
b1 = torch.randn(n_hidden, generator=g) * 0.1
W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1
b2 = torch.randn(vocab_size, generator=g) * 0.1
bngain = torch.randn((1, n_hidden)) * 0.1 + 1.0
bnbias = torch.randn((1, n_hidden)) * 0.1
parameters = [C, W1, b1, W2, b2, bngain, bnbias]
for p in parameters:
    p.requires_grad = True

max_steps = 200000
batch_size = 32
n = batch_size
lossi = []

with torch.no_grad():
    for i in range(max_steps):
        ix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g)
        Xb, Yb = Xtr[ix], Ytr[ix]
        emb = C[Xb]
        embcat = emb.view(emb.shape[0], -1)
        hprebn = embcat @ W1 + b1
        bnmean = hprebn.mean(0, keepdim=True)
        bnvar = hprebn.var(0, keepdim=True, unbiased=True)
        bnvar_inv = (bnvar + 1e-5)**-0.5
        bnraw = (hprebn - bnmean) * bnvar_inv
        hpreact = bngain * bnraw + bnbias
        h = torch.tanh(hpreact)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, Yb)
        # manual backprop! #swole_doge_meme
{backward}        grads = [dC, dW1, db1, dW2, db2, dbngain, dbnbias]
        lr = 0.1 if i < 100000 else 0.01
        for p, grad in zip(parameters, grads):
            p.data += -lr * grad
        if i % 10000 == 0:
            print(f'{{i:7d}}/{{max_steps:7d}}: {{loss.item():.4f}}')
        lossi.append(loss.log10().item())
"""
AFTER = [
    "with torch.no_grad():\n    emb = C[Xtr]\n    embcat = emb.view(emb.shape[0], -1)\n"
    "    hpreact = embcat @ W1 + b1\n    bnmean = hpreact.mean(0, keepdim=True)\n"
    "    bnvar = hpreact.var(0, keepdim=True, unbiased=True)",
    "@torch.no_grad()\ndef split_loss(split):\n    x, y = {'train': (Xtr, Ytr), 'val': (Xdev, Ydev)}[split]\n"
    "    emb = C[x]\n    embcat = emb.view(emb.shape[0], -1)\n    hpreact = embcat @ W1 + b1\n"
    "    hpreact = bngain * (hpreact - bnmean) * (bnvar + 1e-5)**-0.5 + bnbias\n"
    "    h = torch.tanh(hpreact)\n    logits = h @ W2 + b2\n    loss = F.cross_entropy(logits, y)\n"
    "    print(split, loss.item())\n\nsplit_loss('train')\nsplit_loss('val')",
    "g = torch.Generator().manual_seed(2147483647 + 10)\nfor _ in range(20):\n    out = []\n"
    "    context = [0] * block_size\n    while True:\n        emb = C[torch.tensor([context])]\n"
    "        embcat = emb.view(emb.shape[0], -1)\n        hpreact = embcat @ W1 + b1\n"
    "        hpreact = bngain * (hpreact - bnmean) * (bnvar + 1e-5)**-0.5 + bnbias\n"
    "        h = torch.tanh(hpreact)\n        logits = h @ W2 + b2\n        probs = F.softmax(logits, dim=1)\n"
    "        ix = torch.multinomial(probs, num_samples=1, generator=g).item()\n"
    "        context = context[1:] + [ix]\n        out.append(ix)\n        if ix == 0:\n            break\n"
    "    print(''.join(itos[i] for i in out))",
]


def lecture_cells(ex1=EX1_ANSWER, ex2=EX2_ANSWER, ex3=EX3_ANSWER, ex4=EX4_BACKWARD):
    """The notebook's cells as (kind, source); an answer None leaves its exercise blank, as the
    exercise notebook hands it out."""
    blank1 = "# -----------------\n# YOUR CODE HERE :)\n# -----------------\n\n"
    cells = [("markdown", "## makemore: becoming a backprop ninja")] + [("code", c) for c in SETUP]
    cells.append(("code", EX1_HEAD + (ex1 + EX1_CHECKS if ex1 is not None else
                                      blank1 + "".join("# " + c for c in EX1_CHECKS.splitlines(True)))))
    cells.append(("code", EX2_FORWARD))
    cells.append(("code", "# backward pass\n\n" + (ex2 + EX2_CHECK if ex2 is not None else
                                                 "dlogits = None # TODO\n# " + EX2_CHECK)))
    cells.append(("code", EX3_FORWARD))
    cells.append(("code", "# backward pass\n\n" + (ex3 + EX3_CHECK if ex3 is not None else
                                                 "dhprebn = None # TODO\n" + EX3_CHECK)))
    backward = ex4 if ex4 is not None else (
        "        dC, dW1, db1, dW2, db2, dbngain, dbnbias = None, None, None, None, None, None, None\n")
    cells.append(("code", EX4.format(backward=backward)))
    cells += [("code", c) for c in AFTER]
    return cells


def write_notebook(path, cells, colab=False):
    """An .ipynb as Jupyter (nbformat 4.5, sources as lists of lines) or Colab (4.0, one string)
    saves it, with some outputs."""
    out = []
    for i, (kind, source) in enumerate(cells):
        lines = source.splitlines(True)
        cell = {"cell_type": kind, "metadata": {}, "source": source if colab else lines}
        if kind == "code":
            cell.update(execution_count=i, outputs=[{"output_type": "stream", "name": "stdout",
                                                      "text": ["some output\n"]}])
        out.append(cell)
    nb = {"cells": out, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
          "nbformat_minor": 0 if colab else 5}
    Path(path).write_text(json.dumps(nb, indent=1))
    return Path(path)


def write_script(path, cells, style="percent"):
    """The cells as a .py: `# %%` cells (jupytext, VS Code), `# In[ ]:` (nbconvert), or pasted one
    after another (plain); markdown cells become comments."""
    chunks = []
    for kind, source in cells:
        if kind == "markdown":
            text = "".join("# " + line for line in source.splitlines(True))
            chunks.append(("# %% [markdown]\n" if style == "percent" else "") + text + "\n")
        else:
            head = {"percent": "# %%\n", "nbconvert": "# In[ ]:\n\n\n", "plain": ""}[style]
            chunks.append(head + source + "\n")
    Path(path).write_text("\n".join(chunks))
    return Path(path)
