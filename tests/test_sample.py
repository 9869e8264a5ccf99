"""The sampler draws from the model's distribution: the counts of the characters drawn first and
second (after the prefix) against the model's softmax at that temperature, over its top k when
given, for a lecture model (context windows) and makemore's (whole sequences). A wrong
inverse-CDF draw, an ignored temperature or top-k, or a shifted context fails it (the mutants
below)."""
import numpy as np
import pytest

from numpy_ninja import models, sample
from numpy_ninja.data import Vocab
from test_mutations import mutant

VOCAB = Vocab("abcde")
BLOCK = 2   # the lecture model's context
LENGTH = 6  # the sequence models' block size: names of up to 5 characters
N = 20_000
Z = 5  # a count further than 5 standard deviations from its mean: p < 6e-7 per count


def model(kind):
    """A small network whose next-character distributions differ from context to context."""
    V, f64 = len(VOCAB), np.float64
    m = {"mlp": lambda: models.mlp(V, block_size=BLOCK, n_embd=3, n_hidden=8, seed=3, dtype=f64),
         "transformer": lambda: models.Transformer(V, LENGTH, n_layer=1, n_head=2, n_embd=8, seed=3, dtype=f64),
         "gru": lambda: models.RNN(V, LENGTH, n_embd=4, n_embd2=6, cell_type="gru", seed=3, dtype=f64),
         }[kind]()
    return m.eval()


def probabilities(net, kind, context, temperature, top_k):
    """The model's next-character distribution after `context` (ids after the start)."""
    if kind == "mlp":
        logits = net(np.array([([0] * BLOCK + context)[-BLOCK:]]))[0]
    else:
        logits = net(np.array([[0] + context]))[0, -1]
    z = (logits - logits.max()) / temperature
    if top_k is not None:
        z[z < np.sort(z)[-top_k]] = -np.inf
    return np.exp(z) / np.exp(z).sum()


def worst_z(names, net, kind, prefix, temperature, top_k=None):
    """The largest |count - n p| / sqrt(n p (1 - p)) over the characters drawn first after the
    prefix, and second given each first one seen at least 1,000 times (a count is Binomial(n, p);
    the boundary '.' counts a name that ends there). A character the model may not draw (p = 0)
    must not be drawn at all."""
    worst = 0.0
    context = VOCAB.encode(prefix)
    groups = [(context, [name[len(prefix):] for name in names])]
    for c in VOCAB.chars:
        followers = [rest[1:] for rest in groups[0][1] if rest[:1] == c]
        if len(followers) >= 1000:
            groups.append((context + [VOCAB.stoi[c]], followers))
    for ctx, rests in groups:
        p = probabilities(net, kind, ctx, temperature, top_k)
        counts = np.bincount([VOCAB.stoi[r[0]] if r else 0 for r in rests], minlength=len(VOCAB))
        if (counts[p == 0] > 0).any():
            return np.inf
        n, q = len(rests), p[p > 0]
        z = np.abs(counts[p > 0] - n * q) / np.sqrt(n * q * (1 - q) + 1e-300)
        worst = max(worst, float(z.max()))
    return worst


def names_of(kind, net, **kw):
    return list(sample.sample_names(net, VOCAB, LENGTH if kind != "mlp" else BLOCK, N, seed=1,
                                    sequences=kind != "mlp", **kw))


@pytest.mark.parametrize("kind", ["mlp", "transformer", "gru"])
@pytest.mark.parametrize("temperature, prefix, top_k", [(1.0, "", None), (0.5, "", None), (2.0, "", None),
                                                        (1.0, "ab", None), (1.0, "", 2)])
def test_names_follow_the_models_probabilities(kind, temperature, prefix, top_k):
    net = model(kind)
    names = names_of(kind, net, prefix=prefix, temperature=temperature, top_k=top_k)
    assert len(names) == N and all(name.startswith(prefix) for name in names)
    if kind != "mlp":  # a sequence model's names fill at most its block size, less the start
        assert max(map(len, names)) == LENGTH - 1
    assert worst_z(names, net, kind, prefix, temperature, top_k) <= Z


@pytest.mark.parametrize("kind, where, old, new", [
    ("mlp", "_draw", "/ temperature)", ")"),                                      # temperature ignored
    ("mlp", "_draw", "(cdf < u).sum(1)", "(cdf <= u).sum(1) + 1"),                # the next index drawn
    ("mlp", "_draw", "logits < kth", "logits < kth - 1"),                          # top-k too wide
    ("mlp", "_sample_windows", "seq[alive, pos - block_size:pos]",
     "seq[alive, pos - block_size:pos][:, ::-1]"),                                # context reversed
    ("transformer", "_sample_sequences", "[:, -1]", "[:, 0]"),                    # the wrong position
    ("gru", "_sample_sequences", "seq[alive, :pos]", "seq[alive, 1:pos + 1]"),    # the start token lost
])
def test_a_wrong_sampler_is_caught(monkeypatch, kind, where, old, new):
    monkeypatch.setattr(sample, where, mutant(getattr(sample, where), old, new))
    net = model(kind)
    top_k = 2 if "kth" in old else None
    names = names_of(kind, net, temperature=0.5, top_k=top_k)
    assert worst_z(names, net, kind, "", 0.5, top_k) > Z
