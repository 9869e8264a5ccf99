"""Sampling names from a trained model."""
import numpy as np

CHUNK = 4096  # names drawn together: enough rows per forward to amortise NumPy's per-call cost


def sample_names(model, vocab, block_size, n, seed, prefix="", temperature=1.0, max_len=64, chunk=None):
    """Yield n names, each starting with prefix, drawn from the model in eval mode, `chunk`
    (default CHUNK) names at a time, so memory does not grow with n. A name ends when the
    boundary token is drawn or after max_len characters."""
    chunk = chunk or CHUNK
    rng = np.random.default_rng(seed)
    model.eval()
    start = vocab.encode(prefix)
    for first in range(0, n, chunk):
        yield from _sample_chunk(model, vocab, block_size, min(chunk, n - first), rng, start,
                                 temperature, max_len)


def _sample_chunk(model, vocab, block_size, n, rng, start, temperature, max_len):
    """n names. seq holds each name's padded context, its prefix and the characters drawn, side
    by side; the model reads the block_size positions before the one it draws."""
    first = block_size + len(start)  # the position of the first character drawn
    seq = np.zeros((n, max(first, block_size + max_len)), np.int64)
    seq[:, block_size:first] = start
    alive = np.arange(n)  # the names not ended yet
    for pos in range(first, seq.shape[1]):
        if not alive.size:
            break
        logits = model(seq[alive, pos - block_size:pos]).astype(np.float64)
        # softmax(logits / T), max-subtracted before dividing: as T -> 0 the others go to
        # -inf (exp 0) and the argmax stays 0 (exp 1), where logits / T alone overflows to NaN
        with np.errstate(over="ignore"):
            probs = np.exp((logits - logits.max(1, keepdims=True)) / temperature)
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(len(alive))[:, None] * cdf[:, -1:]
        ix = np.minimum((cdf < u).sum(1), cdf.shape[1] - 1)  # inverse-CDF draw per row
        seq[alive, pos] = ix
        alive = alive[ix != 0]
    drawn = seq[:, first:]
    ends = np.where((drawn == 0).any(1), (drawn == 0).argmax(1), drawn.shape[1])
    prefix = vocab.decode(start)
    return [prefix + vocab.decode(row[:end]) for row, end in zip(drawn.tolist(), ends.tolist())]
