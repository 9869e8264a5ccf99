"""`numpy-ninja export`: a numpy-ninja checkpoint of one of makemore.py's models written as the
model.pt makemore.py saves and loads, ``torch.save(model.state_dict())``.

The state_dict is the one oracle.reference.makemore's torch model of the same type and sizes
holds after loading the checkpoint strictly: makemore's names in torch's order, Linear weights
(fan_out, fan_in), the causal masks makemore registers as (persistent) buffers, every tensor in
makemore's dtype, float32 (a float64 checkpoint's values rounded to the nearest float32).
"""
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import torch

from numpy_ninja.checkpoint import load_checkpoint
from numpy_ninja.config import MAKEMORE_MODELS, SIZES
from numpy_ninja.console import UserError
from numpy_ninja.data import DataError, data_path, describe_data, load_words, sequence_length, words_sha256
from numpy_ninja.files import reason
from oracle.reference.makemore import from_numpy, type_of

MAKEMORE_FILE = "model.pt"  # what makemore.py reads from its --work-dir
MAKEMORE_OPTIONS = ("n_layer", "n_head", "n_embd", "n_embd2")  # its model options, in its order
MAKEMORE_DTYPE = torch.float32  # its models' (it never changes torch's default)


@dataclass
class Exported:
    """What export wrote: the file, makemore's --type, the checkpoint it came from."""

    path: Path
    makemore_type: str
    checkpoint: object      # numpy_ninja.checkpoint.Checkpoint
    parameters: int


def checkpoint_file(path):
    """The file load_checkpoint reads for `path` (a run directory or a checkpoint.npz)."""
    path = Path(path)
    return path / "checkpoint.npz" if path.is_dir() else path


def check_target(out, force):
    """Refuse an --out that is a directory, or a file that exists without --force."""
    if out.is_dir():
        raise UserError(f"{out} is a directory; give the name of the file to write (e.g. {out / MAKEMORE_FILE})")
    if (out.exists() or out.is_symlink()) and not force:
        raise UserError(f"{out} exists; choose another name, or pass --force to replace it")


def publish(path, write, replace):
    """Write path atomically: write(f) into a new temporary file beside it, fsync it, then move it
    into place, over an existing file only if `replace`; otherwise a file that appeared meanwhile
    is refused (a hard link never replaces one). Nothing is left behind on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # this process's own
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UserError(f"{path} exists; choose another name, or pass --force to replace "
                                "it") from None
    except OSError as e:
        raise UserError(f"cannot write {path} ({reason(e)})") from None
    finally:
        tmp.unlink(missing_ok=True)


def export(checkpoint, out, force=False):
    """Write the checkpoint (a run directory or checkpoint.npz) of a makemore model as makemore's
    state_dict into the file `out`; an existing file is replaced only with force. Returns
    Exported; a user's mistake is a UserError (CheckpointError for the checkpoint)."""
    out = Path(out)
    check_target(out, force)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.config.model
    if model not in MAKEMORE_MODELS:
        raise UserError(f"{checkpoint} holds the lecture's {model}, which is not one of makemore.py's "
                        f"models; export takes {', '.join(MAKEMORE_MODELS)}")
    source = checkpoint_file(checkpoint)
    if out.exists() and os.path.samefile(out, source):
        raise UserError(f"{out} is the checkpoint being exported; write the export to another file")
    torch_model = from_numpy(ckpt.model, MAKEMORE_DTYPE)  # strict: every name and shape of makemore's
    state = torch_model.state_dict()
    publish(out, lambda f: torch.save(state, f), replace=force)
    return Exported(out, type_of(ckpt.model), ckpt, sum(p.numel() for p in torch_model.parameters()))


def makemore_command(exported):
    """How makemore.py loads the export: its command line (the file read from --work-dir as
    model.pt), and notes on what it needs that the command cannot say (a rename; a names file
    giving the checkpoint's vocabulary and block size, from which makemore.py takes them)."""
    config, path = exported.checkpoint.config, exported.path
    sizes = [f"--{k.replace('_', '-')} {getattr(config, k)}" for k in MAKEMORE_OPTIONS
             if k in SIZES[config.model]]
    data = data_path(config.data)
    command = " ".join(["python makemore.py --input-file", shlex.quote(str(data)), "--work-dir",
                        shlex.quote(str(path.resolve().parent)), "--type", exported.makemore_type,
                        *sizes, "--sample-only"])
    notes = []
    if path.name != MAKEMORE_FILE:
        notes.append(f"makemore.py reads {MAKEMORE_FILE} in its --work-dir: rename {path.name} to "
                     f"{MAKEMORE_FILE} first")
    try:
        words = load_words(data)
        unchanged = words_sha256(words) == config.data_sha256
    except DataError:
        unchanged = False
    if not unchanged or sequence_length(words) != config.block_size:
        vocab = exported.checkpoint.vocab
        notes.append(f"makemore.py takes the vocabulary and block size from --input-file: give it a "
                     f"names file of the characters {vocab.chars!r} whose longest word has "
                     f"{config.block_size - 1} (the checkpoint's {describe_data(config.data)} "
                     f"{'gives another block size' if unchanged else 'has changed or cannot be read'})")
    if config.dtype != "float32":
        notes.append(f"makemore.py's models are float32: the checkpoint's {config.dtype} values are "
                     "written rounded to float32")
    return command, notes
