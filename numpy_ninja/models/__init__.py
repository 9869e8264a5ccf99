"""The models numpy-ninja trains, by RunConfig.model name:

    lecture.py      mlp (the lecture's exercise-4 network), wavenet (makemore part 5)
    bigram.py       bigram       makemore.py's --type bigram
    bengio.py       bengio       makemore.py's --type mlp
    rnn.py          rnn, gru     makemore.py's --type rnn and gru
    transformer.py  bow, transformer
    language.py     what makemore's models share (initialisation, makemore's state_dict)

``build_model(config, vocab_size)`` makes the model a RunConfig describes; ``state_shapes`` and
``parameter_count`` say what it holds from the sizes alone, before anything is allocated.
It imports numpy_ninja.nn and numpy_ninja.config (NumPy only).
"""
from functools import partial

import numpy as np

from ..config import SIZES
from . import lecture
from .bengio import Bengio
from .bigram import Bigram
from .language import LanguageModel
from .lecture import mlp, wavenet
from .rnn import RNN
from .transformer import BoW, Transformer

__all__ = ["BUFFERS", "Bengio", "Bigram", "BoW", "LanguageModel", "RNN", "Transformer",
           "build_model", "mlp", "parameter_count", "state_shapes", "wavenet"]

BUFFERS = lecture.BUFFERS  # the only state that is not trained: BatchNorm1d's running statistics
_MAKEMORE = {"bigram": Bigram, "bengio": Bengio, "rnn": partial(RNN, cell_type="rnn"),
             "gru": partial(RNN, cell_type="gru"), "bow": BoW, "transformer": Transformer}


def _sizes(config):
    return {k: getattr(config, k) for k in SIZES[config.model]}


def build_model(config, vocab_size):
    """The model a RunConfig describes (its model, sizes, seed and dtype); a sequence model's
    config must have its block size."""
    kwargs = dict(_sizes(config), seed=config.seed, dtype=np.dtype(config.dtype))
    if config.model in _MAKEMORE:
        return _MAKEMORE[config.model](vocab_size, **kwargs)
    return {"mlp": mlp, "wavenet": wavenet}[config.model](vocab_size, **kwargs)


def state_shapes(config, vocab_size):
    """{state_dict name: shape} of the model build_model would make, from the sizes alone: a
    checkpoint's arrays are checked against it before anything is built."""
    if config.model in ("rnn", "gru"):
        return RNN.state_shapes(vocab_size, **_sizes(config), cell_type=config.model)
    if config.model in _MAKEMORE:
        return _MAKEMORE[config.model].state_shapes(vocab_size, **_sizes(config))
    return lecture.state_shapes(config.model, vocab_size, **_sizes(config))


def parameter_count(config, vocab_size):
    """How many trainable numbers the model has (BatchNorm's running statistics not counted)."""
    return sum(int(np.prod(shape)) for name, shape in state_shapes(config, vocab_size).items()
               if name.rsplit(".", 1)[-1] not in BUFFERS)
