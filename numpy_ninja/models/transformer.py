"""makemore's Transformer and bag-of-words language models: token and position embeddings, the
residual blocks (nn.transformer), and a linear head."""
import numpy as np

from ..nn import Block, BoWBlock, Embedding, LayerNorm, Linear, PositionEmbedding
from ..nn.container import prefixed
from .language import LanguageModel


class _Embedded(LanguageModel):
    """x = wte(idx) + wpe(idx): token embeddings plus position embeddings (B, T, C)."""

    def embed(self, idx):
        self._check_input(idx)
        x = self.wte.forward(idx)                    # (B, T, C) token embeddings
        x += self.wpe.forward(idx)                   # (B, T, C) + position embeddings (T, C)
        return x

    def embed_backward(self, dx):
        # x = wte(idx) + wpe(idx): the same dx reaches both
        self.wte.backward(dx)
        self.wpe.backward(dx)

    def embed_terms(self, dx_terms, wte, wpe):
        return {f"{wte}.weight": self.wte.terms(dx_terms)["weight"],
                f"{wpe}.weight": self.wpe.terms(dx_terms)["weight"]}


class Transformer(_Embedded):
    """makemore's Transformer language model: token and position embeddings, n_layer pre-norm
    Blocks, a final LayerNorm, and lm_head (no bias): idx (B, T) -> logits (B, T, vocab_size).

    Parameters: transformer.wte.weight (V, C), transformer.wpe.weight (block_size, C),
    transformer.h.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}.{weight, bias},
    transformer.ln_f.{weight, bias}, lm_head.weight (C, V).
    """

    def __init__(self, vocab_size, block_size, n_layer=4, n_head=4, n_embd=64, *, seed=0,
                 dtype=np.float32):
        self.vocab_size, self.block_size = vocab_size, block_size
        self.wte = Embedding(vocab_size, n_embd, dtype=dtype)
        self.wpe = PositionEmbedding(block_size, n_embd, dtype=dtype)
        self.h = [Block(n_embd, n_head, block_size, dtype=dtype) for _ in range(n_layer)]
        self.ln_f = LayerNorm(n_embd, dtype=dtype)
        self.lm_head = Linear(n_embd, vocab_size, bias=False, dtype=dtype)
        self.init_parameters(seed)

    @staticmethod
    def state_shapes(vocab_size, block_size, n_layer, n_head, n_embd):
        C = n_embd
        block = {"ln_1.weight": (C,), "ln_1.bias": (C,),
                 "attn.c_attn.weight": (C, 3 * C), "attn.c_attn.bias": (3 * C,),
                 "attn.c_proj.weight": (C, C), "attn.c_proj.bias": (C,),
                 "ln_2.weight": (C,), "ln_2.bias": (C,),
                 "mlp.c_fc.weight": (C, 4 * C), "mlp.c_fc.bias": (4 * C,),
                 "mlp.c_proj.weight": (4 * C, C), "mlp.c_proj.bias": (C,)}
        return {"transformer.wte.weight": (vocab_size, C), "transformer.wpe.weight": (block_size, C),
                **{f"transformer.h.{i}.{k}": s for i in range(n_layer) for k, s in block.items()},
                "transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,),
                "lm_head.weight": (C, vocab_size)}

    def children(self):
        return (("transformer.wte", self.wte), ("transformer.wpe", self.wpe),
                *((f"transformer.h.{i}", block) for i, block in enumerate(self.h)),
                ("transformer.ln_f", self.ln_f), ("lm_head", self.lm_head))

    def forward(self, idx):
        x = self.embed(idx)                          # (B, T, C)
        for block in self.h:
            x = block.forward(x)                     # (B, T, C)
        x = self.ln_f.forward(x)                     # (B, T, C)
        return self.lm_head.forward(x)               # (B, T, V)

    def backward(self, dlogits):
        dx = self.lm_head.backward(dlogits)          # (B, T, C)
        dx = self.ln_f.backward(dx)                  # (B, T, C)
        for block in reversed(self.h):
            dx = block.backward(dx)                  # (B, T, C)
        self.embed_backward(dx)
        return None  # the input is token ids: no gradient

    def terms(self, dout_terms):
        t = self.lm_head.terms(dout_terms)
        out, terms = t["out"], prefixed(t, "lm_head")
        t = self.ln_f.terms(t["dx"])
        terms.update(prefixed(t, "transformer.ln_f"))
        for i in reversed(range(len(self.h))):
            t = self.h[i].terms(t["dx"])
            terms.update(prefixed(t, f"transformer.h.{i}"))
        terms.update(self.embed_terms(t["dx"], "transformer.wte", "transformer.wpe"))
        return {"out": out, **terms}


class BoW(_Embedded):
    """makemore's bag-of-words language model: token and position embeddings, one BoWBlock, and
    lm_head (with bias): idx (B, T) -> logits (B, T, vocab_size).

    Parameters: wte.weight (V, C), wpe.weight (block_size, C),
    context_block.mlp.{c_fc, c_proj}.{weight, bias}, lm_head.{weight, bias} (weight (C, V)).
    """

    def __init__(self, vocab_size, block_size, n_embd=64, n_embd2=64, *, seed=0, dtype=np.float32):
        self.vocab_size, self.block_size = vocab_size, block_size
        self.wte = Embedding(vocab_size, n_embd, dtype=dtype)
        self.wpe = PositionEmbedding(block_size, n_embd, dtype=dtype)
        self.context_block = BoWBlock(n_embd, n_embd2, block_size, dtype=dtype)
        self.lm_head = Linear(n_embd, vocab_size, dtype=dtype)
        self.init_parameters(seed)

    @staticmethod
    def state_shapes(vocab_size, block_size, n_embd, n_embd2):
        C, H = n_embd, n_embd2
        return {"wte.weight": (vocab_size, C), "wpe.weight": (block_size, C),
                "context_block.mlp.c_fc.weight": (C, H), "context_block.mlp.c_fc.bias": (H,),
                "context_block.mlp.c_proj.weight": (H, C), "context_block.mlp.c_proj.bias": (C,),
                "lm_head.weight": (C, vocab_size), "lm_head.bias": (vocab_size,)}

    def children(self):
        return (("wte", self.wte), ("wpe", self.wpe), ("context_block", self.context_block),
                ("lm_head", self.lm_head))

    def forward(self, idx):
        x = self.embed(idx)                          # (B, T, C)
        x = self.context_block.forward(x)            # (B, T, C)
        return self.lm_head.forward(x)               # (B, T, V)

    def backward(self, dlogits):
        dx = self.lm_head.backward(dlogits)          # (B, T, C)
        dx = self.context_block.backward(dx)         # (B, T, C)
        self.embed_backward(dx)
        return None

    def terms(self, dout_terms):
        h = self.lm_head.terms(dout_terms)
        c = self.context_block.terms(h["dx"])
        return {"out": h["out"], **prefixed(h, "lm_head"), **prefixed(c, "context_block"),
                **self.embed_terms(c["dx"], "wte", "wpe")}
