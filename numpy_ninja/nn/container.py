"""Sequential: layers applied in order, their backward in reverse."""
from .module import Module


class Sequential(Module):
    """Layers applied in order; backward runs their backward in reverse."""

    def __init__(self, layers):
        self.layers = list(layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)  # what layer(x) calls, one Python call fewer per layer
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def named_parameters(self, prefix=""):
        for i, layer in enumerate(self.layers):
            yield from layer.named_parameters(f"{prefix}{i}.")

    def named_buffers(self, prefix=""):
        for i, layer in enumerate(self.layers):
            yield from layer.named_buffers(f"{prefix}{i}.")

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def terms(self, dout_terms):
        """Every layer's terms, chained from the last layer's dout_terms back to the input, under
        the stack's names ("3.weight"); "out" is the last layer's. None if a layer does not say."""
        t = {}
        for i in reversed(range(len(self.layers))):
            own = self.layers[i].terms(dout_terms)
            if own is None:
                return None
            t.update({f"{i}.{k}": v for k, v in own.items() if k not in ("out", "dx")})
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
