"""What a run or an evaluation will need of this machine, counted from the settings before
anything is allocated, so that absurd settings are refused in one line instead of swapping."""
import os

import numpy as np

from .console import UserError
from .models import parameter_count
from .train import DRAW_STEPS


class ResourceError(UserError):
    """Settings this machine cannot hold."""


def physical_memory():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def human(n):
    """Bytes in binary units: '3.6 TiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if n < 1024:
            break
        n /= 1024
    else:
        unit = "YiB"
    return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"


def activation_width(config, vocab_size):
    """Numbers a training forward keeps per example (a context window, or a sequence position)
    for the backward, a lower bound: the widest arrays of each layer, and the logits."""
    c, T = config, config.block_size
    width = {"mlp": lambda: T * c.n_embd + c.n_hidden,
             "wavenet": lambda: T * c.n_embd + c.n_hidden,
             "bigram": lambda: 0,
             "bengio": lambda: T * c.n_embd + c.n_embd2,
             "rnn": lambda: c.n_embd + c.n_embd2,
             "gru": lambda: c.n_embd + 4 * c.n_embd2,
             "bow": lambda: 2 * c.n_embd + c.n_embd2,
             "transformer": lambda: c.n_layer * (9 * c.n_embd + c.n_head * T)}[c.model]()
    return width + vocab_size


def memory_needed(config, vocab_size, n_examples, training=True, n_calibrated=0):
    """{what: bytes} of arrays held at once by an evaluation (training=False) or a training whose
    BatchNorm calibration runs over n_calibrated examples: each term is an allocation made, so
    the sum is a lower bound of what is needed. n_examples: context windows, or words for a
    sequence model."""
    item = np.dtype(config.dtype).itemsize
    n_params = parameter_count(config, vocab_size)
    T = config.block_size
    examples = (f"{n_examples:,} words as sequences of {T}", 16 * n_examples * T) if config.sequences else (
        f"{n_examples:,} examples of context {T}", 8 * n_examples * (T + 1))
    needs = {f"{n_params:,} parameters": item * n_params, examples[0]: examples[1]}
    if training:
        positions = config.batch_size * (T if config.sequences else 1)
        needs.update({
            f"the loss history of {config.steps:,} steps": 4 * config.steps,
            "the gradients": item * n_params,
            f"the batch indices of {DRAW_STEPS} steps": 8 * DRAW_STEPS * config.batch_size,
            "one batch's activations": item * positions * activation_width(config, vocab_size),
            "the calibration's activations": item * n_calibrated * (config.n_hidden or 0),
        })
        if config.optimizer == "adamw":
            needs["AdamW's two moments"] = 2 * item * n_params
    return needs


def check_memory(config, vocab_size, n_examples, training=True, n_calibrated=0):
    """ResourceError when these settings cannot fit in this machine's memory, naming the largest
    need."""
    needs = memory_needed(config, vocab_size, n_examples, training, n_calibrated)
    total, have = sum(needs.values()), physical_memory()
    if total > have:
        what, most = max(needs.items(), key=lambda kv: kv[1])
        raise ResourceError(f"these settings need at least {human(total)} of memory ({human(most)} "
                            f"for {what}); this machine has {human(have)}")
