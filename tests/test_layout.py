"""The arrows of docs/DESIGN.md's layout point one way: every import statement of the two
packages (at any depth: function-level imports count too) is read, and one pointing upwards fails.

    numpy_ninja          NumPy only: never torch, hypothesis or oracle
    oracle.reference     numpy_ninja and torch: never a product, never oracle's private modules
    oracle._common, oracle._userfile    numpy_ninja: never reference or a product
    oracle.<product>     reference, the private modules, numpy_ninja: never another product
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = ("oracle.grade", "oracle.fuzz", "oracle.compare", "oracle.convert")
PRIVATE = ("oracle._common", "oracle._userfile")


def module_name(path, root=ROOT):
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, root=ROOT):
    """The absolute names a file imports (relative imports resolved): each module, and each name
    taken from one (`from oracle import grade` gives oracle and oracle.grade)."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += ([module] if node.module else []) + [f"{module}.{a.name}" for a in node.names]
    return names


def within(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden(module):
    """What `module` must not import."""
    if within(module, ["numpy_ninja"]):
        return ("torch", "hypothesis", "oracle")
    if within(module, ["oracle.reference"]):
        return PRODUCTS + PRIVATE
    if module in PRIVATE:
        return PRODUCTS + ("oracle.reference",)
    for product in PRODUCTS:
        if within(module, [product]):
            return tuple(p for p in PRODUCTS if p != product)
    return ()


FILES = sorted(p for package in ("numpy_ninja", "oracle") for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_arrow_points_upwards(path):
    module = module_name(path)
    bad = [name for name in imports(path) if within(name, forbidden(module))]
    assert not bad, f"{module} imports {bad}"


def test_the_check_reads_every_kind_of_import(tmp_path):
    """imports() sees what the test relies on: absolute, relative and function-level imports."""
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "mod.py"
    source.write_text("import torch\nfrom . import sibling\ndef f():\n    from ..oracle import grade\n")
    assert imports(source, tmp_path) == ["torch", "pkg.sibling", "oracle", "oracle.grade"]


def test_every_package_says_what_it_is_and_what_it_may_import():
    for init in (p for p in FILES if p.name == "__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init.relative_to(ROOT)}: its docstring does not say what it may import"
