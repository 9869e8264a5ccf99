"""numpy_ninja.nn: the layers, each one's forward and hand-written backward side by side, one
family per module; imports NumPy only.

    module.py       Parameter, Module (the layer protocol: docs/layer-protocol.md)
    linear.py       Linear, Embedding, PositionEmbedding
    reshape.py      Flatten, FlattenConsecutive
    norm.py         BatchNorm1d, LayerNorm
    activation.py   Tanh, GELU
    attention.py    CausalSelfAttention, CausalBoW
    recurrent.py    RNNCell, GRUCell, Recurrent (backpropagation through time)
    transformer.py  MLP, Block, BoWBlock (makemore's residual blocks)
    container.py    Container, Sequential
    loss.py         CrossEntropyLoss
"""
from .activation import GELU, Tanh
from .attention import CausalBoW, CausalSelfAttention
from .container import Container, Sequential
from .linear import Embedding, Linear, PositionEmbedding
from .loss import CrossEntropyLoss
from .module import Module, Parameter
from .norm import BatchNorm1d, LayerNorm
from .recurrent import GRUCell, Recurrent, RNNCell
from .reshape import Flatten, FlattenConsecutive
from .transformer import MLP, Block, BoWBlock

__all__ = ["BatchNorm1d", "Block", "BoWBlock", "CausalBoW", "CausalSelfAttention", "Container",
           "CrossEntropyLoss", "Embedding", "Flatten", "FlattenConsecutive", "GELU", "GRUCell",
           "LayerNorm", "Linear", "MLP", "Module", "Parameter", "PositionEmbedding", "Recurrent",
           "RNNCell", "Sequential", "Tanh"]
