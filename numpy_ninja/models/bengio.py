"""makemore's MLP (Bengio et al. 2003), named ``bengio`` here: the lecture's ``mlp`` is another
network. Position t reads the embeddings of tokens t, t-1, ..., t-block_size+1, concatenated in
that order; positions before the start of the sequence read the ``<BLANK>`` token, index
vocab_size (so ``wte.weight`` has vocab_size + 1 rows). Then ``mlp.0`` Linear(block_size * n_embd,
n_embd2), tanh, ``mlp.2`` Linear(n_embd2, vocab_size)."""
import numpy as np

from ..nn import Embedding, Linear, Sequential, Tanh
from ..nn.container import prefixed
from .language import LanguageModel


class Bengio(LanguageModel):
    """idx (B, T) -> logits (B, T, vocab_size), from the last block_size tokens of each position
    (module docstring). Parameters wte.weight (V + 1, n_embd), mlp.0.{weight, bias},
    mlp.2.{weight, bias}."""

    def __init__(self, vocab_size, block_size, n_embd=64, n_embd2=64, *, seed=0, dtype=np.float32):
        self.vocab_size, self.block_size = vocab_size, block_size
        self.wte = Embedding(vocab_size + 1, n_embd, dtype=dtype)        # row vocab_size: <BLANK>
        self.mlp = Sequential([Linear(block_size * n_embd, n_embd2, dtype=dtype), Tanh(),
                               Linear(n_embd2, vocab_size, dtype=dtype)])
        self.init_parameters(seed)

    @staticmethod
    def state_shapes(vocab_size, block_size, n_embd, n_embd2):
        return {"wte.weight": (vocab_size + 1, n_embd), "mlp.0.weight": (block_size * n_embd, n_embd2),
                "mlp.0.bias": (n_embd2,), "mlp.2.weight": (n_embd2, vocab_size), "mlp.2.bias": (vocab_size,)}

    def children(self):
        return (("wte", self.wte), ("mlp", self.mlp))

    def contexts(self, idx):
        """ctx (B, T, block_size): ctx[b, t, k] = idx[b, t - k], or <BLANK> where t - k < 0."""
        B, T = idx.shape
        k = self.block_size - 1
        padded = np.concatenate([np.full((B, k), self.vocab_size, idx.dtype), idx], 1)
        where = k + np.arange(T)[:, None] - np.arange(self.block_size)  # (T, block): t - k, shifted
        return padded[:, where]

    def forward(self, idx):
        self._check_input(idx)
        B, T = idx.shape
        emb = self.wte.forward(self.contexts(idx))                      # (B, T, block, E)
        self.cache = emb.shape
        return self.mlp.forward(emb.reshape(B, T, -1))                  # (B, T, V)

    def backward(self, dlogits):
        shape = self.saved()
        dx = self.mlp.backward(dlogits)                                 # (B, T, block * E)
        self.wte.backward(dx.reshape(shape))                            # the concatenation is a reshape
        return None

    def terms(self, dout_terms):
        m = self.mlp.terms(dout_terms)
        e = self.wte.terms(m["dx"].reshape(self.saved()))
        return {"out": m["out"], **prefixed(m, "mlp"), **prefixed(e, "wte")}
