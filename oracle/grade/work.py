"""What the learner gave, read without running any of it: the cells of a notebook or of a .py
(and where each exercise's answers are in them), or functions exercise1..exercise4 (the
template's form: `numpy-ninja check --template`), or, from Python, any object that has them."""
import ast
from dataclasses import dataclass, field
from pathlib import Path

from numpy_ninja.console import UserError
from oracle.grade.locate import locate
from oracle.grade.sources import Cell, read_cells

FUNCTIONS = ("exercise1", "exercise2", "exercise3", "exercise4")
BACKENDS = ("numpy", "torch")


class SolutionError(UserError):
    """The learner's work cannot be graded at all."""


@dataclass
class Work:
    """kind "cells" (plan: a locate.Plan) or "functions" (obj: a file's path or an object with
    exercise functions). backend: "torch" or "numpy", the arrays the code expects; dtype: the one
    it runs in unless told otherwise (a notebook's float32, the template's float64)."""
    kind: str
    backend: str
    dtype: str
    exercises: list                      # the exercises it answers (or at least attempts)
    source: str = ""                     # the file, for the report
    plan: object = None
    obj: object = None
    cells: list = field(default_factory=list)

    @classmethod
    def read(cls, path_or_object):
        if not isinstance(path_or_object, (str, Path)):
            defined = [k for k, f in enumerate(FUNCTIONS, 1) if callable(getattr(path_or_object, f, None))]
            if not defined:
                raise SolutionError("the solution defines none of " + ", ".join(FUNCTIONS))
            return cls("functions", _backend(getattr(path_or_object, "BACKEND", "numpy")), "float64",
                       defined, obj=path_or_object)
        path = Path(path_or_object)
        cells = read_cells(path)
        functions = _template_functions(cells, path)
        if functions is not None:  # imported apart, in another working directory: by its full path
            defined, backend = functions
            return cls("functions", backend, "float64", defined, str(path), obj=path.resolve(),
                       cells=[Cell(0, cells[0].source, filename=str(path.resolve()))])
        plan = locate(cells)
        if not plan.parts:
            raise SolutionError(f"{path}: no exercise cells found: no cell assigns a gradient of the "
                                "lecture's (dlogprobs ... dC, dlogits, dhprebn) or trains with a "
                                "manual backward" + _unparsed(plan))
        uses_torch = any("torch" in cell.source for part in sum(plan.parts.values(), []) for cell in [part.cell])
        return cls("cells", "torch" if uses_torch else "numpy", "float32", sorted(plan.parts),
                   str(path), plan=plan, cells=cells)


def _backend(value):
    if value not in BACKENDS:
        raise SolutionError(f"BACKEND must be 'numpy' or 'torch', not {value!r}")
    return value


def _template_functions(cells, path):
    """(the exercises whose functions a .py defines at top level, its BACKEND) for a file in the
    template's form, else None. A file whose top level does not parse is reported as such."""
    if len(cells) != 1 or cells[0].number:
        return None
    try:
        body = cells[0].parse().body
    except SyntaxError as e:
        defines = any(f"def {f}(" in cells[0].source for f in FUNCTIONS)
        if defines:
            raise SolutionError(f"{path}:{e.lineno}: does not import: SyntaxError: {e.msg}") from None
        return None
    defined = [k for k, f in enumerate(FUNCTIONS, 1)
               if any(isinstance(s, ast.FunctionDef) and s.name == f for s in body)]
    if not defined:
        return None
    backend = "numpy"
    for s in body:
        if (isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "BACKEND" for t in s.targets)
                and isinstance(s.value, ast.Constant)):
            backend = _backend(s.value.value)
    return defined, backend


def _unparsed(plan):
    if not plan.unparsed:
        return ""
    cell, e = plan.unparsed[0]
    return f" ({len(plan.unparsed)} cell(s) do not parse, the first at {cell.location(e.lineno or 1)}: {e.msg})"
