"""numpy-ninja: the makemore models' forward and hand-written backward passes in NumPy, trained,
evaluated and sampled with NumPy alone. Imports NumPy (and threadpoolctl, tqdm), never torch and
never the oracle; the layout is docs/DESIGN.md.

The layers are numpy_ninja.nn's, importable from here: ``from numpy_ninja import Linear``.
"""
from .nn import (BatchNorm1d, CrossEntropyLoss, Embedding, Flatten, FlattenConsecutive, LayerNorm,
                 Linear, Module, Parameter, Sequential, Tanh)

__version__ = "0.1.0"
__all__ = ["BatchNorm1d", "CrossEntropyLoss", "Embedding", "Flatten", "FlattenConsecutive",
           "LayerNorm", "Linear", "Module", "Parameter", "Sequential", "Tanh"]
