"""Train makemore.py's models in PyTorch on numpy-ninja's data, split and evaluation: the reference
that `numpy-ninja train --model bigram|bengio|rnn|gru|bow|transformer` is compared with.

The torch side is makemore.py's own training: its models (oracle/reference/makemore.py, built
with makemore's structure and torch's default initialisation after torch.manual_seed(seed)),
torch.optim.AdamW(lr 5e-4, betas (0.9, 0.99), eps 1e-8, weight decay 0.01) on every parameter,
batches of words drawn uniformly with replacement (makemore's RandomSampler) from a
torch.Generator seeded with seed, padded to the block size as makemore runs them; one thread.
The data are numpy-ninja's (load_words, split_words with --split-seed, build_sequences of
sequence_length), so both sides see the same words.

--numpy trains numpy-ninja's model instead, as `numpy-ninja train` does (its seed 42 for the
split, the initialisation and the batches; trimmed batches; one BLAS thread), so that both sides
can be evaluated along the way by the same schedule.

Every --eval-every steps and at the end, the train, val and test losses (the mean over every
counted target, as numpy_ninja.train.split_loss computes them) and the training seconds so far
(evaluation excluded) are printed as a JSON line; a table of them follows on stderr.

    python benchmarks/train_makemore.py --model transformer [--steps N] [--seed S]
        [--eval-every N] [--numpy]
"""
import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from numpy_ninja.config import MAKEMORE_MODELS, RunConfig
from numpy_ninja.data import IGNORE, Dataset, data_ref, default_data_path, load_words, sequence_length
from numpy_ninja.models import build_model
from numpy_ninja.optim import optimizer_for
from numpy_ninja.train import blas_threads, split_loss, train_steps
from oracle.reference.makemore import NUMPY_NAMES, ModelConfig, build

SPLITS = ("train", "val", "test")
MAKEMORE_TYPE = {ours: theirs for theirs, ours in NUMPY_NAMES.items()}  # bengio -> mlp
SPLIT_SEED = RunConfig().seed  # numpy-ninja's default seed, which draws its split
EVAL_WORDS = 1000  # words per forward when evaluating


def torch_loss(model, X, Y):
    """Mean cross-entropy over every counted target of (X, Y), the whole padded sequences."""
    total, n = 0.0, int((Y != IGNORE).sum())
    model.eval()
    with torch.no_grad():
        for i in range(0, len(Y), EVAL_WORDS):
            logits, _ = model(X[i:i + EVAL_WORDS])
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y[i:i + EVAL_WORDS].reshape(-1),
                                     ignore_index=IGNORE, reduction="sum").item()
    model.train()
    return total / n


class TorchSide:
    """makemore.py's model and AdamW, its batches from a seeded torch.Generator."""

    def __init__(self, config, data, seed):
        sizes = {k: getattr(config, k) for k in ("n_layer", "n_head", "n_embd", "n_embd2")
                 if getattr(config, k) is not None}
        torch.manual_seed(seed)
        self.model = build(MAKEMORE_TYPE.get(config.model, config.model),
                           ModelConfig(block_size=config.block_size, vocab_size=len(data.vocab), **sizes))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, betas=(0.9, 0.99),
                                           eps=1e-8, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(seed)
        self.splits = {k: tuple(map(torch.from_numpy, data.splits[k])) for k in SPLITS}
        self.batch_size = config.batch_size
        self.parameters = sum(p.numel() for p in self.model.parameters())

    def train(self, start, stop):
        X, Y = self.splits["train"]
        for _ in range(start, stop):
            rows = torch.randint(len(Y), (self.batch_size,), generator=self.generator)
            _, loss = self.model(X[rows], Y[rows])
            self.model.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    def losses(self):
        return {k: torch_loss(self.model, *self.splits[k]) for k in SPLITS}


class NumpySide:
    """numpy-ninja's model and AdamW, trained by train_steps as `numpy-ninja train` runs them."""

    def __init__(self, config, data):
        self.config, self.data = config, data
        self.model = build_model(config, len(data.vocab))
        self.optimizer = optimizer_for(config, self.model.parameters())
        self.lossi = np.zeros(config.steps, np.float32)
        self.parameters = int(self.optimizer.data.size)

    def train(self, start, stop):
        Xtr, Ytr = self.data.splits["train"]
        with blas_threads(1):
            train_steps(self.model, self.optimizer, Xtr, Ytr, self.config, start, stop, self.lossi)

    def losses(self):
        with blas_threads(1):
            return {k: split_loss(self.model, *self.data.splits[k]) for k in SPLITS}


def commit():
    """The checkout's commit, or None."""
    run = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
                         capture_output=True, text=True)
    return run.stdout.strip() or None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MAKEMORE_MODELS, default="transformer")
    parser.add_argument("--data", default=str(default_data_path()))
    parser.add_argument("--steps", type=int, help="optimizer steps (default: numpy-ninja's for the model)")
    parser.add_argument("--seed", type=int, default=3407,
                        help="torch's seed for the initialisation and the batches (default: makemore's, 3407)")
    parser.add_argument("--split-seed", type=int, default=SPLIT_SEED,
                        help=f"seed of numpy-ninja's 80/10/10 split (default: {SPLIT_SEED})")
    parser.add_argument("--eval-every", type=int, help="evaluate every this many steps (default: at the end only)")
    parser.add_argument("--numpy", action="store_true", help="train numpy-ninja's model instead (its own seed)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    words = load_words(args.data)
    config = RunConfig(model=args.model, steps=args.steps, data=data_ref(args.data))
    config = replace(config, block_size=sequence_length(words),
                     seed=config.seed if args.numpy else args.split_seed)
    data = Dataset.from_words(args.data, words, config.block_size, config.seed, sequences=True)
    side = NumpySide(config, data) if args.numpy else TorchSide(config, data, args.seed)
    every = args.eval_every or config.steps
    common = dict(side="numpy" if args.numpy else "torch", model=args.model, parameters=side.parameters,
                  seed=config.seed if args.numpy else args.seed, split_seed=config.seed,
                  threads=1, commit=commit(), torch=torch.__version__, numpy=np.__version__)
    rows, step, seconds = [], 0, 0.0
    while step < config.steps:
        stop = min(config.steps, (step // every + 1) * every)
        t0 = time.perf_counter()
        side.train(step, stop)
        seconds += time.perf_counter() - t0
        step = stop
        losses = side.losses()
        row = dict(common, step=step, seconds=round(seconds, 1), **losses, load=os.getloadavg()[0])
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f"{common['side']} {args.model} ({side.parameters:,} parameters)\n"
          f"{'step':>7} {'seconds':>8} {'train':>7} {'val':>7} {'test':>7} {'load':>5}", file=sys.stderr)
    for r in rows:
        print(f"{r['step']:>7} {r['seconds']:>8.1f} {r['train']:>7.4f} {r['val']:>7.4f} {r['test']:>7.4f} "
              f"{r['load']:>5.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
