"""Checkpoints: one .npz holding parameters, BatchNorm buffers, the optimizer's state (AdamW's
moments), vocabulary, RunConfig, step, loss history and training time. Written atomically, only when every array is finite. Read without
pickles, and checked against the configuration before anything is allocated: the work of
loading is bounded by the file's size."""
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import ConfigError, RunConfig
from .console import UserError
from .data import BOUNDARY, Vocab
from .files import write_atomic
from .models import build_model, parameter_count, state_shapes
from .optim import optimizer_state_shapes
from .train import is_finite

FORMAT = "numpy-ninja checkpoint"
VERSION = 3
READS = (2, 3)  # version 2: the lecture's models before makemore's, no optimizer state
ADDED_IN_3 = ("n_embd2", "n_layer", "n_head", "weight_decay")  # settings a version-2 config lacks


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be used; the message names the file."""


class NonFiniteModel(ArithmeticError):
    """The model has a non-finite parameter or running statistic; it is not saved."""


@dataclass
class Checkpoint:
    model: object      # a Sequential, in eval mode
    vocab: Vocab
    config: RunConfig
    step: int          # SGD steps done
    lossi: np.ndarray  # float32 (step,): the batch loss of each step
    seconds: float     # training time of those steps, over every session of the run
    optimizer_state: dict  # the optimizer's state_dict() ({} for SGD)


def save_checkpoint(path, model, vocab, config, step, lossi, seconds, optimizer_state=None):
    """Write atomically (files.write_atomic). A model with a non-finite array raises
    NonFiniteModel and writes nothing; an OSError leaves the previous checkpoint as it was."""
    if not is_finite(model):
        raise NonFiniteModel("the model has non-finite parameters or running statistics")
    arrays = {f"state/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in (optimizer_state or {}).items()})
    arrays.update(
        format=np.array(FORMAT), version=np.array(VERSION), config=np.array(json.dumps(config.to_dict())),
        vocab=np.array(vocab.chars), step=np.array(step, np.int64),
        lossi=np.asarray(lossi[:step], np.float32), seconds=np.array(seconds, np.float64))
    write_atomic(path, lambda f: np.savez(f, **arrays))


# the arrays besides the model's state: (dtype kind, shape); lossi's shape is checked against step
SCALARS = {"format": ("U", ()), "version": ("i", ()), "config": ("U", ()), "vocab": ("U", ()),
           "step": ("i", ()), "seconds": ("f", ()), "lossi": ("f", None)}


def read_headers(zf, path):
    """{name: (shape, dtype, ZipInfo)} of every member, from the .npy headers alone."""
    headers = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy") or info.filename[:-4] in headers:
            raise CheckpointError(f"{path}: unexpected member {info.filename!r}")
        if info.compress_type != zipfile.ZIP_STORED:  # np.savez stores; only then is size bounded
            raise CheckpointError(f"{path}: member {info.filename!r} is compressed; checkpoints are stored")
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise CheckpointError(f"{path}: {info.filename}: unsupported .npy version {version}")
            shape, _, dtype = read(f)
            offset = f.tell()
        if dtype.hasobject:
            raise CheckpointError(f"{path}: {info.filename} holds Python objects; checkpoints hold numbers and text")
        if offset + int(np.prod(shape, dtype=object)) * dtype.itemsize != info.file_size:
            raise CheckpointError(f"{path}: {info.filename}: its size disagrees with its header")
        headers[info.filename[:-4]] = (shape, dtype, info)
    return headers


def read(zf, headers, name):
    with zf.open(headers[name][2]) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def check_layout(path, headers, config, vocab_size, version):
    """Every array the configuration implies, with its shape and dtype, and nothing else."""
    expected = {f"state/{k}": (shape, np.dtype(config.dtype)) for k, shape in state_shapes(config, vocab_size).items()}
    if version >= 3:
        optim = optimizer_state_shapes(config, parameter_count(config, vocab_size))
        expected.update({f"optim/{k}": v for k, v in optim.items()})
    state = {k for k in headers if k.startswith(("state/", "optim/"))}
    if state != set(expected):
        missing, extra = sorted(set(expected) - state), sorted(state - set(expected))
        raise CheckpointError(f"{path}: its arrays do not match its configuration "
                              f"(missing {missing}, unexpected {extra})")
    for name, (shape, dtype) in expected.items():
        got_shape, got_dtype, _ = headers[name]
        if got_shape != shape or got_dtype != dtype:
            raise CheckpointError(f"{path}: {name.split('/', 1)[1]} is {got_shape} {got_dtype}, its "
                                  f"configuration implies {shape} {dtype}")


def load_checkpoint(path):
    """A Checkpoint; any defect is a CheckpointError."""
    path = Path(path)
    try:
        if path.is_dir():
            path = path / "checkpoint.npz"
        if not path.exists():
            raise CheckpointError(f"{path}: no such checkpoint")
        if not path.is_file():
            raise CheckpointError(f"{path}: not a checkpoint (not a regular file)")
        with zipfile.ZipFile(path) as zf:
            return _load(zf, path)
    except CheckpointError:
        raise
    except zipfile.BadZipFile:
        raise CheckpointError(f"{path}: not a checkpoint (not an .npz archive)") from None
    except ConfigError as e:
        raise CheckpointError(f"{path}: its configuration is damaged ({e})") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, EOFError, KeyError, RecursionError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None


def _load(zf, path):
    headers = read_headers(zf, path)
    missing = [k for k in SCALARS if k not in headers]
    if missing:
        raise CheckpointError(f"{path}: not a numpy-ninja checkpoint (no {', '.join(missing)})")
    for name, (kind, shape) in SCALARS.items():
        got_shape, dtype, _ = headers[name]
        if dtype.kind != kind or (shape is not None and got_shape != shape) or (shape is None and len(got_shape) != 1):
            raise CheckpointError(f"{path}: {name} is {got_shape} {dtype}, not a checkpoint's")
    if str(read(zf, headers, "format")) != FORMAT:
        raise CheckpointError(f"{path}: not a numpy-ninja checkpoint")
    version = int(read(zf, headers, "version"))
    if version not in READS:
        raise CheckpointError(f"{path}: checkpoint version {version}, this numpy-ninja reads versions "
                              f"{' and '.join(map(str, READS))}")
    settings = json.loads(str(read(zf, headers, "config")))
    if version == 2 and isinstance(settings, dict):
        settings.update({k: None for k in ADDED_IN_3 if k not in settings})
    config = RunConfig.from_dict(settings)
    if config.sequences and config.block_size is None:
        raise CheckpointError(f"{path}: its configuration has no block size")
    chars = str(read(zf, headers, "vocab"))
    if (list(chars) != sorted(set(chars)) or BOUNDARY in chars or not chars
            or any(c.isspace() for c in chars)):
        raise CheckpointError(f"{path}: damaged vocabulary {chars!r}")
    vocab = Vocab(chars)
    check_layout(path, headers, config, len(vocab), version)
    step = int(read(zf, headers, "step"))
    if not 0 <= step <= config.steps or headers["lossi"][0] != (step,):
        raise CheckpointError(f"{path}: inconsistent step count ({step}) and loss history")
    lossi, seconds = read(zf, headers, "lossi").astype(np.float32), float(read(zf, headers, "seconds"))
    if not (np.isfinite(lossi).all() and np.isfinite(seconds) and seconds >= 0):
        raise CheckpointError(f"{path}: damaged loss history or training time")
    state = {k[len("state/"):]: read(zf, headers, k) for k in headers if k.startswith("state/")}
    if not all(np.isfinite(a).all() for a in state.values()):
        raise CheckpointError(f"{path}: the model is not finite (a diverged run)")
    optim = {k[len("optim/"):]: read(zf, headers, k) for k in headers if k.startswith("optim/")}
    if not all(np.isfinite(a).all() for a in optim.values()) or (
            "exp_avg_sq" in optim and (optim["exp_avg_sq"] < 0).any()):
        raise CheckpointError(f"{path}: damaged optimizer state")
    if "step" in optim and int(optim["step"]) != step:
        raise CheckpointError(f"{path}: its optimizer's step count ({int(optim['step'])}) is not "
                              f"the run's ({step})")
    model = build_model(config, len(vocab))
    model.load_state_dict(state)
    model.eval()
    return Checkpoint(model, vocab, config, step, lossi, seconds, optim)
