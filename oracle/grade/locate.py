"""Where a learner's answers are: which statements of which cells answer which exercise, found by
what they do (the gradients they assign, the training loop), helped by the lecture's markers
("Exercise 2: backprop through cross_entropy but all in one go") where they were kept.

Only those statements run. The rest of a notebook (reading names.txt, building the dataset,
initialising, the forward pass, calibration, sampling) never does: check supplies what it left in
the kernel (oracle.grade.notebook)."""
import ast
import re
from dataclasses import dataclass, field

from numpy_ninja.atomic import GRAD_NAMES, PARAM_NAMES
from oracle.reference.graph import STEPS

# the tensors exercises 2-4 step over: a gradient of one of these belongs to exercise 1
CHAIN_ONLY = frozenset(("logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits",
                        "logit_maxes", "bnraw", "bnvar_inv", "bnvar", "bndiff2", "bndiff", "bnmeani"))
# learners' spellings of the lecture's tensors, seen in their notebooks
SYNONYMS = {"gamma": "bngain", "beta": "bnbias", "bnmean": "bnmeani", "normlogits": "norm_logits",
            "logitsmaxes": "logit_maxes", "countssuminverse": "counts_sum_inv"}
SUFFIXES = re.compile(r"(_?(fast|simplified|onestep|1step|manual|grad))+$")
# names the notebook's setup cells bind: a statement binding one is setup, never run for 1-3
DATA = frozenset(("words", "chars", "stoi", "itos", "Xtr", "Ytr", "Xdev", "Ydev", "Xte", "Yte",
                  "n1", "n2"))
SIZES = frozenset(("vocab_size", "block_size"))  # the data's: check's, never the learner's
FORWARD = frozenset((
    "emb", "embcat", "hprebn", "bnmeani", "bndiff", "bndiff2", "bnvar", "bnvar_inv", "bnraw",
    "hpreact", "h", "logits", "logit_maxes", "norm_logits", "counts", "counts_sum",
    "counts_sum_inv", "probs", "logprobs", "loss", "Xb", "Yb", "ix"))
SETUP = DATA | SIZES | FORWARD | frozenset(PARAM_NAMES) | frozenset((
    "n", "batch_size", "g", "parameters", "n_embd", "n_hidden"))
IO_CALLS = frozenset(("open", "urlopen", "urlretrieve", "mount", "system", "run", "Popen", "load",
                      "loadtxt", "read_csv", "get", "read_text", "read_bytes"))
MARKERS = (
    (1, re.compile(r"backprop\w*\s+through\s+the\s+whole\s+thing|exercise\s*:?\s*1\b", re.I)),
    (2, re.compile(r"backprop\w*\s+through\s+cross[_ ]?entropy|exercise\s*:?\s*2\b", re.I)),
    (3, re.compile(r"backprop\w*\s+through\s+batch[_ ]?norm|exercise\s*:?\s*3\b", re.I)),
    (4, re.compile(r"putting\s+it\s+all\s+together|swole_doge|exercise\s*:?\s*4\b", re.I)),
)


def normal(name):
    return name.lower().replace("_", "")


LECTURE = {normal(k): k for k in GRAD_NAMES}


def lecture_name(var):
    """(tensor, how) when the variable `var` holds a gradient of one of the lecture's tensors:
    how is "exact" (d + its name), "alias" (a spelling learners use: dgamma, d_hprebn,
    dlogits_fast) or "close" (one typing slip away: dlogits_maxes); else (None, None)."""
    if not var.startswith("d") or len(var) < 2:
        return None, None
    if var[1:] in GRAD_NAMES:
        return var[1:], "exact"
    base = normal(SUFFIXES.sub("", var[1:]))
    if base in LECTURE:
        return LECTURE[base], "alias"
    if base in SYNONYMS:
        return SYNONYMS[base], "alias"
    if len(base) >= 5 and not base[-1].isdigit():  # dcounts2: a learner's part of dcounts, not it
        near = [k for n, k in LECTURE.items() if len(n) >= 5 and edits(base, n) <= (1 if len(n) < 9 else 2)]
        if len(near) == 1:
            return near[0], "close"
    return None, None


def edits(a, b):
    """Levenshtein distance between two short strings."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


# ---------------------------------------------------------------- what a statement does

def bound(node):
    """The names a statement binds, at any depth of its targets (x, x[i], x.data, (a, b)) or in
    place (x.index_add_(...), np.add.at(x, ...)); a compound statement's inner assignments count,
    a function's body does not."""
    names = set()
    for n in walk(node):
        targets = (n.targets if isinstance(n, ast.Assign) else
                   [n.target] if isinstance(n, (ast.AugAssign, ast.AnnAssign, ast.For)) else [])
        for t in targets:
            while isinstance(t, (ast.Subscript, ast.Attribute, ast.Starred)):
                t = t.value
            names |= {e.id for e in ast.walk(t) if isinstance(e, ast.Name)}
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in n.names}
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):  # in place: x.add_(...), np.add.at(x, ...)
            if n.func.attr.endswith("_") and not n.func.attr.startswith("_") and isinstance(n.func.value, ast.Name):
                names.add(n.func.value.id)
            elif n.func.attr == "at" and n.args and isinstance(n.args[0], ast.Name):
                names.add(n.args[0].id)
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            names.add(n.name)
    return names


def walk(node):
    """ast.walk without descending into function and class bodies."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if n is node or not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(n))


def read(node):
    return {n.id for n in walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def gradients(names, aliases=None):
    """{tensor: variable} of the names that hold a lecture gradient (aliases: {variable: tensor}
    learned from the learner's own cmp calls, for names that do not say it)."""
    out = {}
    for var in sorted(names):
        tensor = lecture_name(var)[0] or (aliases or {}).get(var)
        if tensor:
            out.setdefault(tensor, var)
    return out


def cmp_aliases(trees):
    """{variable: tensor} from calls like the lecture's cmp('logits', klogits, logits), whatever
    the function is called: a label, then a variable that holds no lecture name, then a lecture
    tensor (or a label that names one)."""
    aliases = {}
    for tree in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and len(node.args) >= 3):
                continue
            label, var, tensor = node.args[:3]
            if not (isinstance(label, ast.Constant) and isinstance(label.value, str) and isinstance(var, ast.Name)):
                continue
            name = tensor.id if isinstance(tensor, ast.Name) and tensor.id in GRAD_NAMES else label.value
            if name in GRAD_NAMES and not lecture_name(var.id)[0]:
                aliases[var.id] = name
    return aliases


def calls(node):
    return {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            for n in walk(node) if isinstance(n, ast.Call)}


def is_training_loop(node):
    """A loop that runs a forward pass (assigns loss or logits) and updates parameters
    (p.data += ..., C -= lr * dC, p.sub_(...)): exercise 4."""
    return any(bound(loop) & {"loss", "logits"} and updates_parameters(loop)
               for loop in walk(node) if isinstance(loop, (ast.For, ast.While)))


def updates_parameters(loop):
    for n in walk(loop):
        target = getattr(n, "target", None) if isinstance(n, ast.AugAssign) else None
        if isinstance(target, ast.Attribute) and target.attr == "data":
            return True  # p.data += -lr * grad
        if isinstance(target, (ast.Name, ast.Subscript)):
            base = target.value if isinstance(target, ast.Subscript) else target
            if isinstance(base, ast.Name) and (base.id in PARAM_NAMES or base.id in ("p", "param")):
                return True  # C -= lr * dC, p[...] -= ...
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "data"
                                             for t in n.targets):
            return True  # p.data = p.data - lr * grad
        if isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)
                and (t.value.id in PARAM_NAMES or t.value.id in ("p", "param")) for t in n.targets):
            return True  # p[...] = p - lr * g
    return bool(calls(loop) & {"sub_", "add_"})


def markers(text):
    return {number for number, pattern in MARKERS if pattern.search(text)}


# ---------------------------------------------------------------- the plan

@dataclass
class Part:
    """The statements of one cell that belong to one exercise, in order."""
    cell: object
    statements: list


@dataclass
class Plan:
    """What to run for each exercise: {exercise: [Part]} in file order, the training loop of
    exercise 4 (an ast node among its statements), and the cells that do not parse."""
    parts: dict = field(default_factory=dict)
    loop: object = None
    aliases: dict = field(default_factory=dict)     # {variable: tensor} the learner's cmp calls tell
    spellings: dict = field(default_factory=dict)   # {tensor: the learner's names of its gradient}
    differs: list = field(default_factory=list)     # (cell, line) of forward lines not the lecture's
    unparsed: list = field(default_factory=list)   # (cell, SyntaxError)
    broken: dict = field(default_factory=dict)     # exercise: (cell, SyntaxError) of a cell that answers it


    def add(self, exercise, cell, stmt):
        parts = self.parts.setdefault(exercise, [])
        if not parts or parts[-1].cell is not cell:
            parts.append(Part(cell, []))
        parts[-1].statements.append(stmt)


def kind(stmt, aliases=None):
    """"loop" (exercise 4), "grad" (assigns a lecture gradient), "io" (reads or writes outside
    the kernel), "setup" (binds or reads what the notebook's setup cells made: the data, the
    parameters, the forward's tensors), "backward" (autograd's own backward), or "other"."""
    if calls(stmt) & IO_CALLS:
        return "io"
    if is_training_loop(stmt):
        return "loop"
    names = bound(stmt)
    if gradients(names, aliases):
        return "grad"
    if calls(stmt) & {"backward", "retain_grad", "zero_grad"} or any(
            isinstance(t, ast.Attribute) and t.attr == "grad"
            for n in walk(stmt) if isinstance(n, ast.Assign) for t in n.targets):
        return "backward"
    if names & SETUP or read(stmt) & DATA:
        return "setup"
    return "other"


def is_full(stmt):
    """x = ..., a statement that makes x anew (not x += ..., x[i] = ..., a loop that fills x)."""
    return isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets)


def exercise_of(stmt, owners, cell_markers, aliases=None):
    """Which exercise a statement that assigns gradients answers."""
    assigned = gradients(bound(stmt), aliases)
    used = gradients(read(stmt), aliases)
    later = [owners[t] for t in used if owners.get(t) in (2, 3)]
    if later and not set(assigned) & CHAIN_ONLY and not set(used) & CHAIN_ONLY:
        return later[0]  # the rest of a backward pass from a one-step answer: it goes on from there
    if not is_full(stmt):  # x += ..., x[i] = ...: the exercise that made x
        for tensor in assigned:
            if tensor in owners:
                return owners[tensor]
    if set(assigned) & CHAIN_ONLY or set(used) & CHAIN_ONLY:
        return 1
    if "logits" in assigned:
        return 2 if 1 not in cell_markers or cell_markers & {2} else 1
    if "hprebn" in assigned:
        return 3 if "hpreact" in used or 3 in cell_markers or 1 not in cell_markers else 1
    return 1


def locate(cells):
    """The Plan of a learner's cells."""
    plan, owners, carried = Plan(), {}, set()
    trees = {}
    for cell in cells:
        try:
            trees[id(cell)] = cell.parse()
        except SyntaxError:
            pass
    plan.aliases = aliases = cmp_aliases(trees.values())
    for cell in cells:
        try:
            body = cell.parse().body
        except SyntaxError as e:
            plan.unparsed.append((cell, e))
            for exercise in markers(cell.heading + cell.source) | guessed(cell.source):
                plan.broken.setdefault(exercise, (cell, e))
            carried = markers(cell.heading + cell.source) or carried
            continue
        if not plan.parts:  # the forward pass comes before the exercises: is it the lecture's?
            plan.differs += [(cell, stmt.lineno) for stmt in body if other_network(stmt)]
        comments = "\n".join(line for line in cell.source.splitlines() if line.lstrip().startswith("#"))
        cell_markers = markers(cell.heading + comments) or carried
        kinds = [kind(s, aliases) for s in body]
        exercises = [None] * len(body)
        inits = {}  # tensor: the statement of this cell that made it from no gradient (dC = zeros_like(C))
        for i, (stmt, k) in enumerate(zip(body, kinds)):
            if k == "loop":
                exercises[i], plan.loop = 4, stmt
            elif k == "grad":
                exercises[i] = exercise_of(stmt, owners, cell_markers, aliases)
                made = gradients(bound(stmt), aliases)
                if is_full(stmt):
                    owners.update(dict.fromkeys(made, exercises[i]))
                    if not gradients(read(stmt), aliases):
                        inits.update(dict.fromkeys(made, i))
                for tensor in made:  # an initialisation goes with what fills it in
                    if not is_full(stmt) and tensor in inits and exercises[inits[tensor]] != exercises[i]:
                        exercises[inits[tensor]] = owners[tensor] = exercises[i]
            elif k == "other":  # a cmp, a print, a check of gradients goes with what it reads
                exercises[i] = next((owners[t] for t in gradients(read(stmt), aliases) if t in owners), None)
        if not any(exercises):
            carried = cell_markers  # a heading, or an exercise's forward check: its marker carries on
            continue
        carried = set()
        attach(body, kinds, exercises, whole_file=len(cells) == 1)
        for stmt, exercise in zip(body, exercises):
            if exercise:
                plan.add(exercise, cell, stmt)
            for var in bound(stmt):
                tensor = lecture_name(var)[0] or aliases.get(var)
                if tensor and var != f"d{tensor}":
                    plan.spellings.setdefault(tensor, set()).add(var)
    return plan


LECTURE_INPUTS = {s.out: set(s.inputs) for s in STEPS}


def other_network(stmt):
    """A forward line of the learner's that computes one of the lecture's tensors from other
    tensors than the lecture does (hpreact = embcat @ W1 + b1: no BatchNorm)."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return False
    out = stmt.targets[0].id
    known = set(GRAD_NAMES) | {"loss"}
    return out in LECTURE_INPUTS and read(stmt) & known != LECTURE_INPUTS[out]


def guessed(text):
    """The exercises a cell that does not parse seems to answer, from the gradients it assigns."""
    assigned = {lecture_name(m)[0] for m in re.findall(r"^\s*(d\w+)\s*[-+*/]?=", text, re.M)}
    if assigned & CHAIN_ONLY:
        return {1}
    return ({2} if "logits" in assigned else set()) | ({3} if "hprebn" in assigned else set())


def attach(body, kinds, exercises, whole_file=False):
    """The statements of a cell that answer nothing go with an exercise, in place (one that reads a
    gradient already went with the exercise that made it): exercise 4's initialisation (what
    comes before its loop, but not the data or a forward pass of its own) with exercise 4; one that only computes (a
    temporary, a print) after the cell's first answer with the exercise of the answers after it
    (or before it, at the end), and the run of such statements just before the first answer with
    that answer's exercise. Setup for exercises 1-3, reading or writing files and autograd's own
    backward never run. In a whole file of pasted cells, exercise 4 takes only what its loop
    needs, of all that comes before it."""
    first = next(i for i, e in enumerate(exercises) if e)
    following = None
    loop = next((stmt for stmt, e in zip(body, exercises) if e == 4), None)
    needed = read(loop) if loop is not None else set()
    for i in reversed(range(len(body))):
        following = exercises[i] or following
        if exercises[i]:
            continue
        stmt = body[i]
        if following == 4 and kinds[i] in ("setup", "other") and not (
                bound(stmt) & (DATA | SIZES | FORWARD) or read(stmt) & DATA):
            if not whole_file or bound(stmt) & needed or (isinstance(stmt, ast.For) and read(stmt) & needed):
                exercises[i] = 4
                needed |= read(stmt)
            continue
        elif kinds[i] == "other" and i > first:
            exercises[i] = following or next(e for e in reversed(exercises[:i]) if e)
    for i in reversed(range(first)):
        if kinds[i] != "other" or exercises[i]:
            break
        exercises[i] = exercises[first]
