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
    ctx = np.zeros((n, block_size + len(start)), np.int64)
    ctx[:, block_size:] = start
    out = [list(start) for _ in range(n)]
    alive = np.arange(n)
    while alive.size and len(out[alive[0]]) < max_len:
        logits = model(ctx[alive, -block_size:]).astype(np.float64)
        # softmax(logits / T), max-subtracted before dividing: as T -> 0 the others go to
        # -inf (exp 0) and the argmax stays 0 (exp 1), where logits / T alone overflows to NaN
        with np.errstate(over="ignore"):
            probs = np.exp((logits - logits.max(1, keepdims=True)) / temperature)
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(len(alive))[:, None] * cdf[:, -1:]
        ix = np.minimum((cdf < u).sum(1), cdf.shape[1] - 1)  # inverse-CDF draw per row
        for row, i in zip(alive, ix):
            if i:
                out[row].append(int(i))
        ctx = np.concatenate([ctx, np.zeros((n, 1), np.int64)], axis=1)
        ctx[alive, -1] = ix
        alive = alive[ix != 0]
    return [vocab.decode(ids) for ids in out]
