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


def memory_needed(config, vocab_size, n_examples, training=True, n_calibrated=0):
    """{what: bytes} of arrays held at once by an evaluation (training=False) or a training whose
    BatchNorm calibration runs over n_calibrated examples: each term is an allocation made, so
    the sum is a lower bound of what is needed."""
    item = np.dtype(config.dtype).itemsize
    n_params = parameter_count(config, vocab_size)
    needs = {
        f"{n_params:,} parameters": item * n_params,
        f"{n_examples:,} examples of context {config.block_size}": 8 * n_examples * (config.block_size + 1),
    }
    if training:
        needs.update({
            f"the loss history of {config.steps:,} steps": 4 * config.steps,
            "the gradients": item * n_params,
            f"the batch indices of {DRAW_STEPS} steps": 8 * DRAW_STEPS * config.batch_size,
            "one batch's activations": item * config.batch_size * (config.block_size * config.n_embd
                                                                   + config.n_hidden),
            "the calibration's activations": item * n_calibrated * config.n_hidden,
        })
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
