"""Sampling names from a trained model."""
import numpy as np


def sample_names(model, vocab, block_size, n, seed, prefix="", temperature=1.0, max_len=64):
    """n names, each starting with prefix, drawn in parallel from the model in eval mode.

    A name ends when the boundary token is drawn or after max_len characters.
    """
    rng = np.random.default_rng(seed)
    model.eval()
    start = vocab.encode(prefix)
    ctx = np.zeros((n, block_size + len(start)), np.int64)
    ctx[:, block_size:] = start
    out = [list(start) for _ in range(n)]
    alive = np.arange(n)
    while alive.size and len(out[alive[0]]) < max_len:
        logits = model(ctx[alive, -block_size:]).astype(np.float64) / temperature
        probs = np.exp(logits - logits.max(1, keepdims=True))
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
