"""oracle.grade: `numpy-ninja check`, which grades a learner's own answers to the lecture's
exercises against autograd, says which step is wrong and why (docs/check.md).

    check_solution(path_or_module, ...) -> Report        oracle.grade.check
    cmp(name, dt, t)                                     the notebook's cmp, better

May import numpy_ninja, torch, oracle.reference and oracle's private modules; never another
product (oracle.fuzz, oracle.compare)."""
_PUBLIC = {"check_solution": "oracle.grade.check", "cmp": "oracle.grade.cmpline"}
__all__ = sorted(_PUBLIC)


def __getattr__(name):  # loaded on first use: the command's --help needs no torch
    if name in _PUBLIC:
        import importlib
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'oracle.grade' has no attribute {name!r}")
