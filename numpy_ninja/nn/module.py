"""Parameter and Module: what every layer is built on.

The layer protocol (docs/layer-protocol.md), what a layer provides to live in a ``Sequential``, to
be trained, and to be checked by ``oracle.check_layer`` / ``numpy-ninja check-layer``:
- ``forward(x)`` (also ``layer(x)``) returns the output and keeps what ``backward`` needs (by
  convention in ``self.cache``, read back with ``self.saved()``); ``backward(dout)`` returns dL/dx
  (None for integer input) and writes the gradients of the layer's own parameters into their
  ``.grad`` arrays, in place (overwriting, not accumulating: one backward per forward).
- ``named_parameters()`` yields (name, Parameter) with ``.data`` and ``.grad`` of the same shape;
  ``named_buffers()`` yields (name, array) of the state that is not trained (running statistics);
  ``train()`` / ``eval()`` switch the mode, ``training`` tells it. A subclass of ``Module`` lists
  its attributes in ``param_names`` and ``buffer_names`` and gets these for free.
- Optional, for the checks: ``terms(dout_terms)``, the magnitudes of the terms each result is
  summed from, and ``check_domain(x, rtol)``, why an input cannot be checked (None when it can).
"""
import numpy as np


class Parameter:
    """A trainable array and its gradient."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of a layer: parameter and buffer bookkeeping by name, the train/eval switch,
    ``layer(x)``, and ``saved()``. A subclass writes ``forward`` and ``backward`` and names its
    Parameter attributes in ``param_names`` and its buffer attributes in ``buffer_names``."""

    param_names = ()   # attributes holding a Parameter (or None: the parameter is left out)
    buffer_names = ()  # attributes holding an array that is state but not trained
    training = True
    cache = None  # what forward saved for backward

    def __call__(self, *args):
        return self.forward(*args)

    def saved(self):
        """What the last forward kept for backward (``self.cache``); an error before any forward."""
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self.cache

    def named_parameters(self, prefix=""):
        for name in self.param_names:
            p = getattr(self, name)
            if p is not None:
                yield prefix + name, p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for name in self.buffer_names:
            yield prefix + name, getattr(self, name)

    def state_dict(self):
        """Parameters and buffers by torch ``state_dict`` name (arrays are not copied)."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays in by name; names, shapes and dtypes must match exactly."""
        own = self.state_dict()
        if set(own) != set(state):
            missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise ValueError(f"state mismatch: missing {missing}, unexpected {extra}")
        for name, target in own.items():
            src = np.asarray(state[name])
            if src.shape != target.shape or src.dtype != target.dtype:
                raise ValueError(
                    f"{name}: expected {target.shape} {target.dtype}, got {src.shape} {src.dtype}")
            target[...] = src

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def terms(self, dout_terms):
        """The magnitudes of the terms the results of the last forward and backward are summed
        from, as float64 arrays shaped like the results: "out" (the output), "dx" (the input
        gradient, given dout_terms >= 0 bounding the terms of dout, shaped like the output), and
        one entry per parameter (its gradient) and per buffer (its value). A result that is a sum
        of terms carries rounding of their size, not of its own, so the checks measure its error
        against them (docs/tolerances.md). A missing key means the result is not a sum (a
        reshape, an elementwise function): it is measured against its own magnitude. None (the
        default): the layer does not say, and every result is measured against itself."""
        return None

    def check_domain(self, x, rtol):
        """Why this layer's results on input x cannot be checked to relative tolerance rtol
        (one line, e.g. a batch too small for a batch statistic, a spread the dtype cannot
        resolve), or None when they can. The checks skip such inputs; on any other input the
        layer must compute, so raising there is a failure."""
        return None
