"""numpy-ninja: the makemore MLP's forward and hand-written backward pass in NumPy."""
from .layers import (BatchNorm1d, CrossEntropyLoss, Embedding, Flatten, FlattenConsecutive,
                     LayerNorm, Linear, Module, Parameter, Sequential, Tanh)

__version__ = "0.1.0"
__all__ = ["BatchNorm1d", "CrossEntropyLoss", "Embedding", "Flatten", "FlattenConsecutive",
           "LayerNorm", "Linear", "Module", "Parameter", "Sequential", "Tanh"]
