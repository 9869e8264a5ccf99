"""The same training step in JAX, for bench_step.py: a JAX user's jit-compiled value-and-grad step
called from Python once per step, and (the lecture's networks) the same step inside one lax.scan
per round.

- The lecture's mlp and wavenet (``jax_variant``): the same network (benchmarks/forward.py: any
  numpy_ninja Sequential of Embedding, Flatten, FlattenConsecutive, Linear, BatchNorm1d, Tanh),
  SGD; BatchNorm keeps running statistics, as ours does.
- makemore's six models (``makemore_jax_variant``): each model's forward written here in
  jax.numpy from makemore's architecture (``lm_forward``), the loss over the positions whose
  target is not -1, and AdamW as torch.optim.AdamW computes it, makemore's settings. On the same
  trimmed batches as numpy-ninja (numpy_ninja.train.trimmed); jit compiles one step per sequence
  length, all of them before the timing starts.

Same initial parameters (numpy_ninja's layout), same batches (numpy_ninja.train.batch_indices),
float32. jax is optional: bench_step.py skips these variants when it is not installed
(pip install "jax[cpu]").
"""
import math

import numpy as np

import jax
import jax.numpy as jnp

from forward import forward
from numpy_ninja.data import IGNORE
from numpy_ninja.train import DRAW_STEPS, batch_indices, trimmed


def make_step(model):
    def loss_fn(params, buffers, Xb, Yb):
        logits, new = forward(model, params, buffers, Xb, True, jnp, jax.lax.stop_gradient)
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, Yb[:, None], axis=1).mean(), new

    def step(params, buffers, X, Y, rows, lr):
        (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, buffers, X[rows], Y[rows])
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        return params, new, loss
    return step


def rows_for(seed, n_train, batch_size, start, n):
    """The batch rows of steps start..start+n-1, (n, batch_size)."""
    out, s = [], start
    while s < start + n:
        drawn = batch_indices(seed, n_train, batch_size, s)
        take = min(start + n - s, DRAW_STEPS - s % DRAW_STEPS)
        out.append(drawn[s % DRAW_STEPS:s % DRAW_STEPS + take])
        s += take
    return np.concatenate(out)


def jax_variant(model, X, Y, seed, batch_size, lr, scanned):
    """run(n) -> the last loss: n steps, one jit call each (scanned=False) or one lax.scan call."""
    params = {k: jnp.asarray(p.data) for k, p in model.named_parameters()}
    buffers = {k: jnp.asarray(b) for k, b in model.named_buffers()}
    Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
    step = make_step(model)
    lr = jnp.float32(lr)
    state = dict(params=params, buffers=buffers, step=0)

    if scanned:
        @jax.jit
        def many(params, buffers, rows):
            def body(carry, r):
                p, b, _ = step(*carry[:2], Xd, Yd, r, lr)
                return (p, b, _), _
            (params, buffers, loss), _ = jax.lax.scan(body, (params, buffers, jnp.float32(0)), rows)
            return params, buffers, loss

        def run(n):
            rows = jnp.asarray(rows_for(seed, len(Y), batch_size, state["step"], n))
            state["params"], state["buffers"], loss = many(state["params"], state["buffers"], rows)
            state["step"] += n
            return float(loss)
    else:
        jstep = jax.jit(step)

        def run(n):
            rows = rows_for(seed, len(Y), batch_size, state["step"], n)
            for r in rows:
                state["params"], state["buffers"], loss = jstep(
                    state["params"], state["buffers"], Xd, Yd, r, lr)
            state["step"] += n
            return float(loss)
    return run


# makemore's models in jax.numpy: p holds numpy_ninja's parameters by name (Linear weights
# (fan_in, fan_out)), idx (B, T) token ids -> logits (B, T, V)

def layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * w + b


def gelu(x):
    """makemore's NewGELU: the tanh approximation."""
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def bigram(p, idx, sizes):
    return p["logits"][idx]


def bengio(p, idx, sizes):
    B, T = idx.shape
    k, V = sizes["block_size"] - 1, sizes["vocab_size"]
    padded = jnp.concatenate([jnp.full((B, k), V, idx.dtype), idx], 1)
    where = k + np.arange(T)[:, None] - np.arange(k + 1)             # (T, block): token t - j
    emb = p["wte.weight"][padded[:, where]].reshape(B, T, -1)        # (B, T, block * E)
    h = jnp.tanh(emb @ p["mlp.0.weight"] + p["mlp.0.bias"])
    return h @ p["mlp.2.weight"] + p["mlp.2.bias"]


def recurrent(p, idx, sizes):
    emb = p["wte.weight"][idx]                                       # (B, T, E)
    h0 = jnp.broadcast_to(p["start"], (idx.shape[0], p["start"].shape[1]))

    def lin(name, xh):
        return xh @ p[f"cell.{name}.weight"] + p[f"cell.{name}.bias"]

    def rnn(h, xt):
        h = jnp.tanh(lin("xh_to_h", jnp.concatenate([xt, h], 1)))
        return h, h

    def gru(h, xt):
        xh = jnp.concatenate([xt, h], 1)
        r = jax.nn.sigmoid(lin("xh_to_r", xh))
        hbar = jnp.tanh(lin("xh_to_hbar", jnp.concatenate([xt, r * h], 1)))
        z = jax.nn.sigmoid(lin("xh_to_z", xh))
        h = (1 - z) * h + z * hbar
        return h, h
    _, hs = jax.lax.scan(rnn if sizes["cell"] == "rnn" else gru, h0, emb.swapaxes(0, 1))
    return hs.swapaxes(0, 1) @ p["lm_head.weight"] + p["lm_head.bias"]


def bow(p, idx, sizes):
    T = idx.shape[1]
    x = p["wte.weight"][idx] + p["wpe.weight"][:T]
    avg = np.tril(np.ones((T, T), np.float32)) / np.arange(1, T + 1, dtype=np.float32)[:, None]
    x = x + avg @ x                                                  # the causal mean
    q = "context_block.mlp."
    x = x + jnp.tanh(x @ p[q + "c_fc.weight"] + p[q + "c_fc.bias"]) @ p[q + "c_proj.weight"] + p[q + "c_proj.bias"]
    return x @ p["lm_head.weight"] + p["lm_head.bias"]


def transformer(p, idx, sizes):
    B, T = idx.shape
    nh = sizes["n_head"]
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
    C = x.shape[-1]
    mask = np.tril(np.ones((T, T), bool))

    def heads(t):
        return t.reshape(B, T, nh, C // nh).transpose(0, 2, 1, 3)   # (B, nh, T, hs)
    for i in range(sizes["n_layer"]):
        q = f"transformer.h.{i}."
        h = layer_norm(x, p[q + "ln_1.weight"], p[q + "ln_1.bias"])
        qq, k, v = jnp.split(h @ p[q + "attn.c_attn.weight"] + p[q + "attn.c_attn.bias"], 3, axis=-1)
        att = heads(qq) @ heads(k).swapaxes(-1, -2) * (1.0 / math.sqrt(C // nh))
        att = jax.nn.softmax(jnp.where(mask, att, -jnp.inf), axis=-1)
        y = (att @ heads(v)).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ p[q + "attn.c_proj.weight"] + p[q + "attn.c_proj.bias"]
        h = layer_norm(x, p[q + "ln_2.weight"], p[q + "ln_2.bias"])
        h = gelu(h @ p[q + "mlp.c_fc.weight"] + p[q + "mlp.c_fc.bias"])
        x = x + h @ p[q + "mlp.c_proj.weight"] + p[q + "mlp.c_proj.bias"]
    x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    return x @ p["lm_head.weight"]


LM_FORWARD = {"bigram": bigram, "bengio": bengio, "rnn": recurrent, "gru": recurrent, "bow": bow,
              "transformer": transformer}


def lm_loss(logits, Y):
    """Mean cross-entropy over the positions whose target is not IGNORE."""
    counted = Y != IGNORE
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, jnp.where(counted, Y, 0)[..., None], axis=-1)[..., 0]
    return (nll * counted).sum() / counted.sum()


def adamw(p, g, m, v, t, lr, betas, eps, weight_decay):
    """torch.optim.AdamW's update of one parameter at step t (1, 2, ...)."""
    b1, b2 = betas
    p = p * (1 - lr * weight_decay)
    m = m + (1 - b1) * (g - m)
    v = b2 * v + (1 - b2) * g * g
    denom = jnp.sqrt(v) / jnp.sqrt(1 - b2 ** t) + eps
    return p - lr / (1 - b1 ** t) * m / denom, m, v


def makemore_jax_variant(model, kind, X, Y, seed, batch_size, lr, betas, eps, weight_decay):
    """run(n) -> the last loss: n AdamW steps of makemore's model `kind` (numpy-ninja's name:
    bigram, bengio, rnn, gru, bow, transformer), one jit call each, on trimmed batches."""
    sizes = dict(block_size=model.block_size, vocab_size=model.vocab_size, cell=kind)
    if kind == "transformer":
        sizes.update(n_layer=len(model.h), n_head=model.h[0].attn.n_head)
    lm = LM_FORWARD[kind]

    def step(params, m, v, t, Xb, Yb):
        loss, grads = jax.value_and_grad(lambda q: lm_loss(lm(q, Xb, sizes), Yb))(params)
        new = {k: adamw(params[k], grads[k], m[k], v[k], t, lr, betas, eps, weight_decay) for k in params}
        return ({k: u[0] for k, u in new.items()}, {k: u[1] for k, u in new.items()},
                {k: u[2] for k, u in new.items()}, loss)
    jstep = jax.jit(step)
    params = {k: jnp.asarray(p.data) for k, p in model.named_parameters()}
    zeros = {k: jnp.zeros_like(q) for k, q in params.items()}
    state = dict(params=params, m=zeros, v=zeros, step=0)
    B = batch_size
    for T in range(1, model.block_size + 1):  # compile every sequence length a batch can have
        Xc = np.zeros((B, T), np.int32)
        jax.block_until_ready(jstep(params, zeros, zeros, jnp.float32(1), Xc, Xc))

    def run(n):
        rows = rows_for(seed, len(Y), batch_size, state["step"], n)
        for r in rows:
            state["step"] += 1
            Xb, Yb = trimmed(X[r], Y[r])
            state["params"], state["m"], state["v"], loss = jstep(
                state["params"], state["m"], state["v"], jnp.float32(state["step"]),
                Xb.astype(np.int32), Yb.astype(np.int32))
        return float(loss)
    return run
