"""The same training step in JAX, for bench_step.py: a JAX user's jit-compiled value-and-grad + SGD
step called from Python once per step, and the same step inside one lax.scan per round.

Same network (benchmarks/forward.py: any numpy_ninja Sequential of Embedding, Flatten,
FlattenConsecutive, Linear, BatchNorm1d, Tanh), same initial parameters, same batches
(numpy_ninja.train.batch_indices), float32; BatchNorm keeps running statistics, as ours does.
jax is optional: bench_step.py skips these variants when it is not installed
(pip install "jax[cpu]").
"""
import numpy as np

import jax
import jax.numpy as jnp

from forward import forward
from numpy_ninja.train import DRAW_STEPS, batch_indices


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


def jax_variant(model, X, Y, seed, batch_size, lr, scanned):
    """run(n) -> the last loss: n steps, one jit call each (scanned=False) or one lax.scan call."""
    params = {k: jnp.asarray(p.data) for k, p in model.named_parameters()}
    buffers = {k: jnp.asarray(b) for k, b in model.named_buffers()}
    Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
    step = make_step(model)
    lr = jnp.float32(lr)
    state = dict(params=params, buffers=buffers, step=0)

    def rows_for(start, n):
        out, s = [], start
        while s < start + n:
            drawn = batch_indices(seed, len(Y), batch_size, s)
            take = min(start + n - s, DRAW_STEPS - s % DRAW_STEPS)
            out.append(drawn[s % DRAW_STEPS:s % DRAW_STEPS + take])
            s += take
        return np.concatenate(out)

    if scanned:
        @jax.jit
        def many(params, buffers, rows):
            def body(carry, r):
                p, b, _ = step(*carry[:2], Xd, Yd, r, lr)
                return (p, b, _), _
            (params, buffers, loss), _ = jax.lax.scan(body, (params, buffers, jnp.float32(0)), rows)
            return params, buffers, loss

        def run(n):
            rows = jnp.asarray(rows_for(state["step"], n))
            state["params"], state["buffers"], loss = many(state["params"], state["buffers"], rows)
            state["step"] += n
            return float(loss)
    else:
        jstep = jax.jit(step)

        def run(n):
            rows = rows_for(state["step"], n)
            for r in rows:
                state["params"], state["buffers"], loss = jstep(
                    state["params"], state["buffers"], Xd, Yd, r, lr)
            state["step"] += n
            return float(loss)
    return run
