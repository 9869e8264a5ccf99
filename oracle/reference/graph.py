"""The lecture's broken-up graph in PyTorch: reference gradients for numpy_ninja.atomic, and the
graph itself, one Step per forward line, for backpropagating through single steps.

    STEPS                                 the 20 lines of the forward pass, in order
    segment(first, last, summary)         consecutive steps taken as one (a one-step answer)
    autograd_forward(params, Xb, Yb)      -> (loss, t, grads) as NumPy arrays
    autograd_backprop(params, Xb, Yb)     -> (loss, grads)
    vjp(steps, values, src, dst, dout)    a vector-Jacobian product through some steps
"""
import ast
from dataclasses import dataclass

import numpy as np
import torch

from numpy_ninja.atomic import GRAD_NAMES, PARAM_NAMES

# The forward pass as the lecture writes it (torch); each line runs exactly as written, with
# the parameters, Xb (N, block), Yb (N,) and n = N in scope. numpy_ninja.atomic.forward is the
# same graph in NumPy.
FORWARD = """
emb = C[Xb]
embcat = emb.view(emb.shape[0], -1)
hprebn = embcat @ W1 + b1
bnmeani = 1/n*hprebn.sum(0, keepdim=True)
bndiff = hprebn - bnmeani
bndiff2 = bndiff**2
bnvar = 1/(n-1)*(bndiff2).sum(0, keepdim=True)
bnvar_inv = (bnvar + 1e-5)**-0.5
bnraw = bndiff * bnvar_inv
hpreact = bngain * bnraw + bnbias
h = torch.tanh(hpreact)
logits = h @ W2 + b2
logit_maxes = logits.max(1, keepdim=True).values
norm_logits = logits - logit_maxes
counts = norm_logits.exp()
counts_sum = counts.sum(1, keepdims=True)
counts_sum_inv = counts_sum**-1
probs = counts * counts_sum_inv
logprobs = probs.log()
loss = -logprobs[range(n), Yb].mean()
"""


@dataclass(frozen=True)
class Step:
    """One forward line: out = an expression of `inputs` (the tensors it reads that have a
    gradient, in order of appearance) and of Xb, Yb, n."""
    out: str
    inputs: tuple
    line: str
    code: object

    def __call__(self, values):
        """The line's output; values maps names to torch tensors (and n to an int)."""
        return eval(self.code, {"torch": torch}, values)

    @property
    def steps(self):
        return (self,)

    @property
    def lookup(self):
        """(tensor, index) when the line is `out = tensor[index]`, a lookup of rows; else None."""
        expr = ast.parse(self.line.split("=", 1)[1].strip(), mode="eval").body
        if isinstance(expr, ast.Subscript) and all(isinstance(e, ast.Name) for e in (expr.value, expr.slice)):
            return expr.value.id, expr.slice.id
        return None


@dataclass(frozen=True)
class Segment:
    """Consecutive steps taken as one (the one-step backward of exercises 2-4); summary: the
    segment in one line."""
    steps: tuple
    summary: str = ""

    @property
    def out(self):
        return self.steps[-1].out

    @property
    def inputs(self):
        made = {s.out for s in self.steps}
        return tuple(dict.fromkeys(x for s in self.steps for x in s.inputs if x not in made))

    @property
    def line(self):
        return self.summary or "\n".join(s.line for s in self.steps)

    lookup = None

    def __call__(self, values):
        values = dict(values)
        for s in self.steps:
            values[s.out] = s(values)
        return values[self.out]


def parse(text):
    """Steps from 'out = expression' lines; an input is a name that a parameter or an earlier
    line defines."""
    steps, known = [], set(PARAM_NAMES)
    for line in text.strip().splitlines():
        out, expr = (part.strip() for part in line.split("=", 1))
        tree = ast.parse(expr, mode="eval")
        names = sorted((node.col_offset, node.id) for node in ast.walk(tree) if isinstance(node, ast.Name))
        inputs = tuple(dict.fromkeys(name for _, name in names if name in known))
        steps.append(Step(out, inputs, line, compile(tree, line, "eval")))
        known.add(out)
    return tuple(steps)


STEPS = parse(FORWARD)


def segment(first, last, summary=""):
    """The steps from the one making `first` to the one making `last`, as a Segment."""
    outs = [s.out for s in STEPS]
    return Segment(STEPS[outs.index(first):outs.index(last) + 1], summary)


def torch_values(params, Xb, Yb, requires_grad=False):
    """The names a forward line reads, as torch tensors (the parameters copied)."""
    values = {k: torch.tensor(np.asarray(params[k]), requires_grad=requires_grad) for k in PARAM_NAMES}
    values.update(Xb=torch.as_tensor(np.asarray(Xb)), Yb=torch.as_tensor(np.asarray(Yb)), n=len(Xb))
    return values


def notebook_state(params, Xb, Yb):
    """The tensors the lecture's notebook holds once its forward cell has run: the parameters
    (leaves that require grad), Xb, Yb, n and every forward tensor, each with its .grad filled by
    loss.backward() (the forward's tensors retain theirs)."""
    v = torch_values(params, Xb, Yb, requires_grad=True)
    for step in STEPS:
        v[step.out] = step(v)
        v[step.out].retain_grad()
    v["loss"].backward()
    return v


def autograd_forward(params, Xb, Yb):
    """The forward lines in torch with retain_grad on every intermediate, and loss.backward().
    Returns (loss, t, grads) as NumPy arrays in the parameters' dtype: t maps the parameters and
    every forward tensor (emb ... logprobs) to its value, grads the 26 names of GRAD_NAMES to
    their gradients."""
    v = notebook_state(params, Xb, Yb)
    names = list(PARAM_NAMES) + [s.out for s in STEPS[:-1]]
    return (v["loss"].item(), {k: v[k].detach().numpy() for k in names},
            {k: v[k].grad.numpy() for k in GRAD_NAMES})


def autograd_backprop(params, Xb, Yb):
    """The same forward as numpy_ninja.atomic.forward, line by line, in torch. Returns (loss,
    grads): grads maps the 26 names of GRAD_NAMES to NumPy arrays in the parameters' dtype."""
    loss, _, grads = autograd_forward(params, Xb, Yb)
    return loss, grads


def vjp(steps, values, src, dst, dout):
    """dout (shaped like dst) times the Jacobian of dst with respect to src through `steps`:
    every path from src to dst, with everything src does not feed held at its value in `values`
    (torch tensors of the forward). A single step gives the gradient src receives from it."""
    v = dict(values)
    v[src] = leaf = values[src].detach().requires_grad_()
    live = {src}
    for s in steps:
        if live & set(s.inputs):
            v[s.out] = s(v)
            live.add(s.out)
    if dst not in live or not v[dst].requires_grad:
        return torch.zeros_like(leaf)
    (grad,) = torch.autograd.grad(v[dst], leaf, dout, allow_unused=True)
    return torch.zeros_like(leaf) if grad is None else grad
