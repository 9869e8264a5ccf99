"""Containers: modules made of named sub-modules. ``Sequential`` applies its layers in order;
``Container`` is the base of a module whose children are wired by its own forward (a residual
block, a language model), as makemore nests ``nn.ModuleDict`` and ``nn.ModuleList``.

A container's parameters and buffers are its own (``param_names``) followed by its children's
under dotted names (``attn.c_attn.weight``, ``transformer.h.0.ln_1.bias``): exactly the names
torch's ``state_dict`` gives the same tree. ``train()`` / ``eval()`` reach every child.

Constants: torch modules sometimes register a constant as a buffer (makemore's causal masks,
named ``bias``). numpy-ninja keeps them out of ``named_buffers`` (state that training changes,
saved in a checkpoint); a module with such a constant yields it from ``named_constants()``, so an
export to torch can produce it.
"""
from .module import Module


class Container(Module):
    """Base class of a module built from sub-modules: a subclass lists them in ``children()``
    and writes ``forward`` and ``backward`` (the data flow between them is its own), and, for the
    checks, ``terms``, chaining its children's (``prefixed`` renames theirs)."""

    def children(self):
        """(name, module) for each sub-module, in order; a name may be dotted ("mlp.c_fc")."""
        return ()

    def named_modules(self, prefix=""):
        """(name, module) for this module (named by the prefix) and every module below it."""
        yield prefix.rstrip("."), self
        for name, child in self.children():
            if isinstance(child, Container):
                yield from child.named_modules(f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", child

    def named_parameters(self, prefix=""):
        yield from super().named_parameters(prefix)
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def named_buffers(self, prefix=""):
        yield from super().named_buffers(prefix)
        for name, child in self.children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def named_constants(self, prefix=""):
        """(name, array) of the constants torch keeps as buffers: never saved, loaded or trained
        here; produced by an export to torch."""
        for name, child in self.children():
            constants = getattr(child, "named_constants", None)
            if constants is not None:
                yield from constants(f"{prefix}{name}.")

    def train(self, mode=True):
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self


def prefixed(terms, name):
    """A child's parameter and buffer terms under the parent's names ("out" and "dx" dropped)."""
    return {f"{name}.{k}": v for k, v in terms.items() if k not in ("out", "dx")}


class Sequential(Container):
    """Layers applied in order; backward runs their backward in reverse. Children are named by
    position ("0", "1", ...), as torch's."""

    def __init__(self, layers):
        self.layers = list(layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def children(self):
        return tuple((str(i), layer) for i, layer in enumerate(self.layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)  # what layer(x) calls, one Python call fewer per layer
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def terms(self, dout_terms):
        """Every layer's terms, chained from the last layer's dout_terms back to the input, under
        the stack's names ("3.weight"); "out" is the last layer's. None if a layer does not say."""
        t = {}
        for i in reversed(range(len(self.layers))):
            own = self.layers[i].terms(dout_terms)
            if own is None:
                return None
            t.update(prefixed(own, str(i)))
            if i == len(self.layers) - 1 and "out" in own:
                t["out"] = own["out"]
            dout_terms = own.get("dx")
            if dout_terms is None and i > 0:  # only the first layer may take index input
                return None
        if dout_terms is not None:
            t["dx"] = dout_terms
        return t

    def check_domain(self, x, rtol):
        """The first layer's domain: the inputs of later layers are only known after a forward."""
        return self.layers[0].check_domain(x, rtol) if self.layers else None
