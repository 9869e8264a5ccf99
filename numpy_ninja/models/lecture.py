"""The networks of the lectures, built from the layer stack: the exercise-4 MLP and part 5's WaveNet."""
import numpy as np

from ..config import DEFAULTS, MODEL_DEFAULTS
from ..nn import BatchNorm1d, Embedding, Flatten, FlattenConsecutive, Linear, Sequential, Tanh

MLP, WAVENET = MODEL_DEFAULTS["mlp"], MODEL_DEFAULTS["wavenet"]


def mlp(vocab_size, block_size=MLP["block_size"], n_embd=MLP["n_embd"], n_hidden=MLP["n_hidden"],
        seed=DEFAULTS.seed, dtype=np.dtype(DEFAULTS.dtype)):
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


def wavenet(vocab_size, block_size=WAVENET["block_size"], n_embd=WAVENET["n_embd"],
            n_hidden=WAVENET["n_hidden"], seed=DEFAULTS.seed, dtype=np.dtype(DEFAULTS.dtype)):
    """The hierarchical network of makemore part 5: the context is fused two at a time through
    FlattenConsecutive(2) -> Linear(no bias) -> BatchNorm1d -> Tanh blocks, then a Linear to
    the vocabulary whose weight starts scaled by 0.1. block_size must be a power of two."""
    depth = block_size.bit_length() - 1
    if block_size < 2 or block_size != 2**depth:
        raise ValueError(f"wavenet needs a power-of-two context of at least 2, got {block_size}")
    rng = np.random.default_rng(seed)
    layers = [Embedding(vocab_size, n_embd, rng=rng, dtype=dtype)]
    width = n_embd
    for _ in range(depth):
        layers += [FlattenConsecutive(2), Linear(2 * width, n_hidden, bias=False, rng=rng, dtype=dtype),
                   BatchNorm1d(n_hidden, dtype=dtype), Tanh()]
        width = n_hidden
    layers.append(Linear(width, vocab_size, rng=rng, dtype=dtype))
    layers[-1].weight.data *= 0.1  # a less confident output layer at initialisation
    return Sequential(layers)


BUFFERS = ("running_mean", "running_var")  # BatchNorm1d's non-trainable state


def state_shapes(model, vocab_size, block_size, n_embd, n_hidden):
    """{state_dict name: shape} of the mlp or wavenet of these sizes, from the sizes alone."""
    V, E, H = vocab_size, n_embd, n_hidden
    bn = lambda i: {f"{i}.weight": (H,), f"{i}.bias": (H,), **{f"{i}.{b}": (H,) for b in BUFFERS}}  # noqa: E731
    if model == "mlp":
        return {"0.weight": (V, E), "2.weight": (block_size * E, H), "2.bias": (H,), **bn(3),
                "5.weight": (H, V), "5.bias": (V,)}
    shapes, width, depth = {"0.weight": (V, E)}, E, block_size.bit_length() - 1
    for k in range(depth):  # FlattenConsecutive, Linear (no bias), BatchNorm1d, Tanh
        shapes.update({f"{2 + 4 * k}.weight": (2 * width, H), **bn(3 + 4 * k)})
        width = H
    return {**shapes, f"{1 + 4 * depth}.weight": (width, V), f"{1 + 4 * depth}.bias": (V,)}
