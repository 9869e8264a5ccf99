"""Time one training step of numpy-ninja against PyTorch (and JAX), interleaved, in one run.

Variants, on the same batches from the same initialisation (float32):
  numpy         numpy_ninja.train.train_steps, the step `numpy-ninja train --model MODEL` runs:
                SGD for the lecture's mlp and wavenet, AdamW for makemore's models, whose
                batches it cuts after their last counted position (numpy_ninja.train.trimmed)
  torch         the same model in torch with autograd: the lecture's models' twin
                (oracle.reference.twin) + SGD; makemore's models with makemore.py's module
                structure (oracle.reference.makemore.from_numpy) + torch.optim.AdamW (makemore's
                settings), on the same trimmed batches: like for like
  torch-padded  makemore's models only: the same torch step on the batches as makemore.py runs
                them, every sequence padded to the block size: makemore as it runs
  torch-manual  the lecture's exercise-4 loop in torch under no_grad (mlp only)
  jax           a jax.jit-compiled value-and-grad + update step (SGD, or AdamW as torch's),
                called once per step, on the same batches (when jax is installed: pip install
                "jax[cpu]"; benchmarks/jax_step.py)
  jax-scan      the lecture's models only: the same step inside one lax.scan per round
Rounds of up to 200 steps (makemore's models: about half a second of numpy's) go round-robin
through the variants, 21 times (--quick: 7 rounds of up to 100, the lecture mlp at its default
size only). A variant's time is the median over its rounds of
microseconds per step; its ratio to numpy is the median over the rounds of its time over numpy's
in the same round, which cancels most of a shared machine's drift in speed. Peak memory
(--memory) is measured in a fresh process per variant and size: the peak resident set during 50
steps (VmHWM, reset after set-up) minus the resident set after set-up.

    python benchmarks/bench_step.py [--model mlp wavenet bigram bengio rnn gru bow transformer]
                                    [--quick] [--memory] [--json FILE] [--threads N]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from numpy_ninja.config import LECTURE_MODELS, MAKEMORE_MODELS, MODEL_DEFAULTS, RunConfig
from numpy_ninja.data import default_data_path, load_dataset, load_words
from numpy_ninja.models import build_model
from numpy_ninja.optim import optimizer_for
from numpy_ninja.run import with_sequence_length
from numpy_ninja.train import DRAW_STEPS, batch_indices, batch_rows, blas_threads, train_steps, trimmed
from oracle.reference.makemore import from_numpy
from oracle.reference.twin import build_twin


def setup(model_name, batch_size, hidden, seed=None):
    """The model's defaults at this size (hidden: the lecture's models' n_hidden; 0 for makemore's,
    whose block size is the data's), float32, trained at its initial rate throughout."""
    extra = {} if seed is None else dict(seed=seed)
    if model_name in MAKEMORE_MODELS:
        config = RunConfig(model=model_name, dtype="float32", batch_size=batch_size, steps=10**9, **extra)
        config = with_sequence_length(config, load_words(default_data_path()))
    else:
        config = RunConfig(model=model_name, dtype="float32", n_hidden=hidden or None,
                           batch_size=batch_size, steps=10**9, lr_decay_step=10**9, **extra)
    data = load_dataset(default_data_path(), config.block_size, config.seed, config.sequences)
    X, Y = data.splits["train"]
    return config, build_model(config, len(data.vocab)), X, Y


def numpy_variant(config, model, X, Y):
    lossi = np.zeros(DRAW_STEPS * 1000, np.float32)
    optimizer = optimizer_for(config, model.parameters())
    step = [0]

    def run(n):
        train_steps(model, optimizer, X, Y, config, step[0], step[0] + n, lossi)
        step[0] += n
        return float(lossi[step[0] - 1])
    return run


def batches(config, n_train):
    """step -> its batch's row indices, a draw of DRAW_STEPS steps at a time as train_steps."""
    drawn = {}

    def rows(step):
        if step // DRAW_STEPS not in drawn:
            drawn.clear()
            drawn[step // DRAW_STEPS] = batch_indices(config.seed, n_train, config.batch_size, step)
        return drawn[step // DRAW_STEPS][step % DRAW_STEPS]
    return rows


def torch_variant(config, model, X, Y):
    if config.sequences:
        return makemore_torch_variant(config, model, X, Y, trim=True)
    twin = build_twin(model, torch.float32)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    step = [0]

    def run(n):
        for _ in range(n):
            s = step[0]
            rows = torch.from_numpy(batch_rows(config.seed, len(Y), config.batch_size, s))
            loss = F.cross_entropy(twin(Xt[rows]), Yt[rows])
            twin.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for p in twin.parameters():
                    p -= config.learning_rate(s) * p.grad
            step[0] += 1
        return loss.item()
    return run


def makemore_torch_variant(config, model, X, Y, trim):
    """makemore.py's training step: its model (our initial values), torch.optim.AdamW with its
    settings, `logits, loss = model(X, Y); model.zero_grad(set_to_none=True); loss.backward();
    optimizer.step()`; on our batches, trimmed as ours (trim=True) or padded as makemore's."""
    tm = from_numpy(model, torch.float32)
    optimizer = torch.optim.AdamW(tm.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(0.9, 0.99), eps=1e-8)
    rows_of, step = batches(config, len(Y)), [0]

    def run(n):
        for _ in range(n):
            rows = rows_of(step[0])
            Xb, Yb = X[rows], Y[rows]
            if trim:
                Xb, Yb = trimmed(Xb, Yb)
            _, loss = tm(torch.from_numpy(Xb), torch.from_numpy(Yb))
            tm.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step[0] += 1
        return loss.item()
    return run


def padded_variant(config, model, X, Y):
    return makemore_torch_variant(config, model, X, Y, trim=False)


def manual_variant(config, model, X, Y):
    """The lecture's exercise 4: forward, then the hand-written backward, in torch."""
    p = {k: torch.tensor(v) for k, v in model.state_dict().items()}
    C, W1, b1, W2, b2 = p["0.weight"], p["2.weight"], p["2.bias"], p["5.weight"], p["5.bias"]
    bngain, bnbias = p["3.weight"][None].clone(), p["3.bias"][None].clone()
    params = [C, W1, b1, W2, b2, bngain, bnbias]
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    step = [0]

    @torch.no_grad()
    def run(k):
        for _ in range(k):
            s = step[0]
            rows = torch.from_numpy(batch_rows(config.seed, len(Y), config.batch_size, s))
            Xb, Yb = Xt[rows], Yt[rows]
            n = Xb.shape[0]
            emb = C[Xb]
            embcat = emb.view(n, -1)
            hprebn = embcat @ W1 + b1
            bnmean = hprebn.mean(0, keepdim=True)
            bnvar = hprebn.var(0, keepdim=True, unbiased=True)
            bnvar_inv = (bnvar + 1e-5) ** -0.5
            bnraw = (hprebn - bnmean) * bnvar_inv
            h = torch.tanh(bngain * bnraw + bnbias)
            logits = h @ W2 + b2
            loss = F.cross_entropy(logits, Yb)
            dlogits = F.softmax(logits, 1)
            dlogits[range(n), Yb] -= 1
            dlogits /= n
            dh, dW2, db2 = dlogits @ W2.T, h.T @ dlogits, dlogits.sum(0)
            dhpreact = (1.0 - h**2) * dh
            dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
            dbnbias = dhpreact.sum(0, keepdim=True)
            dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                                - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
            dembcat, dW1, db1 = dhprebn @ W1.T, embcat.T @ dhprebn, dhprebn.sum(0)
            demb = dembcat.view(emb.shape)
            dC = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))
            for q, g in zip(params, [dC, dW1, db1, dW2, db2, dbngain, dbnbias]):
                q -= config.learning_rate(s) * g
            step[0] += 1
        return loss.item()
    return run


def jax_variants():
    """The JAX variants, or none when jax is not installed."""
    try:
        from jax_step import jax_variant, makemore_jax_variant
    except ImportError:
        return {}

    def make(scanned):
        def variant(config, model, X, Y):
            if config.sequences:
                return makemore_jax_variant(model, config.model, X, Y, config.seed, config.batch_size,
                                            config.lr, (0.9, 0.99), 1e-8, config.weight_decay)
            return jax_variant(model, X, Y, config.seed, config.batch_size, config.lr, scanned)
        return variant
    return {"jax": make(False), "jax-scan": make(True)}


VARIANTS = {"numpy": numpy_variant, "torch": torch_variant, "torch-padded": padded_variant,
            "torch-manual": manual_variant, **jax_variants()}


def variants_of(model_name):
    """The variants that apply to a model."""
    only = {"torch-padded": MAKEMORE_MODELS, "torch-manual": ("mlp",), "jax-scan": LECTURE_MODELS}
    return [n for n in VARIANTS if model_name in only.get(n, (model_name,))]


def time_variants(model_name, batch_size, hidden, rounds, round_steps, names):
    """Per variant: median us/step over the rounds, the median over the rounds of its time
    relative to numpy's in the same round (this machine's speed drifts between rounds; a ratio
    of adjacent rounds cancels most of it), and its first and last loss. round_steps None: as
    many steps as numpy runs in about half a second."""
    runs, first, times = {}, {}, {n: [] for n in names}
    for name in names:
        runs[name] = VARIANTS[name](*setup(model_name, batch_size, hidden))
        first[name] = runs[name](1)
        t0 = time.perf_counter()
        runs[name](20)  # warm-up
        if name == "numpy" and round_steps is None:
            round_steps = max(5, min(200, int(0.5 / ((time.perf_counter() - t0) / 20))))
        if round_steps > 20:
            runs[name](round_steps - 20)  # the rest of a round's warm-up
    for _ in range(rounds):
        for name in names:
            t0 = time.perf_counter()
            last = runs[name](round_steps)
            times[name].append((time.perf_counter() - t0) / round_steps * 1e6)
    base = np.array(times["numpy"])
    return {n: dict(us=float(np.median(times[n])), per_numpy=float(np.median(np.array(times[n]) / base)),
                    first_loss=first[n], last_loss=last) for n in names}


def peak_memory_mb(variant, model_name, batch_size, hidden, steps, threads):
    """Growth of the peak resident set from after set-up to after `steps` steps, in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child", variant,
                          model_name, str(batch_size), str(hidden), str(steps)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def rss_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def child(variant, model_name, batch_size, hidden, steps):
    run = VARIANTS[variant](*setup(model_name, int(batch_size), int(hidden)))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set (VmHWM) to the current one
    before = rss_kb("VmRSS:")
    run(int(steps))
    print((rss_kb("VmHWM:") - before) / 1024)


def blas_info():
    """Which BLAS and kernel NumPy runs (threadpoolctl), or how to find out."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS kernel: pip install threadpoolctl to report it"
    return "; ".join(f"{i['internal_api']} {i['version']}, {i.get('architecture')} kernel, "
                     f"{i['num_threads']} threads" for i in threadpool_info() if i["user_api"] == "blas")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", choices=tuple(MODEL_DEFAULTS), default=list(LECTURE_MODELS),
                        help="the models to time (default: the lecture's mlp at six sizes and wavenet); "
                             "makemore's models at makemore's defaults, batch 32")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory (slower)")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--threads", type=int, default=1,
                        help="NumPy's BLAS threads (as `numpy-ninja train --threads`) and "
                             "torch.set_num_threads (default: 1: these matrices are small, and a "
                             "second thread waits on the first whenever the machine is busy)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with blas_threads(args.threads):
        return child(*args.child) if args.child else report(args)


def report(args):
    rounds, round_steps = (7, 100) if args.quick else (21, 200)
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{os.cpu_count()} cores; "
          + "; ".join(f"{v}={os.environ.get(v, 'unset')}" for v in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE"))
          + f"; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(blas_info())  # inside blas_threads: the threads the numpy variant runs on
    if "jax" in VARIANTS:
        import jax
        print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    print(f"float32; {rounds} interleaved rounds of up to {round_steps} steps (fewer for larger sizes;\n"
          f"makemore's models: as many as numpy runs in about half a second);\n"
          f"us/step: median over the rounds; x numpy: median over the rounds of the variant's time over\n"
          f"numpy's in the same round\n")
    results = {}
    sizes = []
    for m in args.model:
        if m == "mlp":
            sizes += [("mlp", 32, 200)] if args.quick else [("mlp", b, h) for h in (200, 1024) for b in (32, 256, 2048)]
        else:
            sizes.append((m, 32, 128 if m == "wavenet" else 0))
    shown = [n for n in VARIANTS if n != "numpy" and any(n in variants_of(m) for m, _, _ in sizes)]
    short = {"torch-manual": "manual", "torch-padded": "padded"}
    print(f"{'model':11} {'batch':>5} {'hidden':>6} {'numpy':>9} {'steps/s':>8} "
          + " ".join(f"{short.get(n, n):>9}" for n in shown) + "   x numpy: "
          + " ".join(f"{short.get(n, n):>8}" for n in shown)
          + ("   peak MB " + "/".join(["numpy"] + [short.get(n, n) for n in shown]) if args.memory else ""))
    for model_name, b, h in sizes:
        names = variants_of(model_name)
        steps = (None if model_name in MAKEMORE_MODELS  # about half a second of numpy's steps
                 else max(5, min(round_steps, round_steps * 6400 // (b * h))))  # ~equal time per size
        r = time_variants(model_name, b, h, rounds, steps, names)
        for n in names:
            assert r[n]["last_loss"] < r[n]["first_loss"], f"{n} did not train"
        nan = dict(us=float("nan"), per_numpy=float("nan"))
        line = (f"{model_name:11} {b:5} {h or '-':>6} {r['numpy']['us']:9.1f} {1e6 / r['numpy']['us']:8.0f} "
                + " ".join(f"{r.get(n, nan)['us']:9.1f}" for n in shown) + "            "
                + " ".join(f"{r.get(n, nan)['per_numpy']:8.2f}" for n in shown))
        if args.memory:
            mem = {n: peak_memory_mb(n, model_name, b, h, 50, args.threads) for n in names}
            r["peak_mb"] = mem
            line += "   " + "/".join(f"{mem[n]:.1f}" if n in mem else "-" for n in ["numpy"] + shown)
        print(line, flush=True)
        results[f"{model_name} batch {b} hidden {h}"] = r
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
