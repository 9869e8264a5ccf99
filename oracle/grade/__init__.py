"""oracle.grade: `numpy-ninja check`, which grades a learner's own answers to the lecture's
exercises against autograd, says which step is wrong and why (docs/check.md).

    check_solution(path_or_module, ...) -> Report        oracle.grade.check
    cmp(name, dt, t)                                     the notebook's cmp, better

May import numpy_ninja, torch, oracle.reference and oracle's private modules; never another
product (oracle.fuzz, oracle.compare)."""
from oracle.grade.check import check_solution
from oracle.grade.cmp import cmp

__all__ = ["check_solution", "cmp"]
