"""makemore's Bigram: a table of next-token logits by current token."""
import numpy as np

from ..nn import Parameter
from ..nn._util import identity
from .language import LanguageModel


class Bigram(LanguageModel):
    """``logits`` (V, V): row v holds the logits of the token after v. idx (B, T) -> (B, T, V).
    The block size only bounds T (a bigram reads one token)."""

    param_names = ("logits",)

    def __init__(self, vocab_size, block_size, *, seed=0, dtype=np.float32):
        self.vocab_size, self.block_size = vocab_size, block_size
        self.logits = Parameter(np.zeros((vocab_size, vocab_size), dtype))
        self.init_parameters(seed)

    @staticmethod
    def state_shapes(vocab_size, block_size):
        return {"logits": (vocab_size, vocab_size)}

    def forward(self, idx):
        self._check_input(idx)
        self.cache = idx
        return self.logits.data.take(idx, axis=0)                       # (B, T, V)

    def backward(self, dlogits):
        idx = self.saved().reshape(-1)
        V = self.vocab_size
        # out[b, t] = logits[idx[b, t]]: row v collects dlogits at every position holding v,
        # onehot(idx)^T dlogits
        onehot = identity(V, dlogits.dtype).take(idx, axis=0)           # (B*T, V)
        np.dot(onehot.T, dlogits.reshape(-1, V), out=self.logits.grad)
        return None

    def terms(self, dout_terms):
        idx = self.saved().reshape(-1)
        d = np.zeros(self.logits.data.shape)
        np.add.at(d, idx, dout_terms.reshape(len(idx), -1))
        return {"logits": d}  # the logits are looked up, not summed: no "out"
