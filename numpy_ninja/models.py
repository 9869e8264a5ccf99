"""The networks of the lectures, built from the layer stack."""
import numpy as np

from .layers import BatchNorm1d, Embedding, Flatten, Linear, Sequential, Tanh


def mlp(vocab_size, block_size=3, n_embd=10, n_hidden=200, seed=42, dtype=np.float32):
    """The exercise-4 network: Embedding -> Flatten -> Linear -> BatchNorm1d(n-1) -> Tanh -> Linear.

    The lecture's initialisation, drawn in float64 from one seeded Generator in the lecture's
    order (C, W1, b1, W2, b2, bngain, bnbias) and then cast, so float32 and float64 models of the
    same seed start from the same numbers: C ~ N(0, 1); W1 ~ N(0, 1) * (5/3)/sqrt(fan_in);
    b1, W2, b2 ~ N(0, 1) * 0.1; BatchNorm gain 1 + 0.1 N(0, 1), bias 0.1 N(0, 1).
    """
    rng = np.random.default_rng(seed)
    fan_in = n_embd * block_size
    init = {
        "0.weight": rng.standard_normal((vocab_size, n_embd)),
        "2.weight": rng.standard_normal((fan_in, n_hidden)) * (5 / 3) / fan_in**0.5,
        "2.bias": rng.standard_normal(n_hidden) * 0.1,
        "5.weight": rng.standard_normal((n_hidden, vocab_size)) * 0.1,
        "5.bias": rng.standard_normal(vocab_size) * 0.1,
        "3.weight": rng.standard_normal(n_hidden) * 0.1 + 1.0,
        "3.bias": rng.standard_normal(n_hidden) * 0.1,
    }
    model = Sequential([
        Embedding(vocab_size, n_embd, rng=rng, dtype=dtype),
        Flatten(),
        Linear(fan_in, n_hidden, rng=rng, dtype=dtype),
        BatchNorm1d(n_hidden, dtype=dtype),
        Tanh(),
        Linear(n_hidden, vocab_size, rng=rng, dtype=dtype),
    ])
    for name, p in model.named_parameters():
        p.data[...] = init[name]
    return model
