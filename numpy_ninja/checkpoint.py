"""Checkpoints: one .npz holding parameters, BatchNorm buffers, vocabulary, configuration, step
and loss history. Written atomically; read with allow_pickle=False and validated."""
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .config import RunConfig
from .data import Vocab
from .models import build_model

FORMAT = "numpy-ninja checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


def save_checkpoint(path, model, vocab, config, step, lossi):
    """Write atomically: a temporary file beside the target, fsync, then rename over it."""
    path = Path(path)
    arrays = {f"state/{k}": v for k, v in model.state_dict().items()}
    arrays.update(
        format=np.array(FORMAT), version=np.array(VERSION), config=np.array(json.dumps(config.to_dict())),
        vocab=np.array(vocab.chars), step=np.array(step, np.int64),
        lossi=np.asarray(lossi[:step], np.float32))
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path):
    """Returns (model, vocab, config, step, lossi); any defect is a CheckpointError."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    try:
        if str(arrays["format"]) != FORMAT:
            raise CheckpointError(f"{path}: not a numpy-ninja checkpoint")
        if int(arrays["version"]) != VERSION:
            raise CheckpointError(f"{path}: checkpoint version {int(arrays['version'])}, "
                                  f"this numpy-ninja reads version {VERSION}")
        config = RunConfig.from_dict(json.loads(str(arrays["config"])))
        vocab = Vocab(str(arrays["vocab"]))
        step, lossi = int(arrays["step"]), arrays["lossi"]
        model = build_model(config, len(vocab))
        model.load_state_dict({k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")})
    except CheckpointError:
        raise
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: damaged or mismatched checkpoint ({type(e).__name__}: {e})") from None
    if not 0 <= step <= config.steps or lossi.shape != (step,):
        raise CheckpointError(f"{path}: inconsistent step count ({step}) and loss history")
    return model, vocab, config, step, lossi
