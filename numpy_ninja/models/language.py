"""What makemore.py's models share here: the language-model interface, makemore's
initialisation, and the move to and from makemore's own state_dict.

A language model takes idx, integer token ids (B, T) with T at most its block size, and returns
logits (B, T, vocab_size): position t predicts the token after it from tokens 0..t only.
``backward(dlogits)`` fills every parameter's gradient and returns None (the input is indices).
The loss is ``nn.CrossEntropyLoss(ignore_index=-1)``, as makemore's.

Parameter names are makemore.py's state_dict names (``transformer.h.0.attn.c_attn.weight``,
``cell.xh_to_z.bias``, ``lm_head.weight``), Linear weights in numpy-ninja's (fan_in, fan_out)
layout. ``makemore_state_dict()`` exports a model in makemore's own layout (Linear weights
transposed to torch's (fan_out, fan_in), and the causal masks makemore registers as buffers);
``load_makemore_state_dict`` imports one.
"""
import numpy as np

from ..nn import Container, Embedding, LayerNorm, Linear, PositionEmbedding


class LanguageModel(Container):
    """Base class of makemore's models: block_size, vocab_size, the initialisation, the export
    and import, and the input's domain."""

    vocab_size = block_size = None

    def check_domain(self, idx, rtol):
        if idx.ndim != 2:
            return f"needs token ids (B, T), got shape {idx.shape}"
        if idx.shape[1] > self.block_size:
            return f"sequence length {idx.shape[1]} exceeds the block size {self.block_size}"
        return None

    def _check_input(self, idx):
        reason = self.check_domain(idx, None)
        if reason:
            raise ValueError(f"{type(self).__name__} {reason}")

    def init_parameters(self, seed):
        """makemore's initialisation, which is torch's defaults: Embedding N(0, 1), Linear
        weight and bias uniform in +-1/sqrt(fan_in), LayerNorm weight 1 and bias 0, anything
        else (the RNN's start, the bigram table) 0. Drawn in float64 from one seeded Generator in
        named_parameters() order, then cast: float32 and float64 models of one seed start from
        the same numbers."""
        rng = np.random.default_rng(seed)
        modules = dict(self.named_modules())
        for name, p in self.named_parameters():
            owner, what = name.rsplit(".", 1) if "." in name else ("", name)
            m = modules[owner]
            if isinstance(m, (Embedding, PositionEmbedding)):
                value = rng.standard_normal(p.shape)
            elif isinstance(m, LayerNorm):
                value = np.ones(p.shape) if what == "weight" else np.zeros(p.shape)
            elif isinstance(m, Linear):
                bound = 1 / np.sqrt(m.weight.shape[0])
                value = rng.uniform(-bound, bound, p.shape)
            else:
                value = np.zeros(p.shape)
            p.data[...] = value

    def linear_weights(self):
        """The names of the Linear weights: (fan_in, fan_out) here, transposed in makemore's."""
        return {f"{name}.weight" for name, m in self.named_modules() if isinstance(m, Linear)}

    def makemore_state_dict(self):
        """The model as makemore.py's state_dict: NumPy arrays (copies), Linear weights transposed
        to torch's (fan_out, fan_in), and the causal masks makemore registers as buffers."""
        linear = self.linear_weights()
        state = {name: np.array(p.data.T if name in linear else p.data)
                 for name, p in self.named_parameters()}
        state.update(self.named_constants())
        return state

    def load_makemore_state_dict(self, state):
        """Load makemore.py's state_dict (NumPy arrays, or anything np.asarray takes): every
        parameter and mask by name, shapes exactly makemore's, the masks the causal ones; values
        are cast to the model's dtype. Raises ValueError naming what does not fit."""
        state = {k: np.asarray(v) for k, v in state.items()}
        own = self.makemore_state_dict()
        if set(own) != set(state):
            missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise ValueError(f"not this model's state_dict: missing {missing}, unexpected {extra}")
        for name, value in own.items():
            if state[name].shape != value.shape:
                raise ValueError(f"{name}: expected shape {value.shape}, got {state[name].shape}")
            if not np.issubdtype(state[name].dtype, np.floating):
                raise ValueError(f"{name}: expected floating-point values, got {state[name].dtype}")
        for name, mask in self.named_constants():
            if not np.array_equal(state[name], mask):
                raise ValueError(f"{name}: not the causal mask of block size {self.block_size}")
        linear = self.linear_weights()
        for name, p in self.named_parameters():
            p.data[...] = state[name].T if name in linear else state[name]
