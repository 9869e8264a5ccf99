"""makemore.py's six models in PyTorch, with its module tree and state_dict names: the oracle's
reference for numpy_ninja.models' makemore models, and the torch side of export and import.
Written here from makemore's architecture, not copied.

    config = ModelConfig(vocab_size=27, block_size=16)
    model = build("transformer", config)   # bigram, mlp, rnn, gru, bow, transformer (makemore's --type)
    logits, loss = model(idx, targets)     # loss: cross-entropy, targets of -1 ignored

A makemore.py state_dict loads into these models (``load_state_dict``, strict): nn.Linear weights
(fan_out, fan_in), the causal masks as the buffers ``...attn.bias`` and ``context_block.cbow.bias``.
``from_numpy(np_model)`` builds the torch model holding a numpy_ninja model's values (through its
``makemore_state_dict``); ``ours_layout(module)`` swaps every nn.Linear for one that keeps its
weight as numpy_ninja does, (fan_in, fan_out), so that a module is a layer twin for
``oracle.check_layer``, and ``layer_twin(layer)`` is that twin for each numpy_ninja makemore
layer and model (PositionEmbedding, Recurrent, BlockMLP and ``logits_only`` adapt makemore's
modules where it writes a layer inline or returns more than logits). GRUCell is makemore's gate
layout, not torch.nn.GRUCell's (which resets after the matrix product and blends the other way
round): an explicit module.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import numpy_ninja.models as np_models
import numpy_ninja.nn as np_nn

TYPES = ("bigram", "mlp", "rnn", "gru", "bow", "transformer")  # makemore.py's --type
NUMPY_NAMES = {"mlp": "bengio"}  # a makemore type's name in numpy-ninja, where it differs


@dataclass
class ModelConfig:
    """makemore's ModelConfig: block_size is the sequence length (the longest word plus one)."""

    block_size: int = None
    vocab_size: int = None
    n_layer: int = 4
    n_embd: int = 64
    n_embd2: int = 64
    n_head: int = 4


def lm_loss(logits, targets):
    """Mean cross-entropy over the positions whose target is not -1."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)


class RNNCell(nn.Module):
    """h_t = tanh(W [x_t, h_{t-1}] + b). ``linear`` builds the layer (nn.Linear; a twin passes
    one that stores its weight (fan_in, fan_out))."""

    def __init__(self, config, linear=nn.Linear):
        super().__init__()
        self.xh_to_h = linear(config.n_embd + config.n_embd2, config.n_embd2)

    def forward(self, xt, hprev):
        return torch.tanh(self.xh_to_h(torch.cat([xt, hprev], dim=1)))


class GRUCell(nn.Module):
    """makemore's GRU: reset r, candidate hbar from [x, r * hprev], switch z, blend."""

    def __init__(self, config, linear=nn.Linear):
        super().__init__()
        width = config.n_embd + config.n_embd2
        self.xh_to_z = linear(width, config.n_embd2)
        self.xh_to_r = linear(width, config.n_embd2)
        self.xh_to_hbar = linear(width, config.n_embd2)

    def forward(self, xt, hprev):
        xh = torch.cat([xt, hprev], dim=1)
        r = torch.sigmoid(self.xh_to_r(xh))
        hbar = torch.tanh(self.xh_to_hbar(torch.cat([xt, r * hprev], dim=1)))
        z = torch.sigmoid(self.xh_to_z(xh))
        return (1 - z) * hprev + z * hbar


CELLS = {"rnn": RNNCell, "gru": GRUCell}


def run_cell(cell, start, emb):
    """The cell over emb (B, T, n_embd) from start (1, n_embd2): the states (B, T, n_embd2)."""
    h = start.expand(emb.shape[0], -1)
    states = []
    for t in range(emb.shape[1]):
        h = cell(emb[:, t], h)
        states.append(h)
    return torch.stack(states, dim=1)


class RNN(nn.Module):
    """makemore's RNN language model: start, wte, the cell over the sequence, lm_head."""

    def __init__(self, config, cell_type):
        super().__init__()
        self.block_size, self.vocab_size = config.block_size, config.vocab_size
        self.start = nn.Parameter(torch.zeros(1, config.n_embd2))
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.cell = CELLS[cell_type](config)
        self.lm_head = nn.Linear(config.n_embd2, config.vocab_size)

    def forward(self, idx, targets=None):
        logits = self.lm_head(run_cell(self.cell, self.start, self.wte(idx)))
        return logits, (lm_loss(logits, targets) if targets is not None else None)


class MLP(nn.Module):
    """Position t: the embeddings of tokens t, t-1, ..., t-block_size+1 concatenated, <BLANK>
    (index vocab_size) before the start of the sequence, through Linear, tanh, Linear."""

    def __init__(self, config):
        super().__init__()
        self.block_size, self.vocab_size = config.block_size, config.vocab_size
        self.wte = nn.Embedding(config.vocab_size + 1, config.n_embd)
        self.mlp = nn.Sequential(nn.Linear(self.block_size * config.n_embd, config.n_embd2), nn.Tanh(),
                                 nn.Linear(config.n_embd2, self.vocab_size))

    def forward(self, idx, targets=None):
        context, embs = idx, []
        for _ in range(self.block_size):
            embs.append(self.wte(context))
            # shift right by one: position t now holds token t-1, the first position <BLANK>
            context = torch.cat([torch.full_like(context[:, :1], self.vocab_size), context[:, :-1]], 1)
        logits = self.mlp(torch.cat(embs, dim=-1))
        return logits, (lm_loss(logits, targets) if targets is not None else None)


class Bigram(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(config.vocab_size, config.vocab_size))

    def forward(self, idx, targets=None):
        logits = self.logits[idx]
        return logits, (lm_loss(logits, targets) if targets is not None else None)


class NewGELU(nn.Module):
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention over the past, the explicit masked softmax; the mask is the
    buffer ``bias``, (1, 1, block_size, block_size), ones on and below the diagonal."""

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.register_buffer("bias", torch.tril(torch.ones(config.block_size, config.block_size))
                             .view(1, 1, config.block_size, config.block_size))
        self.n_head, self.n_embd = config.n_head, config.n_embd

    def forward(self, x):
        B, T, C = x.size()
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, T)
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)  # heads side by side
        return self.c_proj(y)


class SDPACausalSelfAttention(CausalSelfAttention):
    """The same layer through torch's fused F.scaled_dot_product_attention(is_causal=True): a
    second, independent reference for the attention itself."""

    def forward(self, x):
        B, T, C = x.size()
        hs = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2)
                   for t in self.c_attn(x).split(self.n_embd, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.ModuleDict(dict(
            c_fc=nn.Linear(config.n_embd, 4 * config.n_embd),
            c_proj=nn.Linear(4 * config.n_embd, config.n_embd),
            act=NewGELU(),
        ))

    def forward(self, x):
        m = self.mlp
        x = x + self.attn(self.ln_1(x))
        return x + m.c_proj(m.act(m.c_fc(self.ln_2(x))))


class Transformer(nn.Module):
    """makemore's Transformer language model (GPT-2's architecture, no dropout)."""

    def __init__(self, config):
        super().__init__()
        self.block_size = config.block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.block_size, f"sequence of length {t}, block size is only {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)  # (1, t)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits, (None if targets is None else lm_loss(logits, targets))


class CausalBoW(nn.Module):
    """Causal bag of words: each position the uniform average of itself and the positions before
    it, as a softmax over a masked row of zeros; the mask is the buffer ``bias``,
    (1, block_size, block_size)."""

    def __init__(self, config):
        super().__init__()
        self.block_size = config.block_size
        self.register_buffer("bias", torch.tril(torch.ones(config.block_size, config.block_size))
                             .view(1, config.block_size, config.block_size))

    def forward(self, x):
        B, T, C = x.size()
        att = torch.zeros((B, T, T), device=x.device, dtype=x.dtype)
        att = att.masked_fill(self.bias[:, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        return att @ x  # (B, T, T) x (B, T, C) -> (B, T, C)


class BoWBlock(nn.Module):
    """x + cbow(x), then + c_proj(tanh(c_fc(x)))."""

    def __init__(self, config):
        super().__init__()
        self.cbow = CausalBoW(config)
        self.mlp = nn.ModuleDict(dict(
            c_fc=nn.Linear(config.n_embd, config.n_embd2),
            c_proj=nn.Linear(config.n_embd2, config.n_embd),
        ))

    def forward(self, x):
        m = self.mlp
        x = x + self.cbow(x)
        return x + m.c_proj(torch.tanh(m.c_fc(x)))


class BoW(nn.Module):
    """makemore's bag-of-words language model: token and position embeddings, one BoWBlock, a
    linear head (with bias)."""

    def __init__(self, config):
        super().__init__()
        self.block_size = config.block_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.context_block = BoWBlock(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.block_size, f"sequence of length {t}, block size is only {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)
        x = self.context_block(self.wte(idx) + self.wpe(pos))
        logits = self.lm_head(x)
        return logits, (None if targets is None else lm_loss(logits, targets))


class OursLinear(nn.Module):
    """torch's linear op on a weight kept (fan_in, fan_out), numpy-ninja's layout."""

    def __init__(self, linear):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().T.clone())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def forward(self, x):
        return F.linear(x, self.weight.T, self.bias)


def ours_layout(module):
    """module with every nn.Linear replaced, in place, by an OursLinear holding the same values
    transposed; returns module."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, OursLinear(child))
        else:
            ours_layout(child)
    return module


# ---------------------------------------------------------------- layer twins
# Where numpy_ninja has a layer that makemore writes inline (the MLP of a block, the position
# embedding, the loop over the sequence) or a model whose forward returns more than logits, a small
# module with the layer's names, for oracle.check_layer.

class PositionEmbedding(nn.Embedding):
    """makemore's wpe looked up at arange(T) and broadcast over the batch: idx (B, T) of any
    values -> (B, T, embedding_dim); only idx's shape is read."""

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        return super().forward(pos).expand(B, T, self.embedding_dim)


class Recurrent(nn.Module):
    """makemore's RNN without its embedding and head: the cell over x (B, T, n_embd) from the
    learned ``start`` (1, n_embd2), every hidden state (B, T, n_embd2) (run_cell)."""

    def __init__(self, config, cell_type):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, config.n_embd2))
        self.cell = CELLS[cell_type](config)

    def forward(self, x):
        return run_cell(self.cell, self.start, x)


class BlockMLP(nn.Module):
    """The MLP branch of makemore's blocks, which it calls inline from an nn.ModuleDict:
    c_proj(act(c_fc(x))), act NewGELU (Block) or tanh (BoWBlock)."""

    def __init__(self, n_in, n_hidden, act):
        super().__init__()
        self.c_fc = nn.Linear(n_in, n_hidden)
        self.c_proj = nn.Linear(n_hidden, n_in)
        self.act = act

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


def logits_only(model):
    """A makemore model whose forward returns its logits alone (not (logits, loss)), by a forward
    hook: its modules, names and state are untouched. Returns model."""
    model.register_forward_hook(lambda module, args, output: output[0])
    return model


def layer_twin(layer):
    """The torch twin of a numpy_ninja makemore layer or model, a layer twin for
    ``oracle.check_layer``: makemore's own module (or one above, where makemore writes the layer
    inline), with the layer's sizes, its nn.Linear in numpy-ninja's layout (ours_layout), float32
    and its state not loaded. GELU is torch's nn.GELU(approximate="tanh"); a model returns its
    logits only. None for a layer that is not makemore's."""
    if isinstance(layer, np_nn.GELU):
        return nn.GELU(approximate="tanh")
    if isinstance(layer, np_nn.PositionEmbedding):
        return PositionEmbedding(*layer.weight.shape)
    if isinstance(layer, np_nn.CausalSelfAttention):
        config = ModelConfig(block_size=layer.block_size, n_embd=layer.n_embd, n_head=layer.n_head)
        return ours_layout(CausalSelfAttention(config))
    if isinstance(layer, np_nn.CausalBoW):
        return CausalBoW(ModelConfig(block_size=layer.block_size))
    if isinstance(layer, np_nn.MLP):
        act = {np_nn.GELU: NewGELU, np_nn.Tanh: nn.Tanh}.get(type(layer.act))
        return None if act is None else ours_layout(BlockMLP(*layer.c_fc.weight.shape, act()))
    if isinstance(layer, np_nn.Block):
        a = layer.attn
        return ours_layout(Block(ModelConfig(block_size=a.block_size, n_embd=a.n_embd, n_head=a.n_head)))
    if isinstance(layer, np_nn.BoWBlock):
        n_embd, n_embd2 = layer.mlp.c_fc.weight.shape
        return ours_layout(BoWBlock(ModelConfig(block_size=layer.cbow.block_size, n_embd=n_embd,
                                                n_embd2=n_embd2)))
    if isinstance(layer, np_nn.Recurrent):
        cell = layer.cell
        cell_type = {np_nn.RNNCell: "rnn", np_nn.GRUCell: "gru"}[type(cell)]
        config = ModelConfig(n_embd=cell.n_embd, n_embd2=cell.n_embd2)
        return ours_layout(Recurrent(config, cell_type))
    if isinstance(layer, np_models.LanguageModel):
        return logits_only(ours_layout(build(type_of(layer), config_of(layer))))
    return None


def build(model_type, config):
    """makemore.py's model of --type model_type (bigram, mlp, rnn, gru, bow, transformer)."""
    if model_type not in TYPES:
        raise ValueError(f"model type must be one of {', '.join(TYPES)}, got {model_type!r}")
    if model_type in CELLS:
        return RNN(config, model_type)
    return {"bigram": Bigram, "mlp": MLP, "bow": BoW, "transformer": Transformer}[model_type](config)


def type_of(np_model):
    """makemore's --type of a numpy_ninja makemore model."""
    if isinstance(np_model, np_models.RNN):
        return np_model.cell_type
    return {np_models.Bigram: "bigram", np_models.Bengio: "mlp", np_models.BoW: "bow",
            np_models.Transformer: "transformer"}[type(np_model)]


def config_of(np_model):
    """The ModelConfig of a numpy_ninja makemore model, read from its parameters' shapes."""
    state, kind = np_model.state_dict(), type_of(np_model)
    config = ModelConfig(block_size=np_model.block_size, vocab_size=np_model.vocab_size)
    if kind == "mlp":
        config.n_embd, config.n_embd2 = state["wte.weight"].shape[1], state["mlp.0.bias"].shape[0]
    elif kind in CELLS:
        config.n_embd, config.n_embd2 = state["wte.weight"].shape[1], state["start"].shape[1]
    elif kind == "bow":
        config.n_embd = state["wte.weight"].shape[1]
        config.n_embd2 = state["context_block.mlp.c_fc.bias"].shape[0]
    elif kind == "transformer":
        config.n_embd = state["transformer.wte.weight"].shape[1]
        config.n_layer, config.n_head = len(np_model.h), np_model.h[0].attn.n_head
    return config


def from_numpy(np_model, dtype=None):
    """The torch model (makemore's structure) holding copies of a numpy_ninja makemore model's
    values, through its makemore export; dtype (torch's) defaults to the model's."""
    model = build(type_of(np_model), config_of(np_model))
    params = np_model.parameters()
    dtype = dtype or torch.from_numpy(params[0].data[:0]).dtype
    model = model.to(dtype)
    state = {k: torch.from_numpy(np.array(v)).to(dtype) for k, v in np_model.makemore_state_dict().items()}
    model.load_state_dict(state)  # strict: every name and shape of makemore's
    return model
