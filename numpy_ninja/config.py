"""RunConfig: every setting of a training run, its default, its checks, and the learning-rate
schedule. The CLI, checkpoints, the oracle's lockstep report and the benchmarks all use it."""
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from fractions import Fraction

from .data import SHIPPED

DTYPES = ("float32", "float64")
# the architecture settings, each model taking some of them (SIZES)
ARCHITECTURE = ("block_size", "n_embd", "n_hidden", "n_embd2", "n_layer", "n_head")
# the lecture's networks: SGD on context windows, the rate dropping after lr_decay_frac of the steps
_LECTURE = dict(data="windows", optimizer="sgd", lr=0.1, lr_final=0.01, weight_decay=0.0,
                checkpoint_every=10_000)
# makemore.py's: AdamW (its settings) at a constant rate, on whole words (block size from the data)
_MAKEMORE = dict(data="sequences", optimizer="adamw", lr=5e-4, lr_final=5e-4,
                 lr_decay_frac=Fraction(1), weight_decay=0.01, checkpoint_every=1_000)
MODEL_DEFAULTS = {
    "mlp": dict(_LECTURE, block_size=3, n_embd=10, n_hidden=200, steps=200_000,
                lr_decay_frac=Fraction(1, 2)),
    "wavenet": dict(_LECTURE, block_size=8, n_embd=24, n_hidden=128, steps=200_000,
                    lr_decay_frac=Fraction(3, 4)),
    # makemore.py's --type, its defaults; steps: about where the test loss stops falling on
    # numpy-ninja's split (README, "Results")
    "bigram": dict(_MAKEMORE, steps=20_000),
    "bengio": dict(_MAKEMORE, n_embd=64, n_embd2=64, steps=25_000),    # makemore's mlp
    "rnn": dict(_MAKEMORE, n_embd=64, n_embd2=64, steps=30_000),
    "gru": dict(_MAKEMORE, n_embd=64, n_embd2=64, steps=30_000),
    "bow": dict(_MAKEMORE, n_embd=64, n_embd2=64, steps=20_000),
    "transformer": dict(_MAKEMORE, n_layer=4, n_head=4, n_embd=64, steps=8_000),
}
LECTURE_MODELS = tuple(m for m, d in MODEL_DEFAULTS.items() if d["data"] == "windows")
MAKEMORE_MODELS = tuple(m for m, d in MODEL_DEFAULTS.items() if d["data"] == "sequences")
# the architecture settings each model takes (a sequence model's block size comes from the data)
SIZES = {m: tuple(k for k in ARCHITECTURE if k in d or (k == "block_size" and d["data"] == "sequences"))
         for m, d in MODEL_DEFAULTS.items()}
INT64_MAX = 2**63 - 1  # sizes, steps and seeds are stored and indexed as int64


class ConfigError(ValueError):
    """A setting that cannot be used. str() is one line starting with the setting's name."""

    def __init__(self, name, message):
        self.name, self.message = name, message
        super().__init__(f"{name}: {message}")


def _int(name, value, low, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, f"must be {what}, got {value!r}")
    if value > INT64_MAX:
        raise ConfigError(name, f"must be at most {INT64_MAX} (a 64-bit integer), got {value}")
    return value


def _rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value >= 0):
        raise ConfigError(name, f"must be a finite number >= 0, got {value!r}")
    return float(value)


def option_name(setting):
    """The command-line option of a setting: n_embd -> --n-embd."""
    return "--" + setting.replace("_", "-")


def _choice(name, value, choices):
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class RunConfig:
    """The settings of one run. None means the model's default (MODEL_DEFAULTS): construction
    fills the defaults in and checks every field, raising ConfigError. An architecture setting
    the model does not take (SIZES) stays None and may not be given. A sequence model's
    block_size stays None until its data is loaded (the longest word plus one)."""

    model: str = "mlp"
    data: str = SHIPPED          # a names file (absolute path), or SHIPPED for the shipped list
    data_sha256: str = ""        # the word list's hash (data.words_sha256), set when data is loaded
    seed: int = 42
    dtype: str = "float32"
    block_size: int = None       # context (lecture models); sequence length (makemore's)
    n_embd: int = None           # embedding size
    n_hidden: int = None         # hidden units (lecture models)
    n_embd2: int = None          # hidden size of makemore's bengio, rnn, gru and bow
    n_layer: int = None          # transformer blocks
    n_head: int = None           # attention heads per block
    batch_size: int = 32
    steps: int = None
    lr: float = None             # the learning rate before lr_decay_step
    lr_final: float = None       # and from it on
    lr_decay_step: int = None    # default: the model's lr_decay_frac of the steps
    weight_decay: float = None   # AdamW's decoupled weight decay (0 for SGD)
    lr_changes: tuple = ()       # ((step, lr, lr_final), ...): new rates from that step on (--resume --lr)
    checkpoint_every: int = None

    def __post_init__(self):
        d = MODEL_DEFAULTS[_choice("model", self.model, tuple(MODEL_DEFAULTS))]
        sizes = SIZES[self.model]
        for k in ARCHITECTURE:
            if k not in sizes and getattr(self, k) is not None:
                takes = f"it takes {', '.join(option_name(s) for s in sizes)}" if sizes else "it has no sizes to set"
                raise ConfigError(k, f"does not apply to the {self.model} model ({takes})")
        steps = _int("steps", d["steps"] if self.steps is None else self.steps, 1, "a positive integer")
        resolved = {k: d.get(k) if getattr(self, k) is None else getattr(self, k)
                    for k in (*sizes, "lr", "lr_final", "weight_decay", "checkpoint_every")}
        resolved["steps"] = steps
        resolved["lr_decay_step"] = (int(steps * d["lr_decay_frac"]) if self.lr_decay_step is None
                                     else self.lr_decay_step)
        for k, v in resolved.items():
            object.__setattr__(self, k, v)  # frozen: set once, here
        for k in sizes:
            if getattr(self, k) is not None:  # a sequence model's block size: None until its data
                _int(k, getattr(self, k), 1, "a positive integer")
        _int("lr_decay_step", self.lr_decay_step, 0, "an integer >= 0")
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError("data", f"must be a file name, got {self.data!r}")
        if not (isinstance(self.data_sha256, str) and re.fullmatch(r"([0-9a-f]{64})?", self.data_sha256)):
            raise ConfigError("data_sha256", f"must be a SHA-256 hex digest, got {self.data_sha256!r}")
        _int("seed", self.seed, 0, "an integer >= 0")
        _choice("dtype", self.dtype, DTYPES)
        if self.batchnorm:
            _int("batch_size", self.batch_size, 2, "at least 2 (BatchNorm needs 2 rows to estimate a variance)")
        else:
            _int("batch_size", self.batch_size, 1, "a positive integer")
        _int("checkpoint_every", self.checkpoint_every, 1, "a positive integer")
        object.__setattr__(self, "lr", _rate("lr", self.lr))
        object.__setattr__(self, "lr_final", _rate("lr_final", self.lr_final))
        object.__setattr__(self, "weight_decay", _rate("weight_decay", self.weight_decay))
        if self.optimizer == "sgd" and self.weight_decay:
            raise ConfigError("weight_decay", f"applies to AdamW, which the {self.model} model is not "
                                              "trained with (the lecture's models use SGD)")
        object.__setattr__(self, "lr_changes", self._checked_changes())
        T = self.block_size
        if self.model == "wavenet" and (T < 2 or T & (T - 1)):
            raise ConfigError("block_size", f"wavenet needs a power-of-two context of at least 2, got {T}")
        if self.model == "transformer" and self.n_embd % self.n_head:
            raise ConfigError("n_head", f"must divide --n-embd ({self.n_embd}) into equal heads, got {self.n_head}")

    @property
    def sequences(self):
        """Whether the model trains on makemore's whole-word sequences (else on the lecture's
        context windows)."""
        return MODEL_DEFAULTS[self.model]["data"] == "sequences"

    @property
    def optimizer(self):
        """"sgd" (the lecture's models) or "adamw" (makemore's)."""
        return MODEL_DEFAULTS[self.model]["optimizer"]

    @property
    def batchnorm(self):
        """Whether the model has BatchNorm layers (calibrated after training)."""
        return self.model in LECTURE_MODELS

    def _checked_changes(self):
        if not isinstance(self.lr_changes, (tuple, list)):
            raise ConfigError("lr_changes", f"must be a list of [step, lr, lr_final], got {self.lr_changes!r}")
        out, last = [], -1
        for change in self.lr_changes:
            if not isinstance(change, (tuple, list)) or len(change) != 3:
                raise ConfigError("lr_changes", f"each entry must be [step, lr, lr_final], got {change!r}")
            step = _int("lr_changes", change[0], last + 1, f"a step in increasing order (after {last})")
            if step > self.steps:
                raise ConfigError("lr_changes", f"step {step} is after the last step ({self.steps})")
            out.append((step, _rate("lr", change[1]), _rate("lr_final", change[2])))
            last = step
        return tuple(out)

    def rates_at(self, step):
        """(lr, lr_final) in force at step `step`: the latest change in lr_changes at or before it."""
        lr, lr_final = self.lr, self.lr_final
        for at, lr_at, final_at in self.lr_changes:
            if step >= at:
                lr, lr_final = lr_at, final_at
        return lr, lr_final

    def learning_rate(self, step):
        """The SGD rate of step `step` (0-based): lr before lr_decay_step, lr_final from it on."""
        lr, lr_final = self.rates_at(step)
        return lr if step < self.lr_decay_step else lr_final

    def rate_changes_after(self, step):
        """The first step after `step` at which the rate may change (the decay step, a change of
        lr_changes), or None: the rate is learning_rate(step) until then."""
        later = [at for at in (self.lr_decay_step, *(c[0] for c in self.lr_changes)) if at > step]
        return min(later, default=None)

    def with_rates(self, step, lr=None, lr_final=None):
        """This run with new rates from `step` on (what --resume --lr/--lr-final records)."""
        if lr is not None and step >= self.lr_decay_step:
            raise ConfigError("lr", f"the run is at step {step}, past its decay step "
                                    f"({self.lr_decay_step}), where --lr no longer applies: "
                                    "set --lr-final instead")
        lr_now, final_now = self.rates_at(step)
        change = (step, lr_now if lr is None else lr, final_now if lr_final is None else lr_final)
        return replace(self, lr_changes=tuple(c for c in self.lr_changes if c[0] < step) + (change,))

    def to_dict(self):
        """JSON-ready: lr_changes as lists."""
        d = asdict(self)
        d["lr_changes"] = [list(c) for c in self.lr_changes]
        return d

    @classmethod
    def from_dict(cls, d):
        """Strict: every setting present, none unknown (a stored configuration is complete)."""
        if not isinstance(d, dict):
            raise ConfigError("config", f"must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in d]
        if missing:
            raise ConfigError("config", f"missing setting {', '.join(missing)}")
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError("config", f"unknown setting {', '.join(map(str, unknown))}")
        return cls(**d)


DEFAULTS = RunConfig()  # the defaults, resolved for the default model
