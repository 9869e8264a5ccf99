"""A learner's file read as the code they wrote, in cells: a Jupyter or Colab notebook (.ipynb), a
.py exported from one (jupytext, VS Code or Spyder `# %%`, nbconvert `# In[ ]:`, Databricks), or a
plain .py of cells pasted one after another. Nothing is run here.

IPython's own syntax (`%matplotlib inline`, `!wget ...`, `x = !ls`, `obj?`, `get_ipython()`) is
commented out in place, so every line keeps its number and a message can point at it: "cell 12,
line 3" in a notebook, "line 40" in a .py."""
import ast
import codecs
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from numpy_ninja.console import UserError

MAX_BYTES = 256 * 2**20  # a notebook's outputs can be megabytes; hundreds of them are not a notebook


class SourceError(UserError):
    """The file cannot be read as a notebook or as Python."""


@dataclass(frozen=True)
class Cell:
    """One code cell. number counts the notebook's code cells from 1 (0 for a .py, whose line
    numbers are the file's); first_line is the file line of the cell's first line (.py) or 1;
    heading: the text of the markdown cells just before it (the exercise's title, in a notebook);
    filename: the file a .py's code was compiled from, when it was imported whole."""
    number: int
    source: str
    first_line: int = 1
    heading: str = ""
    filename: str = ""

    @property
    def label(self):
        """The filename of the cell's code objects: tracebacks name the cell by it."""
        return self.filename or (f"<cell {self.number}>" if self.number else f"<line {self.first_line}>")

    def location(self, line):
        """Where line `line` of the cell's source is, in the learner's terms."""
        if self.number:
            return f"cell {self.number}, line {line}"
        return f"line {self.first_line + line - 1}"

    def line(self, line):
        """The text of line `line` of the cell's source."""
        lines = self.source.splitlines()
        return lines[line - 1].strip() if 0 < line <= len(lines) else ""

    def parse(self):
        """The cell's statements with line numbers of the cell's source, or a SyntaxError (parsed
        once: the same tree each time)."""
        return _parse(self.source, self.label)


@functools.lru_cache(maxsize=256)
def _parse(source, label):
    return ast.parse(source, label)


def read_cells(path):
    """The code cells of a learner's .ipynb or .py, in file order. Raises SourceError."""
    path = Path(path)
    try:
        if not path.is_file():
            raise SourceError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
        if path.stat().st_size > MAX_BYTES:
            raise SourceError(f"{path}: {path.stat().st_size / 2**20:.0f} MiB is not a notebook or a "
                              "Python file check can read")
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror or e})") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SourceError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x})") from None
    if path.suffix == ".ipynb" or (path.suffix != ".py" and text.lstrip().startswith("{")):
        return notebook_cells(text, path)
    return script_cells(text)


# ---------------------------------------------------------------- notebooks

def notebook_cells(text, path):
    """Code cells of nbformat 4 (``cells``, source a string or a list of lines) or 3
    (``worksheets``, ``input``); markdown before a code cell becomes its heading."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        raise SourceError(f"{path}: not a notebook: invalid JSON at line {e.lineno}, column "
                          f"{e.colno} ({e.msg})") from None
    except RecursionError:
        raise SourceError(f"{path}: not a notebook: JSON nested too deeply") from None
    raw = nb.get("cells") if isinstance(nb, dict) else None
    if raw is None and isinstance(nb, dict) and isinstance(nb.get("worksheets"), list):
        raw = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])]
    if not isinstance(raw, list):
        raise SourceError(f"{path}: not a notebook: no list of cells")
    cells, heading, number = [], [], 0
    for cell in raw:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else source
        if not isinstance(source, str):
            continue
        if cell.get("cell_type") == "code":
            number += 1
            cells.append(Cell(number, ipython_to_python(source), heading="\n".join(heading)))
            heading = []
        elif cell.get("cell_type") in ("markdown", "heading"):
            heading.append(source)
    return cells


# ---------------------------------------------------------------- .py files

CELL_START = re.compile(r"^(#\s?%%(?!%).*|# In\[[ \d]*\]:\s*|# COMMAND -{5,}\s*)$")
MARKDOWN_CELL = re.compile(r"\[markdown\]|\[md\]")


def script_cells(text):
    """A .py's cells: cut at `# %%`, `# In[ ]:` or `# COMMAND ----` lines, or a marimo notebook's
    @app.cell functions; a file without them is one cell (its statements are told apart later, by
    what each one does). Jupytext's markdown cells (`# %% [markdown]`) become headings."""
    if re.search(r"^import marimo\b", text, re.M) and re.search(r"^@app\.cell", text, re.M):
        return marimo_cells(text)
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if CELL_START.match(line)]
    if not starts:
        return [Cell(0, ipython_to_python(text))]
    cells, heading = [], []
    bounds = ([0] if starts[0] else []) + starts + [len(lines)]
    for a, b in zip(bounds, bounds[1:]):
        marker = lines[a] if a in starts else ""
        body_start = a + 1 if marker else a
        body = "\n".join(lines[body_start:b])
        if MARKDOWN_CELL.search(marker):
            heading.append(body)
            continue
        cells.append(Cell(0, ipython_to_python(body), first_line=body_start + 1,
                          heading="\n".join(heading)))
        heading = []
    return cells


def marimo_cells(text):
    """The bodies of a marimo notebook's @app.cell functions, dedented (their parameters are the
    names they take from other cells, which the kernel holds); the trailing return is left out."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return [Cell(0, text)]
    lines, cells = text.split("\n"), []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any("app.cell" in ast.unparse(d) for d in node.decorator_list):
            body = node.body[:-1] if isinstance(node.body[-1], ast.Return) else node.body
            if not body:
                continue
            first, last = body[0].lineno, body[-1].end_lineno
            chunk = lines[first - 1:last]
            indent = min(len(line) - len(line.lstrip()) for line in chunk if line.strip())
            cells.append(Cell(0, "\n".join(line[indent:] for line in chunk), first_line=first))
    return cells


# ---------------------------------------------------------------- IPython's syntax

IPYTHON_LINE = re.compile(r"^(\s*)(%|!|\w+\s*=\s*[!%]\w|get_ipython\(\)|[\w.]+\?\??\s*$)")


def ipython_to_python(source):
    """source with IPython's line syntax commented out, every line kept in its place; a cell
    magic (`%%time`) on the first line is commented out and the rest kept."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        m = IPYTHON_LINE.match(line)
        if m:
            previous = next((p for p in reversed(lines[:i]) if p.strip() and not p.lstrip().startswith("#")), "")
            # the only statement of a block keeps a statement
            lines[i] = m.group(1) + ("pass  # " if previous.rstrip().endswith(":") else "# ") + line.strip()
    return "\n".join(lines)
