"""numpy_ninja.nn: the layers, each one's forward and hand-written backward side by side, one
family per module; imports NumPy only.

    module.py      Parameter, Module (the layer protocol: docs/layer-protocol.md)
    linear.py      Linear, Embedding
    reshape.py     Flatten, FlattenConsecutive
    norm.py        BatchNorm1d, LayerNorm
    activation.py  Tanh
    container.py   Sequential
    loss.py        CrossEntropyLoss
"""
from .activation import Tanh
from .container import Sequential
from .linear import Embedding, Linear
from .loss import CrossEntropyLoss
from .module import Module, Parameter
from .norm import BatchNorm1d, LayerNorm
from .reshape import Flatten, FlattenConsecutive

__all__ = ["BatchNorm1d", "CrossEntropyLoss", "Embedding", "Flatten", "FlattenConsecutive",
           "LayerNorm", "Linear", "Module", "Parameter", "Sequential", "Tanh"]
