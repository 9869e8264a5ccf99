"""`numpy-ninja check --template`: a solution file to fill in, one line per gradient, each under
the forward line(s) it inverts, written from the graphs check grades against."""
from numpy_ninja.atomic import PARAM_NAMES
from oracle.grade.exercises import EXERCISES, consumers_of

HEAD = '''"""My answers to the exercises of "becoming a backprop ninja" (makemore part 4).

Replace each None with the gradient of the loss with respect to that tensor, then check:

    numpy-ninja check THIS_FILE        (--exercise 1|2|3|4, --dtype float32, --help)

Each function receives NumPy float64 arrays named as in the lecture (float32 with --dtype
float32). Set BACKEND = "torch" to receive torch tensors and paste the notebook's code as it is.
A gradient left None is reported `missing`; delete a function to skip its exercise.
"""
import numpy as np

BACKEND = "numpy"  # or "torch"
'''


def unpack(names, width=96):
    """Lines binding each name to t.name."""
    lines, chunk = [], []
    for name in names:
        if chunk and len(", ".join(chunk + [name])) * 2 + 12 > width:
            lines.append(f"    {', '.join(chunk)} = {', '.join('t.' + c for c in chunk)}")
            chunk = []
        chunk.append(name)
    lines.append(f"    {', '.join(chunk)} = {', '.join('t.' + c for c in chunk)}")
    return lines


def gradient_lines(graph, names):
    """`dX = None  # TODO` for each name, under the forward lines that read X."""
    consumers, lines, last = consumers_of(graph), [], None
    for name in names:
        comment = [f"    # {line}" for s in consumers[name] for line in s.line.splitlines()]
        if comment != last:
            lines += [""] + comment
            last = comment
        lines.append(f"    d{name} = None  # TODO")
    return lines


def walk_back(graph):
    """The graph's tensors with a gradient, from the loss back to the parameters."""
    order = []
    for step in reversed(graph):
        for x in step.inputs:
            if x not in order:
                order.append(x)
    return order


def returned(names):
    """`return dict(name=dname, ...)`, wrapped."""
    lines, line = [], "    return dict("
    for pair in (f"{k}=d{k}" for k in names):
        if len(line) + len(pair) > 96:
            lines.append(line.rstrip())
            line = " " * 16
        line += pair + ", "
    return lines + [line.rstrip(", ") + ")"]


def template():
    """The text of the solution file."""
    ex1, ex4 = EXERCISES[1], EXERCISES[4]
    forward = [s.out for s in ex1.graph[:-1]]
    out = [HEAD, "",
           "def exercise1(t):",
           '    """Exercise 1: backprop through the forward pass one line at a time. t holds Xb, Yb, n,',
           "    the parameters and every forward tensor; return the gradient of the loss with respect",
           '    to each."""']
    out += unpack(["Xb", "Yb", "n"] + list(PARAM_NAMES) + forward)
    out += gradient_lines(ex1.graph, ex1.rows)
    out += [""] + returned(ex1.rows)
    out += ["", "",
            "def exercise2(logits, Yb):",
            '    """Exercise 2: the gradient of the loss with respect to logits (n, 27) in one step."""',
            "    n = logits.shape[0]"]
    out += gradient_lines(EXERCISES[2].graph, ["logits"])
    out += ["    return dlogits", "", "",
            "def exercise3(dhpreact, bngain, bnvar_inv, bnraw, n):",
            '    """Exercise 3: the gradient of the loss with respect to hprebn (n, 64) in one step, from',
            '    dhpreact (n, 64), bngain and bnvar_inv (1, 64) and bnraw (n, 64)."""']
    out += gradient_lines(EXERCISES[3].graph, ["hprebn"])
    out += ["    return dhprebn", "", "",
            "def exercise4(t):",
            '    """Exercise 4: the parameters\' gradients for one batch, with the one-step answers of',
            "    exercises 2 and 3. Keep the lecture's names for the gradients on the way (dlogits, dh,",
            '    dhpreact, dhprebn, ...): check traces a wrong parameter back through them."""']
    out += unpack(["Xb", "Yb", "n"] + list(PARAM_NAMES) + forward)
    out += gradient_lines(ex4.graph, walk_back(ex4.graph))
    out += [""] + returned(PARAM_NAMES)
    return "\n".join(out) + "\n"
