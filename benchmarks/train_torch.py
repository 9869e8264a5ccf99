"""Train a numpy-ninja model's twin with PyTorch autograd, as a reference for `numpy-ninja train`.

Same data and split, same initial parameters (copied from numpy_ninja.models), same batches
(numpy_ninja.train.batch_indices), same learning-rate schedule, same BatchNorm (n-1 variance in
training, running statistics, calibration over the training split at the end); only the
gradients come from torch autograd. Prints the split losses and the wall time.

    python benchmarks/train_torch.py [--model mlp|wavenet] [--steps N] [--threads N]
"""
import argparse
import json
import time

import torch

from forward import forward
from numpy_ninja.config import DEFAULTS, MODEL_DEFAULTS, RunConfig
from numpy_ninja.data import default_data_path, load_dataset
from numpy_ninja.models import build_model
from numpy_ninja.train import DRAW_STEPS, batch_indices


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=tuple(MODEL_DEFAULTS), default=DEFAULTS.model)
    parser.add_argument("--data", default=str(default_data_path()))
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps)
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = RunConfig(model=args.model, steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    data = load_dataset(args.data, config.block_size, config.seed)
    model = build_model(config, len(data.vocab))
    params = {k: torch.tensor(p.data, requires_grad=True) for k, p in model.named_parameters()}
    buffers = {k: torch.tensor(b) for k, b in model.named_buffers()}
    splits = {k: (torch.from_numpy(X), torch.from_numpy(Y)) for k, (X, Y) in data.splits.items()}
    Xtr, Ytr = splits["train"]

    t0 = time.perf_counter()
    for step in range(config.steps):
        if step % DRAW_STEPS == 0:
            ix = torch.from_numpy(batch_indices(config.seed, len(Ytr), config.batch_size, step))
        rows = ix[step % DRAW_STEPS]
        logits, buffers = forward(model, params, buffers, Xtr[rows], True, torch, torch.Tensor.detach)
        loss = torch.nn.functional.cross_entropy(logits, Ytr[rows])
        for p in params.values():
            p.grad = None
        loss.backward()
        lr = config.learning_rate(step)
        with torch.no_grad():
            for p in params.values():
                p -= lr * p.grad
    seconds = time.perf_counter() - t0

    with torch.no_grad():  # calibrate BatchNorm on the whole split, then evaluate
        _, buffers = forward(model, params, buffers, Xtr, True, torch, torch.Tensor.detach, momentum=1.0)
        losses = {k: torch.nn.functional.cross_entropy(
            forward(model, params, buffers, X, False, torch, torch.Tensor.detach)[0], Y).item()
            for k, (X, Y) in splits.items()}
    print(json.dumps(dict(losses, model=args.model, steps=args.steps, seconds=round(seconds, 1),
                          threads=torch.get_num_threads(), torch=torch.__version__)))


if __name__ == "__main__":
    main()
