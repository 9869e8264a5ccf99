"""Where the floor of a NumPy training step is: the exercise-4 step (batch 32, hidden 200,
float32) timed three ways, interleaved in one run on the same batches; and, with --layers MODEL,
each layer's forward and backward of a model's batch-32 step on their own.

  layers     numpy_ninja.train.train_steps: the step `numpy-ninja train` runs (layer objects)
  one-piece  the same maths as one function with every NumPy call it can spare removed: no
             layer objects, no Python between operations but what the maths needs, in-place
             updates into preallocated arrays. The fastest this step gets in NumPy as written
             here; what the layer stack costs is the difference.
  matmuls    only the step's matrix products (six GEMMs, the embedding's one-hot product, the
             BLAS sums over rows) and the gathers of the batch: work no NumPy step avoids.

    python benchmarks/step_floor.py [--rounds 15] [--steps 2000] [--layers mlp|wavenet]
"""
import argparse
import statistics
import time
from functools import partial

import numpy as np

from numpy_ninja import CrossEntropyLoss
from numpy_ninja.config import RunConfig
from numpy_ninja.data import default_data_path, load_dataset
from numpy_ninja.models import build_model
from numpy_ninja.optim import SGD
from numpy_ninja.train import DRAW_STEPS, batch_indices, blas_threads, train_steps


def setup():
    config = RunConfig(dtype="float32", steps=10**9, lr_decay_step=10**9)
    data = load_dataset(default_data_path(), config.block_size, config.seed)
    X, Y = data.splits["train"]
    return config, build_model(config, len(data.vocab)), X, Y


def layers_variant(config, model, X, Y):
    optimizer, lossi, step = SGD(model.parameters(), config.lr), np.zeros(10**7, np.float32), [0]

    def run(n):
        train_steps(model, optimizer, X, Y, config, step[0], step[0] + n, lossi)
        step[0] += n
        return float(lossi[step[0] - 1])
    return run


def one_piece_variant(config, model, X, Y, matmuls_only=False):
    """The step with the fewest NumPy calls: the same forward and backward as the layers'."""
    p = {k: v.copy() for k, v in model.state_dict().items()}
    C, W1, b1, g, b = p["0.weight"], p["2.weight"], p["2.bias"], p["3.weight"], p["3.bias"]
    W2, b2, rm, rv = p["5.weight"], p["5.bias"], p["3.running_mean"], p["3.running_var"]
    params = [C, W1, b1, g, b, W2, b2]
    grads = [np.zeros_like(q) for q in params]
    dC, dW1, db1, dg, db, dW2, db2 = grads
    n, V = config.batch_size, C.shape[0]
    f = np.float32
    mean_w, var_w, ones = np.full(n, 1 / n, f), np.full(n, 1 / (n - 1), f), np.ones(n, f)
    eye, onesV, starts = np.eye(V, dtype=f), np.ones(V, f), np.arange(n) * V
    keep, new, lr, one, inv_n = (np.array(v, f) for v in (0.9, 0.1, config.lr, 1, 1 / n))
    eps, nm1 = np.array(1e-5, f), np.array(n - 1, f)
    step, ix = [0], {}

    def run(steps):
        for _ in range(steps):
            s = step[0]
            if s // DRAW_STEPS not in ix:
                ix[s // DRAW_STEPS] = batch_indices(config.seed, len(Y), n, s)
            rows = ix[s // DRAW_STEPS][s % DRAW_STEPS]
            Xb, Yb = X[rows], Y[rows]
            emb = C[Xb.ravel()].reshape(n, -1)
            hpre = np.dot(emb, W1)
            if matmuls_only:
                h = hpre
                logits = np.dot(h, W2)
                dlogits = logits
                np.dot(h.T, dlogits, out=dW2)
                np.dot(ones, dlogits, out=db2)
                dh = np.dot(dlogits, W2.T)
                np.dot(ones, dh, out=db)
                np.dot(ones, dh, out=dg)
                np.dot(emb.T, dh, out=dW1)
                np.dot(ones, dh, out=db1)
                demb = np.dot(dh, W1.T)
                np.dot(eye.take(Xb.ravel(), axis=0).T, demb.reshape(-1, C.shape[1]), out=dC)
                step[0] += 1
                continue
            hpre += b1
            mean = np.dot(mean_w, hpre)
            xc = np.subtract(hpre, mean, out=hpre)
            var = np.dot(var_w, xc * xc)
            np.multiply(rm, keep, out=rm)
            np.add(rm, new * mean, out=rm)
            np.multiply(rv, keep, out=rv)
            np.add(rv, new * var, out=rv)
            std = np.sqrt(var + eps, out=var)
            k = g / std
            hpreact = xc * k
            hpreact += b
            h = np.tanh(hpreact, out=hpreact)
            logits = np.dot(h, W2)
            logits += b2
            flat = logits.reshape(-1)
            z = np.subtract(logits, flat.take(starts + logits.argmax(1))[:, None], out=logits)
            at = starts + Yb
            picked = z.reshape(-1).take(at)
            counts = np.exp(z, out=z)
            sums = np.dot(counts, onesV)
            loss = float((np.log(sums) - picked).sum() / n)
            dlogits = np.divide(counts, (sums * n)[:, None], out=counts)
            dlogits.reshape(-1)[at] -= inv_n
            np.dot(h.T, dlogits, out=dW2)
            np.dot(ones, dlogits, out=db2)
            dh = np.dot(dlogits, W2.T)
            dh *= np.subtract(one, h * h)  # dhpreact
            np.dot(ones, dh, out=db)
            np.dot(ones, dh * xc, out=dg)
            np.divide(dg, std, out=dg)
            dx = xc * (dg / (std * nm1))
            np.subtract(dh, dx, out=dx)
            dx -= db * inv_n
            dx *= k  # dhprebn
            np.dot(emb.T, dx, out=dW1)
            np.dot(ones, dx, out=db1)
            demb = np.dot(dx, W1.T)
            np.dot(eye.take(Xb.ravel(), axis=0).T, demb.reshape(-1, C.shape[1]), out=dC)
            for q, d in zip(params, grads):
                q -= lr * d
            step[0] += 1
        return loss if not matmuls_only else 0.0
    return run


def layer_times(model_name, rounds, repeat=2000):
    """Median us of each layer's forward and backward alone, on the inputs and gradients of one
    training-mode batch of 32 (the loss's too), float32, one BLAS thread."""
    config = RunConfig(model=model_name, dtype="float32")
    data = load_dataset(default_data_path(), config.block_size, config.seed)
    X, Y = data.splits["train"]
    model = build_model(config, len(data.vocab))
    criterion = CrossEntropyLoss()
    inputs, x = [], X[:32]
    for layer in model.layers:
        inputs.append(x)
        x = layer(x)
    criterion(x, Y[:32])
    douts, d = [], criterion.backward()
    for layer in reversed(model.layers):
        douts.insert(0, d)
        d = layer.backward(d)
    work = [(f"{i} {type(layer).__name__}", partial(layer.forward, x_), partial(layer.backward, d_))
            for i, (layer, x_, d_) in enumerate(zip(model.layers, inputs, douts))]
    work.append(("CrossEntropyLoss", lambda: criterion(x, Y[:32]), criterion.backward))

    def median_us(fn):
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(repeat):
                fn()
            times.append((time.perf_counter() - t0) / repeat * 1e6)
        return statistics.median(times)
    print(f"{model_name}, batch 32, float32, one BLAS thread: median us of {rounds} rounds of {repeat}")
    total = 0.0
    for name, forward, backward in work:
        f, b = median_us(forward), median_us(backward)
        total += f + b
        print(f"{name:22} forward {f:7.1f}   backward {b:7.1f}")
    print(f"{'sum':22} {total:7.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--layers", choices=("mlp", "wavenet"), help="time each layer of this model instead")
    args = parser.parse_args()
    if args.layers:
        with blas_threads(1):
            return layer_times(args.layers, min(args.rounds, 5))
    with blas_threads(1):
        runs = {"layers": layers_variant(*setup()), "one-piece": one_piece_variant(*setup()),
                "matmuls": one_piece_variant(*setup(), matmuls_only=True)}
        first = {k: r(1) for k, r in runs.items()}
        times = {k: [] for k in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                t0 = time.perf_counter()
                last = run(args.steps)
                times[name].append((time.perf_counter() - t0) / args.steps * 1e6)
                if name != "matmuls":
                    assert last < first[name], f"{name} did not train"
    base = np.array(times["layers"])
    print(f"exercise-4 step, batch 32, float32, one BLAS thread; {args.rounds} interleaved rounds of "
          f"{args.steps} steps; us/step: median; x layers: median of same-round ratios")
    for name, t in times.items():
        print(f"{name:10} {statistics.median(t):7.1f} us   x layers {statistics.median(np.array(t) / base):.2f}")


if __name__ == "__main__":
    main()
