"""Hypothesis profiles: `ci` (default; bounded, deterministic, no example database) and
`thorough` (long local runs). Choose with NUMPY_NINJA_PROFILE=thorough.

torch runs on one thread: the oracle's tensors are tiny, and on a busy machine two torch threads
wait on each other (the README's "Threads")."""
import os
import signal

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

# The tests that interrupt a run send it SIGINT, as Ctrl-C does. A suite started as a background
# job of a non-interactive shell inherits SIGINT ignored, and so would every run it starts (runs
# keep an ignored signal ignored, as a background job should): give this process and its children
# Ctrl-C back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile(
    "ci", max_examples=100, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", max_examples=2000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("NUMPY_NINJA_PROFILE", "ci"))


@pytest.fixture(scope="session")
def names(tmp_path_factory):
    """A small names file: 800 draws of one to three syllables, 13 letters."""
    rng = np.random.default_rng(0)
    syllables = ["ma", "ri", "an", "na", "el", "la", "jo", "se", "ka", "ty", "ol", "em", "ro"]
    words = sorted({"".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(800)})
    path = tmp_path_factory.mktemp("data") / "names.txt"
    path.write_text("\n".join(words) + "\n")
    return path
