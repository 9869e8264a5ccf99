"""makemore's RNN language model, with the RNN or the GRU cell: token embeddings, the
recurrence from a learned start state, a linear head. Backpropagation through time is the
cell's (nn.recurrent)."""
import numpy as np

from ..nn import Embedding, GRUCell, Linear, Recurrent, RNNCell
from ..nn.container import prefixed
from .language import LanguageModel

CELLS = {"rnn": RNNCell, "gru": GRUCell}


class RNN(LanguageModel):
    """idx (B, T) -> logits (B, T, vocab_size). Parameters in makemore's order: start
    (1, n_embd2), wte.weight (V, n_embd), cell.* (the cell's gates), lm_head.{weight, bias}.
    cell_type: "rnn" or "gru"."""

    param_names = ("start",)

    def __init__(self, vocab_size, block_size, n_embd=64, n_embd2=64, cell_type="rnn", *, seed=0,
                 dtype=np.float32):
        if cell_type not in CELLS:
            raise ValueError(f"cell_type must be one of {', '.join(CELLS)}, got {cell_type!r}")
        self.vocab_size, self.block_size, self.cell_type = vocab_size, block_size, cell_type
        self.wte = Embedding(vocab_size, n_embd, dtype=dtype)
        self.rnn = Recurrent(CELLS[cell_type](n_embd, n_embd2, dtype=dtype))
        self.lm_head = Linear(n_embd2, vocab_size, dtype=dtype)
        self.init_parameters(seed)

    @property
    def start(self):
        return self.rnn.start

    @staticmethod
    def state_shapes(vocab_size, block_size, n_embd, n_embd2, cell_type="rnn"):
        gates = CELLS[cell_type].gates
        return {"start": (1, n_embd2), "wte.weight": (vocab_size, n_embd),
                **{f"cell.{g}.{p}": shape for g in gates
                   for p, shape in (("weight", (n_embd + n_embd2, n_embd2)), ("bias", (n_embd2,)))},
                "lm_head.weight": (n_embd2, vocab_size), "lm_head.bias": (vocab_size,)}

    def children(self):
        return (("wte", self.wte), ("cell", self.rnn.cell), ("lm_head", self.lm_head))

    def forward(self, idx):
        self._check_input(idx)
        emb = self.wte.forward(idx)                                     # (B, T, n_embd)
        hidden = self.rnn.forward(emb)                                  # (B, T, n_embd2)
        return self.lm_head.forward(hidden)                             # (B, T, V)

    def backward(self, dlogits):
        dhidden = self.lm_head.backward(dlogits)                        # (B, T, n_embd2)
        demb = self.rnn.backward(dhidden)                               # (B, T, n_embd)
        self.wte.backward(demb)
        return None

    def terms(self, dout_terms):
        h = self.lm_head.terms(dout_terms)
        r = self.rnn.terms(h["dx"])
        e = self.wte.terms(r["dx"])
        own = {k: v for k, v in r.items() if k not in ("out", "dx")}   # start, cell.*
        return {"out": h["out"], **own, **prefixed(e, "wte"), **prefixed(h, "lm_head")}
