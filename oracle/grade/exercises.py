"""The lecture's four exercises as check grades them: each one's graph (the forward steps its
answers backpropagate through), the tensors it reports, and the function a solution defines for
it, with the arguments that function receives."""
from dataclasses import dataclass

from numpy_ninja.atomic import GRAD_NAMES, PARAM_NAMES
from oracle.reference.graph import STEPS, segment

CROSS_ENTROPY = segment("logit_maxes", "loss", "loss = F.cross_entropy(logits, Yb)")
BATCHNORM = segment("bnmeani", "hpreact", "bnmean = hprebn.mean(0, keepdim=True)\n"
                    "bnvar = hprebn.var(0, keepdim=True, unbiased=True)\n"
                    "bnraw = (hprebn - bnmean) * (bnvar + 1e-5)**-0.5\n"
                    "hpreact = bngain * bnraw + bnbias")


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    graph: the steps its answers backpropagate through; rows: the tensors it reports;
    parameters: what its function receives, by name: "t" (a namespace of Xb, Yb, n, the
    parameters and every forward tensor), "d<tensor>" (that tensor's true gradient, handed in),
    a forward tensor, "Yb" or "n"; returns: the row its function returns alone, or None when it
    returns a dict of gradients by name (and then its own local gradients of the graph's other
    tensors, named as in the lecture, are read too)."""
    number: int
    graph: tuple
    rows: tuple
    parameters: tuple
    returns: str = None

    @property
    def function(self):
        return f"exercise{self.number}"

    @property
    def given(self):
        """The tensors whose true gradients the function receives."""
        return tuple(p[1:] for p in self.parameters if p.startswith("d"))

    @property
    def traced(self):
        """The graph's tensors besides the rows whose gradients are read from the function's
        local variables (to trace a wrong row to where its error starts)."""
        return tensors(self.graph) - set(self.rows) - set(self.given) if self.returns is None else set()


EXERCISES = {
    1: Exercise(1, STEPS, GRAD_NAMES, ("t",)),
    2: Exercise(2, (CROSS_ENTROPY,), ("logits",), ("logits", "Yb"), returns="logits"),
    3: Exercise(3, (BATCHNORM,), ("hprebn",), ("dhpreact", "bngain", "bnvar_inv", "bnraw", "n"),
                returns="hprebn"),
    4: Exercise(4, STEPS[:3] + (BATCHNORM,) + STEPS[10:12] + (CROSS_ENTROPY,),
                tuple(k for k in GRAD_NAMES if k in PARAM_NAMES), ("t",)),
}


def tensors(graph):
    """The tensors of a graph that have a gradient."""
    return {x for s in graph for x in s.inputs} | {s.out for s in graph if s.out != "loss"}


def consumers_of(graph):
    """{tensor: the steps of the graph that read it}."""
    out = {}
    for step in graph:
        for x in step.inputs:
            out.setdefault(x, []).append(step)
    return out
