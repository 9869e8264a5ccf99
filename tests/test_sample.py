"""The sampler draws from the model's distribution: the counts of the characters drawn first and
second (after the prefix) against the model's softmax at that temperature. A wrong inverse-CDF
draw, an ignored temperature or a shifted context fails it (the mutants below)."""
import numpy as np
import pytest

from numpy_ninja import models, sample
from numpy_ninja.data import Vocab
from test_mutations import mutant

VOCAB = Vocab("abcde")
BLOCK = 2
N = 20_000
Z = 5  # a count further than 5 standard deviations from its mean: p < 6e-7 per count


def model():
    """A small network whose next-character distributions differ from context to context."""
    m = models.mlp(len(VOCAB), block_size=BLOCK, n_embd=3, n_hidden=8, seed=3, dtype=np.float64)
    return m.eval()


def softmax(logits, temperature):
    z = (logits - logits.max()) / temperature
    return np.exp(z) / np.exp(z).sum()


def worst_z(names, net, prefix, temperature):
    """The largest |count - n p| / sqrt(n p (1 - p)) over the characters drawn first after the
    prefix, and second given each first one seen at least 1,000 times (a count is Binomial(n, p);
    the boundary '.' counts a name that ends there)."""
    worst = 0.0
    context = [0] * BLOCK + VOCAB.encode(prefix)
    groups = [(context, [name[len(prefix):] for name in names])]
    for c in VOCAB.chars:
        followers = [rest[1:] for rest in groups[0][1] if rest[:1] == c]
        if len(followers) >= 1000:
            groups.append((context + [VOCAB.stoi[c]], followers))
    for ctx, rests in groups:
        p = softmax(net(np.array([ctx[-BLOCK:]]))[0], temperature)
        counts = np.bincount([VOCAB.stoi[r[0]] if r else 0 for r in rests], minlength=len(VOCAB))
        n = len(rests)
        z = np.abs(counts - n * p) / np.sqrt(n * p * (1 - p))
        worst = max(worst, float(z.max()))
    return worst


@pytest.mark.parametrize("temperature, prefix", [(1.0, ""), (0.5, ""), (2.0, ""), (1.0, "ab")])
def test_names_follow_the_models_probabilities(temperature, prefix):
    net = model()
    names = list(sample.sample_names(net, VOCAB, BLOCK, N, seed=1, prefix=prefix,
                                     temperature=temperature))
    assert len(names) == N and all(name.startswith(prefix) for name in names)
    assert worst_z(names, net, prefix, temperature) <= Z


@pytest.mark.parametrize("old, new", [
    ("/ temperature)", ")"),                                             # temperature ignored
    ("(cdf < u).sum(1)", "(cdf <= u).sum(1) + 1"),                         # the next index drawn
    ("seq[alive, pos - block_size:pos]", "seq[alive, pos - block_size:pos][:, ::-1]"),  # context reversed
])
def test_a_wrong_sampler_is_caught(monkeypatch, old, new):
    monkeypatch.setattr(sample, "_sample_chunk", mutant(sample._sample_chunk, old, new))
    net = model()
    names = list(sample.sample_names(net, VOCAB, BLOCK, N, seed=1, temperature=0.5))
    assert worst_z(names, net, "", 0.5) > Z
