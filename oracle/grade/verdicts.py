"""What grading says of one tensor: its verdict (worst first), and what a learner's code gave
instead of an array."""
from dataclasses import dataclass, field

VERDICTS = ("error", "wrong", "missing", "approximate", "exact")  # worst first


@dataclass(frozen=True)
class Failed:
    """What the learner's code gave instead of a gradient (it raised, or returned no array)."""
    message: str


@dataclass
class Grade:
    """One tensor in one batch."""
    verdict: str
    figures: dict = None          # max_abs_diff, max_ulp, rel_err (None when not comparable)
    cause: str = None             # local | inherited (wrong only)
    upstream: tuple = ()
    hint: str = ""
    n: int = 0                    # the batch's size
    local_hint: str = field(default="", repr=False)  # a local row's diagnosis, for inherited hints
    reached: bool = True          # False: the learner's code stopped before it, in this batch
    zero: bool = False            # its true gradient is zero up to rounding in this batch


@dataclass(frozen=True)
class NotReached:
    """A gradient the learner's code did not get to: it raised before (the message says where)."""
    message: str
