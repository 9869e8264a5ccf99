"""The PyTorch side of numpy-ninja: reference gradients by autograd, and the products built on
them. Importing oracle imports neither torch nor hypothesis: the names below load on first use.

    reference/   the shared torch core: the lecture's graph, twins, makemore's models, term
                 scales, lockstep
    grade/       numpy-ninja check: a learner's answers graded      check_solution, cmp
    fuzz/        numpy-ninja check-layer: any layer fuzzed           check_layer
    compare/     numpy-ninja compare: the NumPy-vs-PyTorch report
    convert/     numpy-ninja export and import: models to and from makemore.py's model.pt
    _common.py, _userfile.py   what the commands share (private)

Arrows point down only: a product imports reference, the private modules and numpy_ninja;
reference imports numpy_ninja; no product imports another (tests/test_layout.py holds this)."""

_PUBLIC = {"check_layer": "oracle.fuzz", "check_solution": "oracle.grade", "cmp": "oracle.grade"}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        import importlib
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'oracle' has no attribute {name!r}")
