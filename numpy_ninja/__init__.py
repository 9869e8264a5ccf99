"""numpy-ninja: the makemore models' forward and hand-written backward passes in NumPy, trained,
evaluated and sampled with NumPy alone. Imports NumPy (and threadpoolctl, tqdm), never torch and
never the oracle; the layout is docs/DESIGN.md.

The layers are numpy_ninja.nn's, importable from here: ``from numpy_ninja import Linear``; the
models are numpy_ninja.models'.
"""
from .nn import (GELU, MLP, BatchNorm1d, Block, BoWBlock, CausalBoW, CausalSelfAttention, Container,
                 CrossEntropyLoss, Embedding, Flatten, FlattenConsecutive, GRUCell, LayerNorm, Linear,
                 Module, Parameter, PositionEmbedding, Recurrent, RNNCell, Sequential, Tanh)

__version__ = "0.1.0"
__all__ = ["BatchNorm1d", "Block", "BoWBlock", "CausalBoW", "CausalSelfAttention", "Container",
           "CrossEntropyLoss", "Embedding", "Flatten", "FlattenConsecutive", "GELU", "GRUCell",
           "LayerNorm", "Linear", "MLP", "Module", "Parameter", "PositionEmbedding", "Recurrent",
           "RNNCell", "Sequential", "Tanh"]
