"""Sampling names from a trained model."""
import numpy as np

CHUNK = 4096  # names drawn together: enough rows per forward to amortise NumPy's per-call cost


def sample_names(model, vocab, block_size, n, seed, prefix="", temperature=1.0, top_k=None,
                 max_len=64, chunk=None, sequences=False):
    """Yield n names, each starting with prefix, drawn from the model in eval mode, `chunk`
    (default CHUNK) names at a time, so memory does not grow with n. top_k: draw only among the
    k most likely characters (None: all). A name ends when the boundary token is drawn, or after
    max_len characters (a lecture model) or when the sequence is full (a sequence model of
    makemore's: block_size - 1 characters, its longest word)."""
    chunk = chunk or CHUNK
    rng = np.random.default_rng(seed)
    model.eval()
    start = vocab.encode(prefix)
    draw = _sample_sequences if sequences else _sample_windows
    for first in range(0, n, chunk):
        rows = min(chunk, n - first)
        seq, first_drawn = draw(model, block_size, rows, rng, start, temperature, top_k, max_len)
        yield from _names(vocab, seq, first_drawn, prefix)


def _draw(logits, rng, temperature, top_k):
    """One token per row of logits (n, V): softmax(logits / T) over the top_k largest, drawn by
    inverse CDF."""
    logits = logits.astype(np.float64)
    if top_k is not None and top_k < logits.shape[1]:
        kth = np.partition(logits, -top_k, axis=1)[:, -top_k, None]
        logits = np.where(logits < kth, -np.inf, logits)
    # max-subtracted before dividing: as T -> 0 the others go to -inf (exp 0) and the argmax
    # stays 0 (exp 1), where logits / T alone overflows to NaN
    with np.errstate(over="ignore", invalid="ignore"):
        probs = np.exp((logits - logits.max(1, keepdims=True)) / temperature)
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(logits))[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(1), cdf.shape[1] - 1)


def _sample_windows(model, block_size, n, rng, start, temperature, top_k, max_len):
    """A lecture model's names: seq holds each name's padded context, its prefix and the
    characters drawn, side by side; the model reads the block_size positions before the one it
    draws."""
    first = block_size + len(start)  # the position of the first character drawn
    seq = np.zeros((n, max(first, block_size + max_len)), np.int64)
    seq[:, block_size:first] = start
    alive = np.arange(n)  # the names not ended yet
    for pos in range(first, seq.shape[1]):
        if not alive.size:
            break
        ix = _draw(model(seq[alive, pos - block_size:pos]), rng, temperature, top_k)
        seq[alive, pos] = ix
        alive = alive[ix != 0]
    return seq, first


def _sample_sequences(model, block_size, n, rng, start, temperature, top_k, max_len):
    """A makemore model's names, as makemore.py's generate: the sequence so far [0, prefix,
    drawn...] in, the logits of its last position out."""
    first = 1 + len(start)
    seq = np.zeros((n, max(block_size, first)), np.int64)
    seq[:, 1:first] = start
    alive = np.arange(n)
    for pos in range(first, block_size):
        if not alive.size:
            break
        ix = _draw(model(seq[alive, :pos])[:, -1], rng, temperature, top_k)
        seq[alive, pos] = ix
        alive = alive[ix != 0]
    return seq, first


def _names(vocab, seq, first, prefix):
    drawn = seq[:, first:]
    ends = np.where((drawn == 0).any(1), (drawn == 0).argmax(1), drawn.shape[1])
    return [prefix + vocab.decode(row[:end]) for row, end in zip(drawn.tolist(), ends.tolist())]
