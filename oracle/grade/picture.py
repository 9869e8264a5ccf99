"""check's report as one web page: the lecture's graph, every tensor coloured by its verdict.

    render_html(report_dict) -> str

`report_dict` is `Report.as_dict()` (what report.json holds). The page is one self-contained HTML
file: it loads nothing (no network, no fonts, no images), and works without JavaScript too (the
exercises are then shown one below the other instead of as tabs).

What it shows:

- the report's facts (file, dtype, batches, seed), its summary line (the same text as the
  table's last line), the training line when there is one, and the notes;
- one graph per exercise in the report: the lecture's forward pass drawn top to bottom, one row
  per forward line (`emb = C[Xb]` first, `loss` last), the parameters beside the line that reads
  them, an arrow from each tensor to every line that reads it. The tensors the exercise grades are
  coloured by verdict, each with a word saying it (exact, approx., local, inherited, unknown,
  missing, error) and, for inherited, unknown and missing, a pattern or a broken outline, so no
  colour has to be told apart from another; the others stay grey;
- "start here": a thick ring and a label on the tensor the summary says to start with (the first
  row, from the loss back, whose own step is wrong or whose function raised; or, when that step is
  not graded, as exercise 4's intermediates are not, the tensor the error comes from);
- details of a tensor when you point at it, tab to it, or click it (click or Enter keeps them
  shown; Escape lets go): verdict, cause and upstream, the hint, the figures as in the table,
  your line of code when the row names it (`where`: `{"location": ..., "text": ...}`), and the
  forward line that made the tensor;
- a legend.
"""
import html
from dataclasses import dataclass
from itertools import count

from oracle.grade.report import Report, fmt, summary, train_lines, where_to_start
from oracle.reference.graph import STEPS

# what a graded tensor can be: (its class, its badge, what it means), worst first
KINDS = (
    ("error", "error", "its function raised, or returned something that is not an array"),
    ("local", "local", "wrong: this step is wrong, given your gradients of the tensors it feeds"),
    ("inherited", "inherited", "wrong: this step is right; the error comes from upstream"),
    ("unknown", "unknown", "wrong: cannot tell whose error it is, an upstream gradient is missing"),
    ("missing", "missing", "not given yet, or not reached"),
    ("approximate", "approx", "within the tolerance: rounding only"),
    ("exact", "exact", "bitwise equal to autograd"),
)
BADGE = {kind: badge for kind, badge, _ in KINDS}
MEANING = {kind: meaning for kind, _, meaning in KINDS}
FIGURES = ("max_abs_diff", "max_ulp", "rel_err")


def _kind(row):
    """A row's verdict, with `wrong` split by its cause."""
    if row["verdict"] != "wrong":
        return row["verdict"]
    return row["cause"] if row["cause"] in ("local", "inherited") else "unknown"


# ---------------------------------------------------------------- layout

NODE_H, ROW_GAP, LANE_GAP, PAD = 24, 22, 30, 16
CHAR_W = 8.0          # one character of a tensor's name (13px monospace is 7.8)
BADGE_W = 74          # the verdict word inside a node
NODE_PAD = 22         # a node's padding and borders, and the space before its badge
BEND_W = 12           # a lane that only edges pass through
PORT = 14             # between two arrows that leave or reach one node side by side
ARROW = 7             # an arrowhead's length
TAB_W, TAB_H, RING = 88, 14, 5   # the "start here" label; the ring's width around its node
TOP = PAD + TAB_H + RING         # room above the first row for the label


@dataclass(frozen=True)
class _Box:
    """A node's place, in pixels from the top left of its graph."""
    x: float
    y: float
    w: float
    h: float = NODE_H


@dataclass(frozen=True)
class _Edge:
    """An arrow from `tail` to the line `head` that reads it: its SVG path and arrowhead, and
    the horizontal extent it takes in the gap above each row it crosses: ((row, x0, x1), ...)."""
    tail: str
    head: str
    path: str
    arrowhead: str
    spans: tuple


@dataclass(frozen=True)
class _Layout:
    boxes: dict        # name -> _Box
    edges: tuple       # _Edge, in forward order
    rows: dict         # name -> row
    width: int
    height: int

    def tab(self, name):
        """Where the "start here" label goes: above the node, on its left or right end,
        whichever no arrow passes through (the left one when both are free)."""
        box = self.boxes[name]
        y = box.y - RING - TAB_H
        sides = (box.x - RING, box.x + box.w + RING - TAB_W)
        taken = [(x0, x1) for row, x0, x1 in (s for e in self.edges for s in e.spans)
                 if row == self.rows[name]]
        free = [x for x in sides if all(x1 < x - 4 or x0 > x + TAB_W + 4 for x0, x1 in taken)]
        return (free or sides)[0], y


def _graph(steps):
    """The nodes in forward order (each parameter just before the first line that reads it) and
    the edges (tensor, line output)."""
    nodes = []
    for s in steps:
        nodes += [x for x in s.inputs if x not in nodes] + [s.out]
    return nodes, [(x, s.out) for s in steps for x in s.inputs]


def _rows(nodes, edges):
    """Each node's row, and the spine: the longest path to the loss, drawn straight down.
    A line's row is one below the lowest of its inputs; a tensor that no line makes (a
    parameter) sits in the row just above the first line that reads it."""
    preds = {n: [u for u, v in edges if v == n] for n in nodes}
    depth = {}
    for n in nodes:
        depth[n] = 1 + max((depth[u] for u in preds[n]), default=-1)
    row = {n: depth[n] if preds[n] else min(depth[v] for u, v in edges if u == n) - 1 for n in nodes}
    spine = [nodes[-1]]
    while preds[spine[-1]]:
        spine.append(max(preds[spine[-1]], key=lambda u: depth[u]))  # the first of the deepest
    return row, spine


def _lanes(nodes, edges, row, spine):
    """Each node's lane (0 the spine, the others to its right, the first free one in their row)
    and each long edge's lane (to the spine's left, the first free one in every row it passes)."""
    lane = dict.fromkeys(spine, 0)
    taken = {(row[n], 0) for n in spine}
    for n in nodes:
        if n not in lane:
            lane[n] = next(k for k in count(1) if (row[n], k) not in taken)
            taken.add((row[n], lane[n]))
    bends = {}
    for u, v in edges:
        passed = range(row[u] + 1, row[v])
        if passed:
            bends[u, v] = next(k for k in count(-1, -1) if all((r, k) not in taken for r in passed))
            taken |= {(r, bends[u, v]) for r in passed}
    return lane, bends


def _ports(lane, others):
    """Offsets (pixels) of a node's arrows on one of its sides, given the lane each one goes
    to: ordered left to right by that lane, the one that goes straight on in the middle."""
    order = sorted(range(len(others)), key=lambda i: (others[i], i))
    middle = next((j for j, i in enumerate(order) if others[i] == lane), (len(others) - 1) / 2)
    return {i: (j - middle) * PORT for j, i in enumerate(order)}


def _layout(steps):
    """The graph of `steps` laid out in forward order, top to bottom."""
    nodes, edges = _graph(steps)
    row, spine = _rows(nodes, edges)
    lane, bends = _lanes(nodes, edges, row, spine)
    width = {k: BEND_W for k in bends.values()}
    for n in nodes:
        width[lane[n]] = max(width.get(lane[n], 0), round(len(n) * CHAR_W) + BADGE_W + NODE_PAD)
    left, x = {}, PAD
    for k in sorted(width):
        left[k], x = x, x + width[k] + LANE_GAP
    centre = {k: left[k] + width[k] / 2 for k in width}
    top = {r: TOP + r * (NODE_H + ROW_GAP) for r in set(row.values())}
    boxes = {n: _Box(left[lane[n]], top[row[n]], width[lane[n]]) for n in nodes}

    def first_lane(u, v):
        return bends.get((u, v), lane[v])

    def last_lane(u, v):
        return bends.get((u, v), lane[u])

    out_port, in_port = {}, {}
    for n in nodes:
        outs = [e for e in edges if e[0] == n]
        ins = [e for e in edges if e[1] == n]
        for i, d in _ports(lane[n], [first_lane(*e) for e in outs]).items():
            out_port[outs[i]] = centre[lane[n]] + d
        for i, d in _ports(lane[n], [last_lane(*e) for e in ins]).items():
            in_port[ins[i]] = centre[lane[n]] + d

    routed = []
    for u, v in edges:
        x0, y0 = out_port[u, v], top[row[u]] + NODE_H
        x1, y1 = in_port[u, v], top[row[v]]
        path, spans = [f"M{x0:g} {y0:g}"], []
        if (u, v) in bends:
            xb, yb = centre[bends[u, v]], top[row[v] - 1] + NODE_H
            path += [_s_curve(x0, y0, xb, top[row[u] + 1]), f"L{xb:g} {yb:g}"]
            spans += [(row[u] + 1, min(x0, xb), max(x0, xb))]
            spans += [(r, xb, xb) for r in range(row[u] + 2, row[v])]
            x0, y0 = xb, yb
        path.append(_s_curve(x0, y0, x1, y1 - ARROW))
        spans.append((row[v], min(x0, x1), max(x0, x1)))
        arrowhead = f"{x1 - 4:g},{y1 - ARROW:g} {x1 + 4:g},{y1 - ARROW:g} {x1:g},{y1:g}"
        routed.append(_Edge(u, v, " ".join(path), arrowhead, tuple(spans)))
    height = max(top.values()) + NODE_H + PAD
    return _Layout(boxes, tuple(routed), row, x - LANE_GAP + PAD, height)


def _s_curve(x0, y0, x1, y1):
    """A cubic from (x0, y0) down to (x1, y1), leaving and arriving vertically."""
    ym = (y0 + y1) / 2
    return f"C{x0:g} {ym:g} {x1:g} {ym:g} {x1:g} {y1:g}"


# ---------------------------------------------------------------- the page

def _e(value):
    return html.escape(str(value), quote=True)


def render_html(report_dict):
    """The report as one self-contained HTML page (see the module's docstring)."""
    report = Report.from_dict(report_dict)
    layout = _layout(STEPS)
    row, tensor = where_to_start(report.rows)
    exercises = list(dict.fromkeys(r["exercise"] for r in report.rows))
    shown = row["exercise"] if row else exercises[0] if exercises else None
    graded = {k: {r["name"]: r for r in report.rows if r["exercise"] == k} for k in exercises}
    # an upstream can name several tensors: the first
    starts = {k: tensor.split(", ")[0] if row and row["exercise"] == k else None for k in exercises}
    tabs = "".join(
        f'<button role="tab" id="tab-{k}" aria-controls="ex-{k}" aria-selected="{str(k == shown).lower()}">'
        f'Exercise {k}<span class="tally">{_e(_tally(graded[k].values()))}</span></button>'
        for k in exercises)
    sections = "".join(_section(k, graded[k], starts[k], layout, k == shown) for k in exercises)
    details = "".join(_detail(k, n, graded[k].get(n), n == starts[k]) for k in exercises
                      for n in layout.boxes)
    batches = len(report.batches)
    facts = (("file", report.source or "solution"), ("dtype", report.dtype),
             (f"{batches} batch{'es' if batches != 1 else ''}", "; ".join(report.batches)),
             ("seed", report.seed))
    notes = "".join(f"<li>{_e(note)}</li>" for note in report.notes)
    return PAGE.format(
        title=_e(f"numpy-ninja check: {report.source or 'solution'}"),
        css=CSS, js=JS,
        facts="".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts),
        status="passed" if report.passed else "failed",
        summary=_e(summary(report)),
        train="".join(f'<p class="train">{_e(line)}</p>' for line in train_lines(report.train)),
        notes=f'<ul class="notes">{notes}</ul>' if notes else "",
        tabs=tabs, sections=sections, details=details, legend=_legend())


def _tally(rows):
    kinds = [_kind(r) for r in rows]
    return ", ".join(f"{kinds.count(k)} {BADGE[k]}" for k, _, _ in KINDS if k in kinds)


def _section(k, rows, start, layout, shown):
    """One exercise's graph: the edges in SVG under the nodes, which are buttons."""
    edges = "".join(
        f'<path class="edge" data-from="{e.tail}" data-to="{e.head}" d="{e.path}"/>'
        f'<polygon class="arrowhead" points="{e.arrowhead}"/>' for e in layout.edges)
    nodes = []
    for name, box in layout.boxes.items():
        row = rows.get(name)
        what = _kind(row) if row else "loss" if name == "loss" else "ungraded"
        label = (f"{name}: {row['verdict']}" + (f", {row['cause']}" if row["cause"] else "") if row
                 else f"{name}: not graded in exercise {k}")
        badge = f'<span class="badge">{BADGE[what]}</span>' if row else ""
        classes = f"node k-{what}" + (" start" if name == start else "")
        nodes.append(
            f'<button class="{classes}" data-name="{_e(name)}" data-detail="detail-{k}-{_e(name)}" '
            f'aria-pressed="false" aria-label="{_e(label + ("; start here" if name == start else ""))}" '
            f'style="left:{box.x:g}px;top:{box.y:g}px;width:{box.w:g}px;height:{box.h:g}px">'
            f'<span class="name">{_e(name)}</span>{badge}</button>')
    if start:
        x, y = layout.tab(start)
        nodes.append(f'<div class="tab" aria-hidden="true" style="left:{x:g}px;top:{y:g}px;'
                     f'width:{TAB_W}px;height:{TAB_H}px">start here</div>')
    tally = _tally(rows.values())
    return (f'<section class="exercise{" shown" if shown else ""}" id="ex-{k}" role="tabpanel" '
            f'aria-labelledby="tab-{k}" data-start="{f"detail-{k}-{start}" if start else ""}">'
            f'<h2>Exercise {k} <span class="tally">{len(rows)} graded: {_e(tally)}</span></h2>'
            f'<div class="graph" style="width:{layout.width}px;height:{layout.height}px">'
            f'<svg width="{layout.width}" height="{layout.height}" aria-hidden="true">{edges}</svg>'
            f'{"".join(nodes)}</div></section>')


def _detail(k, name, row, start):
    """What the panel shows for one node of exercise k's graph."""
    step = next((s for s in STEPS if s.out == name), None)
    forward = (f'<p class="label">forward line</p><pre><code>{_e(step.line)}</code></pre>' if step
               else '<p class="label">a parameter of the network</p>')
    if name == "loss":
        body = "<p>The mean cross-entropy; backprop starts here, from dloss = 1.</p>"
    elif row is None:
        body = (f"<p>Not graded in exercise {k}.</p>" + ('<p class="start-note">Start here: the summary says '
                'the error of the graded rows comes from this gradient.</p>' if start else ""))
    else:
        what = _kind(row)
        facts = [("verdict", row["verdict"]), ("cause", row["cause"]), ("upstream", row["upstream"])]
        body = (f'<p class="meaning k-{what}"><span class="badge">{BADGE[what]}</span> '
                f'{_e(MEANING[what])}</p>'
                + ('<p class="start-note">Start here: the summary says to fix this one first.</p>' if start else "")
                + "<dl>" + "".join(f"<div><dt>{t}</dt><dd>{_e(v)}</dd></div>" for t, v in facts if v)
                + "</dl>"
                + (f'<p class="label">hint</p><p class="hint">{_e(row["hint"])}</p>' if row["hint"] else "")
                + '<table class="figures"><tr>' + "".join(f"<th>{f}</th>" for f in FIGURES)
                + "</tr><tr>" + "".join(f"<td>{_e(fmt(row[f]))}</td>" for f in FIGURES) + "</tr></table>"
                + _where(row.get("where")))
    title = "loss" if name == "loss" else f"d{name}"
    return (f'<div class="detail" id="detail-{k}-{_e(name)}" hidden><h3><code>{_e(title)}</code>'
            f'<span class="of">exercise {k}</span></h3>{body}{forward}</div>')


def _where(where):
    """The learner's line that made the gradient, when the row names it."""
    if not where:
        return ""
    return (f'<p class="label">your line{", " + _e(where["location"]) if where.get("location") else ""}</p>'
            f'<pre class="yours"><code>{_e(where.get("text", ""))}</code></pre>')


def _legend():
    items = [(f"k-{k}", BADGE[k], meaning) for k, _, meaning in KINDS]
    items += [("k-ungraded", "", "not graded by this exercise")]
    rows = "".join(f'<li><span class="swatch node {c}"><span class="name">dx</span>'
                   f'{f"<span class=badge>{b}</span>" if b else ""}</span>{_e(m)}</li>'
                   for c, b, m in items)
    return (f'<ul class="legend">{rows}<li><span class="swatch ring">start here</span>'
            f'the tensor the summary says to start with</li></ul>')


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>numpy-ninja check</h1>
<dl class="facts">{facts}</dl>
<p class="summary {status}">{summary}</p>
{train}{notes}
</header>
<div class="tabs" role="tablist">{tabs}</div>
<main>
<div class="graphs">{sections}</div>
<aside>
<div class="panel" id="panel" aria-live="polite">
<div class="detail" id="detail-none"><p class="empty">Point at a tensor, or tab to it, to see its
verdict, hint and figures; click it or press Enter to keep them here.</p></div>
{details}
</div>
<h2>Legend</h2>
<p class="reading">The lecture's forward pass runs down, one row per line; backprop runs up, from
the loss.</p>
{legend}
</aside>
</main>
<script>{js}</script>
</body>
</html>
"""

CSS = """
:root { --ink: #1f2328; --muted: #5f6670; --line: #d5d9de; --edge: #8c939b;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans", sans-serif;
  --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 20px 24px 40px; color: var(--ink);
  font: 15px/1.45 var(--sans); background: #fff; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 15px; margin: 0 0 8px; }
code, pre { font-family: var(--mono); }
.facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0 0 10px; color: var(--muted); font-size: 14px; }
.facts div { display: flex; gap: 6px; }
.facts dt { font-weight: 600; color: var(--ink); }
.facts dd { margin: 0; }
.summary { margin: 0 0 8px; padding: 8px 12px; border-radius: 6px; font-weight: 600; border-left: 6px solid; }
.summary.failed { background: #fbeee6; border-color: #d55e00; }
.summary.passed { background: #e3f4ee; border-color: #009e73; }
.train { margin: 0 0 6px; font-size: 14px; }
.notes { margin: 0 0 6px; padding-left: 20px; font-size: 14px; color: var(--muted); }
.tabs { display: none; gap: 6px; margin: 14px 0 0; border-bottom: 1px solid var(--line); }
.js .tabs { display: flex; }
.tabs button { font: inherit; font-weight: 600; padding: 7px 14px; border: 1px solid var(--line);
  border-bottom: none; border-radius: 6px 6px 0 0; background: #f6f7f8; color: var(--muted); cursor: pointer; }
.tabs button[aria-selected="true"] { background: #fff; color: var(--ink); margin-bottom: -1px; padding-bottom: 8px; }
.tabs .tally { display: block; font-size: 12px; font-weight: 400; }
main { display: grid; grid-template-columns: minmax(0, auto) minmax(300px, 1fr); gap: 28px; margin-top: 14px; }
.graphs { overflow-x: auto; }
.exercise { margin-bottom: 28px; }
.js .exercise:not(.shown) { display: none; }
.js .exercise h2 { display: none; }
.exercise h2 .tally { font-weight: 400; color: var(--muted); margin-left: 6px; }
.graph { position: relative; }
.graph svg { position: absolute; left: 0; top: 0; }
.edge { fill: none; stroke: var(--edge); stroke-width: 1.4; }
.arrowhead { fill: var(--edge); }
.node { position: absolute; display: flex; align-items: center; justify-content: space-between; gap: 6px;
  padding: 0 5px 0 9px; margin: 0; font: 13px/1 var(--mono); cursor: pointer; border-radius: 6px;
  border: 1.5px solid var(--line-k, #c9ced4); background: var(--fill, #f4f5f6); color: var(--ink-k, #8a9099); }
.node .name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.node .badge, .meaning .badge { flex: none; font: 600 11px/1 var(--sans); padding: 3px 6px; border-radius: 9px;
  background: var(--badge, #fff); color: var(--badge-ink, #fff); }
.node:hover { filter: brightness(0.95); }
.node:focus-visible { outline: 3px solid #0072b2; outline-offset: 2px; }
.node[aria-pressed="true"] { outline: 2px dashed #0072b2; outline-offset: 3px; }
.k-exact { --fill: #dff3ec; --line-k: #009e73; --ink-k: #1f2328; --badge: #00795a; }
.k-approximate { --fill: #e1eef8; --line-k: #0072b2; --ink-k: #1f2328; --badge: #0072b2; }
.k-local { --fill: #d55e00; --line-k: #9e4500; --ink-k: #fff; --badge: #fff; --badge-ink: #a84900; }
.k-inherited { --fill: repeating-linear-gradient(135deg, #fdf1d8 0 6px, #f2c46d 6px 9px);
  --line-k: #b27800; --ink-k: #1f2328; --badge: #8a5d00; }
.k-unknown { --fill: radial-gradient(#cc79a7 1.2px, #f8e6f0 1.6px) 0 0 / 7px 7px; --line-k: #a8527f;
  --ink-k: #1f2328; --badge: #a8527f; }
.node.k-unknown { border-style: dotted; border-width: 2px; }
.k-missing { --fill: #fff; --line-k: #7a8089; --ink-k: #4d535b; --badge: #6b7078; }
.node.k-missing { border-style: dashed; }
.k-error { --fill: #26292e; --line-k: #000; --ink-k: #fff; --badge: #f0e442; --badge-ink: #000; }
.k-loss { --fill: #fff; --line-k: #4d535b; --ink-k: #1f2328; font-weight: 700; }
.node.start { box-shadow: 0 0 0 2px #fff, 0 0 0 5px #111; }
.tab { position: absolute; background: #111; color: #fff; border-radius: 4px 4px 0 0;
  font: 700 11px/14px var(--sans); text-align: center; letter-spacing: .02em; }
aside { align-self: start; position: sticky; top: 12px; }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 20px;
  min-height: 120px; background: #fbfbfc; }
.panel h3 { margin: 0 0 8px; font-size: 16px; display: flex; align-items: baseline; justify-content: space-between; }
.panel .of { font: 400 12px var(--sans); color: var(--muted); }
.panel p { margin: 0 0 8px; }
.panel .empty { color: var(--muted); }
.meaning { display: flex; gap: 8px; align-items: baseline; }
.meaning.k-local .badge { background: #d55e00; color: #fff; }
.meaning.k-error .badge { background: #26292e; color: #f0e442; }
.start-note { font-weight: 600; }
.panel dl { margin: 0 0 8px; display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; }
.panel dl div { display: contents; }
.panel dt { color: var(--muted); }
.panel dd { margin: 0; font-family: var(--mono); font-size: 13px; }
.label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; margin-bottom: 2px !important; }
.hint { overflow-wrap: anywhere; }
.figures { border-collapse: collapse; margin: 0 0 10px; font-size: 13px; }
.figures th { font: 400 12px var(--mono); color: var(--muted); text-align: left; padding: 0 14px 2px 0; }
.figures td { font-family: var(--mono); padding: 0 14px 0 0; }
.panel pre { margin: 0 0 8px; padding: 6px 8px; background: #f0f2f4; border-radius: 4px; font-size: 12.5px;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.panel pre.yours { background: #fbeee6; }
.reading { margin: 0 0 10px; font-size: 13px; color: var(--muted); }
.legend { list-style: none; margin: 0; padding: 0; font-size: 13px; }
.legend li { display: flex; align-items: center; gap: 10px; margin-bottom: 6px; }
.swatch { position: static; flex: none; width: 112px; height: 24px; cursor: default; }
.swatch.ring { display: inline-block; border-radius: 6px; background: #fff; border: 1.5px solid #c9ced4;
  box-shadow: 0 0 0 2px #fff, 0 0 0 5px #111; font: 700 11px/21px var(--sans); text-align: center; margin: 5px 0 5px 5px; width: 107px; }
@media (max-width: 980px) { main { grid-template-columns: 1fr; } aside { position: static; } }
"""

JS = """
(function () {
  var root = document.documentElement, panel = document.getElementById("panel");
  var pinned = null;
  root.classList.add("js");
  function section() { return document.querySelector(".exercise.shown"); }
  function show(id) {
    panel.querySelectorAll(".detail").forEach(function (d) { d.hidden = d.id !== id; });
  }
  function rest() {
    var s = section();
    show(pinned ? pinned.dataset.detail : (s && s.dataset.start) || "detail-none");
  }
  function pin(node) {
    if (pinned) pinned.setAttribute("aria-pressed", "false");
    pinned = node === pinned ? null : node;
    if (pinned) pinned.setAttribute("aria-pressed", "true");
    rest();
  }
  document.querySelectorAll(".graph .node").forEach(function (node) {
    function preview() { show(node.dataset.detail); }
    node.addEventListener("mouseenter", preview);
    node.addEventListener("focus", preview);
    node.addEventListener("mouseleave", rest);
    node.addEventListener("blur", rest);
    node.addEventListener("click", function () { pin(node); });
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" && pinned) pin(pinned); });
  document.querySelectorAll(".tabs button").forEach(function (tab) {
    tab.addEventListener("click", function () {
      document.querySelectorAll(".tabs button").forEach(function (t) {
        t.setAttribute("aria-selected", String(t === tab));
      });
      document.querySelectorAll(".exercise").forEach(function (s) {
        s.classList.toggle("shown", s.id === tab.getAttribute("aria-controls"));
      });
      if (pinned) pin(pinned); else rest();
    });
  });
  rest();
})();
"""
