"""`numpy-ninja import`: makemore.py's model.pt (``torch.save(model.state_dict())``) as a
numpy-ninja run directory.

The file is read with ``torch.load(weights_only=True)``, which runs no code from it. The sizes
come from its shapes: the vocabulary size, the block size (where the model holds it: bengio's
context, bow's and the transformer's position table; bigram, rnn and gru take it from the names
file, as makemore.py does), n_embd, n_embd2 and n_layer. The number of heads is not in any shape
(a transformer's attention weights are the same for every split of n_embd into heads): it is an
option, makemore's default 4. The vocabulary is the names file's (makemore.py's: the boundary
'.', then the sorted characters); its size must be the model's and its longest word must fit
the block size.

The run is at step 0 of its steps, with a fresh optimizer (makemore.py saves no optimizer state),
so that ``numpy-ninja eval``, ``sample``, ``export`` and ``train --resume`` (fine-tuning from
makemore's weights) take it as any other run.
"""
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from numpy_ninja.checkpoint import save_checkpoint
from numpy_ninja.config import MODEL_DEFAULTS, ConfigError, RunConfig
from numpy_ninja.console import UserError
from numpy_ninja.data import Vocab, data_ref, describe_data, load_words, sequence_length, words_sha256
from numpy_ninja.files import reason
from numpy_ninja.models import build_model
from numpy_ninja.optim import optimizer_for
from numpy_ninja.rundir import RunDirectory
from oracle.reference.makemore import NUMPY_NAMES

DTYPES = {torch.float32: "float32", torch.float64: "float64"}
MAKEMORE_TYPES = {v: k for k, v in NUMPY_NAMES.items()}  # numpy-ninja's name -> makemore's --type
# a name only this model's state_dict has
SIGNATURES = {"bigram": "logits", "bengio": "mlp.0.weight", "rnn": "cell.xh_to_h.weight",
              "gru": "cell.xh_to_z.weight", "bow": "context_block.mlp.c_fc.weight",
              "transformer": "transformer.wte.weight"}
LAYER = re.compile(r"transformer\.h\.(\d+)\.")


def makemore_type(model):
    """makemore.py's --type of a numpy-ninja model name (bengio is makemore's mlp)."""
    return MAKEMORE_TYPES.get(model, model)


def numpy_ninja_checkpoint(path):
    """Whether path is an .npz archive with the array a numpy-ninja checkpoint opens with."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "format.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def read_state_dict(path):
    """{name: array} and the dtype name of makemore.py's model.pt. Refused (UserError): a file
    torch.load(weights_only=True) cannot read, anything but a dict of tensors by name, a tensor
    that is not a dense float32 or float64 array, tensors of two dtypes, a non-finite value."""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not a regular file" if path.exists() else "no such file"
        raise UserError(f"{path}: {what}")
    try:
        with warnings.catch_warnings():  # about a foreign file's pickle protocol: refused below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0]
        python_object = re.search(r"Unsupported global: GLOBAL (\S+)", detail)
        if python_object:
            raise UserError(f"{path}: holds Python objects ({python_object[1]}), which a weights-only "
                            "load refuses; save model.state_dict(), not the model") from None
        raise UserError(f"{path}: not a file torch.save wrote ({detail})") from None
    except EOFError:
        raise UserError(f"{path}: not a file torch.save wrote (it is empty or cut short)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({reason(e)})") from None
    except Exception as e:  # torch.load reports a damaged or foreign file in many ways
        if numpy_ninja_checkpoint(path):
            raise UserError(f"{path}: a numpy-ninja checkpoint, not makemore.py's model.pt: numpy-ninja "
                            "eval, sample and train --resume take it as it is") from None
        first = (str(e).splitlines() or [""])[0]
        raise UserError(f"{path}: not a file torch.save wrote ({type(e).__name__}: {first})") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: holds a {type(state).__name__}, not a state_dict (the dict of "
                        "tensors by name that torch.save(model.state_dict()) writes)")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            what = "a dict: a training checkpoint? " if isinstance(value, dict) else ""
            raise UserError(f"{path}: its entry {name!r} is {what or type(value).__name__ + ', '}not "
                            "a tensor; makemore.py's model.pt is model.state_dict() itself")
        if value.layout != torch.strided or value.is_quantized or value.dtype not in DTYPES:
            raise UserError(f"{path}: {name} is a {value.dtype} {value.layout} tensor; numpy-ninja's "
                            "models hold dense float32 or float64 arrays")
    dtypes = sorted({DTYPES[v.dtype] for v in state.values()})
    if len(dtypes) > 1:
        raise UserError(f"{path}: mixes {' and '.join(dtypes)} tensors; a model's state_dict has "
                        "one dtype (makemore.py's: float32)")
    arrays = {name: value.detach().numpy() for name, value in state.items()}
    for name, value in arrays.items():
        if not np.isfinite(value).all():
            raise UserError(f"{path}: {name} holds values that are not finite (inf or nan): a "
                            "diverged model")
    return arrays, (dtypes[0] if dtypes else None)


def read_sizes(model, shapes, path):
    """{setting: size} of a numpy-ninja `model` read from makemore's state_dict shapes, and the
    vocabulary size. The block size only where the state_dict holds it; never n_head."""
    makemore = makemore_type(model)
    if SIGNATURES[model] not in shapes:
        others = [m for m, name in SIGNATURES.items() if m != model and name in shapes]
        if others:
            alias = f" (numpy-ninja's {others[0]})" if makemore_type(others[0]) != others[0] else ""
            raise UserError(f"{path}: this is makemore.py's --type {makemore_type(others[0])} "
                            f"state_dict{alias}, not {makemore}; import it with --model {others[0]}")
        raise UserError(f"{path}: not a state_dict of makemore.py's --type {makemore}: it has no "
                        f"{SIGNATURES[model]}")

    def dims(name):
        if name not in shapes:
            raise UserError(f"{path}: not a state_dict of makemore.py's --type {makemore}: it has "
                            f"no {name}")
        if len(shapes[name]) != 2:
            raise UserError(f"{path}: {name} has shape {tuple(shapes[name])}; makemore's is a matrix")
        return shapes[name]

    if model == "bigram":
        return dims("logits")[0], {}
    if model == "bengio":
        (vocab_blank, n_embd), (n_embd2, width) = dims("wte.weight"), dims("mlp.0.weight")
        if n_embd == 0 or width % n_embd:
            raise UserError(f"{path}: mlp.0.weight reads {width} features, not a whole number of "
                            f"embeddings of wte.weight's {n_embd}")
        return vocab_blank - 1, dict(n_embd=n_embd, n_embd2=n_embd2, block_size=width // n_embd)
    if model in ("rnn", "gru"):
        (vocab_size, n_embd), (_, n_embd2) = dims("wte.weight"), dims("start")
        return vocab_size, dict(n_embd=n_embd, n_embd2=n_embd2)
    if model == "bow":
        (vocab_size, n_embd), (block_size, _) = dims("wte.weight"), dims("wpe.weight")
        return vocab_size, dict(n_embd=n_embd, n_embd2=dims("context_block.mlp.c_fc.weight")[0],
                                block_size=block_size)
    (vocab_size, n_embd), (block_size, _) = dims("transformer.wte.weight"), dims("transformer.wpe.weight")
    n_layer = len({m.group(1) for name in shapes for m in [LAYER.match(name)] if m})
    return vocab_size, dict(n_embd=n_embd, n_layer=n_layer, block_size=block_size)


@dataclass
class Imported:
    """What import wrote: the run directory, its configuration and vocabulary."""

    directory: Path
    config: RunConfig
    vocab: Vocab


def import_model(path, model, out, data, n_head=None, dtype=None, seed=None, steps=None):
    """Turn makemore.py's model.pt at `path` into a numpy-ninja run of `model` (a numpy-ninja
    name: bengio for makemore's mlp) in the new or empty directory `out`, with the vocabulary of
    the names file `data`. dtype: the checkpoint's (default the file's); seed and steps: the run's
    (defaults numpy-ninja's). Everything is checked before `out` is made; a failure leaves
    nothing behind. Returns Imported; a user's mistake is a UserError or a ConfigError."""
    path, data = Path(path), Path(data)
    if n_head is not None and model != "transformer":
        raise UserError(f"--n-head applies to the transformer, not to {model}")
    words = load_words(data)
    state, file_dtype = read_state_dict(path)
    vocab_size, sizes = read_sizes(model, {k: v.shape for k, v in state.items()}, path)
    if model == "transformer":
        given = f"--n-head {n_head}"
        if n_head is None:
            n_head = MODEL_DEFAULTS["transformer"]["n_head"]
            given = f"makemore.py's default n_head {n_head} (give --n-head)"
        if n_head < 1 or sizes["n_embd"] % n_head:
            raise UserError(f"{given} does not divide the transformer's n_embd ({sizes['n_embd']}) "
                            "into equal heads")
        sizes["n_head"] = n_head
    sizes.setdefault("block_size", sequence_length(words))
    run = {k: v for k, v in dict(seed=seed, steps=steps).items() if v is not None}  # else the defaults
    try:
        config = RunConfig(model=model, data=data_ref(data), data_sha256=words_sha256(words),
                           dtype=dtype or file_dtype, **run, **sizes)
    except ConfigError as e:
        if e.name in ("seed", "steps"):
            raise
        raise UserError(f"{path}: {e.name} read from its shapes {e.message}") from None
    with np.errstate(over="ignore"):  # float64 beyond float32's range: refused below
        state = {name: value.astype(config.dtype) for name, value in state.items()}
    for name, value in state.items():
        if not np.isfinite(value).all():
            raise UserError(f"{path}: {name} holds values beyond {config.dtype}'s range; import it "
                            "with --dtype float64")
    np_model = build_model(config, vocab_size)
    try:
        np_model.load_makemore_state_dict(state)  # names, shapes, masks
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    vocab = Vocab.from_words(words)
    if len(vocab) != vocab_size:
        raise UserError(f"{describe_data(config.data)} gives a vocabulary of {len(vocab)} tokens ('.' "
                        f"and {len(vocab.chars)} characters), the model has {vocab_size}: give --data "
                        "the names file the model was trained on")
    longest = max(words, key=len)
    if len(longest) >= config.block_size:
        raise UserError(f"{describe_data(config.data)}: the word {longest!r} has {len(longest)} "
                        f"characters; the model reads words of at most {config.block_size - 1}")
    optimizer = optimizer_for(config, np_model.parameters())
    directory = RunDirectory.create(out)
    saved = False
    try:
        save_checkpoint(directory.checkpoint, np_model, vocab, config, 0, np.zeros(0, np.float32),
                        0.0, optimizer.state_dict())
        saved = True
    except OSError as e:
        raise UserError(f"cannot write {directory.checkpoint} ({reason(e)})") from None
    finally:
        directory.release(keep=saved)
    return Imported(directory.path, config, vocab)
