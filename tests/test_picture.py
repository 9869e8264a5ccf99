"""check's web page (oracle.grade.picture): the lecture's graph with every tensor as a node and
exactly its edges, one class per verdict, the summary's first row to fix marked and only it,
every string escaped, nothing loaded from anywhere, the same page for the same report; and, when
Chromium is installed, the page run and photographed by a real browser."""
import html
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from numpy_ninja.atomic import GRAD_NAMES, PARAM_NAMES
from oracle.grade.picture import render_html
from oracle.grade.report import Report, summary
from oracle.reference.graph import STEPS
from browser import chromium, dump_dom, screenshot

EVIL = "<script>alert('x')</script> & \"quoted\""
# the fills of some verdicts, as the page's CSS gives them
FILLS = {"local": (0xd5, 0x5e, 0x00), "exact": (0xdf, 0xf3, 0xec), "approximate": (0xe1, 0xee, 0xf8),
         "error": (0x26, 0x29, 0x2e)}


def row(exercise, name, verdict, cause=None, upstream=None, hint=None, figures=(None, None, None), **extra):
    return dict(exercise=exercise, name=name, verdict=verdict, cause=cause, upstream=upstream, hint=hint,
                **dict(zip(("max_abs_diff", "max_ulp", "rel_err"), figures)), **extra)


def report(rows, notes=(), file="my <solution>.py"):
    return Report(rows, "float64", ["n=2", "n=32"], 42, file, list(notes)).as_dict()


def mixed():
    """Every verdict and cause once or more; two local rows in exercise 1 (counts_sum_inv comes
    first in the report's order, from the loss back), a later error, and exercises 2-4."""
    special = {
        "counts_sum_inv": ("wrong", "local", None, "a keepdims is missing", (1.5937, 12, 0.25),
                           dict(where={"location": "cell 12, line 3", "text": "dcounts_sum_inv = (t.counts * dprobs).sum(1) < 2 && 'x'"})),
        "counts_sum": ("wrong", "inherited", "counts_sum_inv", "right given your dcounts_sum_inv", (0.5, 3, 0.1), {}),
        "counts": ("wrong", "unknown", None, None, (0.5, 3, 0.1), {}),
        "norm_logits": ("missing", None, None, None, (None, None, None), {}),
        "bndiff2": ("wrong", "local", None, EVIL, (2e-3, 7, 1e-3), {}),
        "emb": ("error", None, None, "ValueError: shapes (2,27) (2,) (line 14)", (None, None, None), {}),
        "logprobs": ("exact", None, None, None, (0.0, 0, 0.0), {}),
        "probs": ("exact", None, None, None, (0.0, 0, 0.0), {}),
        "W1": ("exact", None, None, None, (0.0, 0, 0.0), {}),  # high enough for a 900px screenshot
    }
    rows = []
    for name in GRAD_NAMES:
        verdict, cause, upstream, hint, figures, extra = special.get(
            name, ("approximate", None, None, "rounding only", (1e-17, 2, 3e-18), {}))
        rows.append(row(1, name, verdict, cause, upstream, hint, figures, **extra))
    rows += [row(2, "logits", "approximate", hint="rounding only", figures=(1e-16, 29, 1e-17)),
             row(3, "hprebn", "wrong", "local", hint="off by a factor n", figures=(0.3, 9, 0.2))]
    rows += [row(4, name, "wrong", "inherited", "logits", "right given your dlogits", (3.4, 99, 0.99))
             for name in GRAD_NAMES if name in PARAM_NAMES]
    return report(rows, notes=["exercise1 returned 'dx', which is not one of its gradients (ignored) <i>"])


class Page(HTMLParser):
    """What the tests read of the page: per exercise section, its nodes and edges."""

    def __init__(self, text):
        super().__init__()
        self.sections, self.section, self.elements = {}, None, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        a["tag"], a["classes"] = tag, (a.get("class") or "").split()
        self.elements.append(a)
        if tag == "section":
            self.section = self.sections.setdefault(a["id"], dict(nodes={}, edges=[], tabs=[], tips=[], attrs=a))
        elif "node" in a["classes"] and self.section is not None:
            self.section["nodes"][a["data-name"]] = a
        elif "edge" in a["classes"]:
            self.section["edges"].append((a["data-from"], a["data-to"]))
        elif "arrowhead" in a["classes"]:
            self.section["tips"].append(a["points"].split()[-1])
        elif "tab" in a["classes"]:
            self.section["tabs"].append(a)

    def handle_endtag(self, tag):
        if tag == "section":
            self.section = None


def rect(a):
    """(x0, y0, x1, y1) of an absolutely placed element's style."""
    s = {k: float(v) for k, v in re.findall(r"(left|top|width|height):([\d.]+)px", a["style"])}
    return s["left"], s["top"], s["left"] + s["width"], s["top"] + s["height"]


def overlap(a, b, margin=0):
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


def test_every_tensor_is_a_node_in_one_graph_per_exercise():
    page = Page(render_html(mixed()))
    assert list(page.sections) == ["ex-1", "ex-2", "ex-3", "ex-4"]
    for section in page.sections.values():
        assert set(section["nodes"]) == set(GRAD_NAMES) | {"loss"}
        assert len(GRAD_NAMES) == 26


def test_edges_are_the_lecture_graph():
    expected = sorted((x, step.out) for step in STEPS for x in step.inputs)
    assert ("W1", "hprebn") in expected and ("counts", "probs") in expected and ("logprobs", "loss") in expected
    for section in Page(render_html(mixed())).sections.values():
        assert sorted(section["edges"]) == expected


def test_nodes_are_drawn_in_forward_order_without_overlapping():
    section = Page(render_html(mixed())).sections["ex-1"]
    nodes = section["nodes"]
    top = {name: rect(a)[1] for name, a in nodes.items()}
    for step in STEPS:
        assert all(top[x] < top[step.out] for x in step.inputs), step.line
    # the forward lines straight down, one row each, and every parameter to their right
    lines = [rect(nodes[step.out]) for step in STEPS]
    assert len({box[0] for box in lines}) == 1 and len({box[1] for box in lines}) == len(STEPS)
    assert all(rect(nodes[name])[0] > lines[0][2] for name in PARAM_NAMES if name != "C")
    assert len(set(section["tips"])) == len(section["tips"]) == len(section["edges"])  # no arrow hides another
    boxes = [rect(a) for a in nodes.values()]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if overlap(a, b, margin=8)]


def test_each_verdict_has_its_own_class_colour_and_word():
    page_text = render_html(mixed())
    ex1 = Page(page_text).sections["ex-1"]["nodes"]
    kinds = {name: [c for c in a["classes"] if c.startswith("k-")] for name, a in ex1.items()}
    assert kinds["logprobs"] == ["k-exact"] and kinds["bnvar"] == ["k-approximate"]
    assert kinds["counts_sum_inv"] == ["k-local"] and kinds["counts_sum"] == ["k-inherited"]
    assert kinds["counts"] == ["k-unknown"] and kinds["norm_logits"] == ["k-missing"]
    assert kinds["emb"] == ["k-error"]
    fills = dict(re.findall(r"\.k-(\w+) \{ --fill: ([^;]+);", page_text))
    graded = ("exact", "approximate", "local", "inherited", "unknown", "missing", "error")
    assert set(graded) <= set(fills) and len({fills[k] for k in graded}) == len(graded)
    # a second channel: each verdict's node says it in a word of its own
    words = {}
    for name in ("logprobs", "bnvar", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "emb"):
        match = re.search(rf'data-name="{name}"[^>]*>.*?<span class="badge">([^<]+)</span>', page_text)
        words[name] = match.group(1)
    assert len(set(words.values())) == 7


def test_an_exercise_colours_only_the_tensors_it_grades():
    sections = Page(render_html(mixed())).sections
    for ex, graded in (("ex-2", {"logits"}), ("ex-3", {"hprebn"}), ("ex-4", set(PARAM_NAMES))):
        coloured = {n for n, a in sections[ex]["nodes"].items()
                    if not {"k-ungraded", "k-loss"} & set(a["classes"])}
        assert coloured == graded, ex


def test_where_the_summary_starts_is_marked_and_only_it():
    d = mixed()
    assert "start with exercise 1 counts_sum_inv" in summary(Report.from_dict(d))
    page = Page(render_html(d))
    marked = [(s, n) for s, section in page.sections.items() for n, a in section["nodes"].items()
              if "start" in a["classes"]]
    assert marked == [("ex-1", "counts_sum_inv")]  # not bndiff2 (first in forward order), not exercise 3's
    assert [len(s["tabs"]) for s in page.sections.values()] == [1, 0, 0, 0]
    # the summary's rule, whatever it picks: here the error of exercise 2, after right rows
    rows = [row(1, n, "approximate") for n in GRAD_NAMES] + [row(2, "logits", "error", hint="boom")]
    rows += [row(3, "hprebn", "wrong", "local")]
    page = Page(render_html(report(rows)))
    assert [(s, n) for s, section in page.sections.items() for n, a in section["nodes"].items()
            if "start" in a["classes"]] == [("ex-2", "logits")]
    # exercise 4 alone, every wrong row inherited: the summary starts at dlogits, which it does not grade
    rows = [row(4, n, "wrong", "inherited", "logits" if n in ("W2", "b2") else "hpreact")
            for n in GRAD_NAMES if n in PARAM_NAMES]
    d = report(rows)
    assert "start with exercise 4 dlogits" in summary(Report.from_dict(d))
    section = Page(render_html(d)).sections["ex-4"]
    assert [n for n, a in section["nodes"].items() if "start" in a["classes"]] == ["logits"]
    assert "k-ungraded" in section["nodes"]["logits"]["classes"] and len(section["tabs"]) == 1
    passed = render_html(report([row(1, n, "exact") for n in GRAD_NAMES]))
    assert 'class="tab"' not in passed and not re.search(r'class="[^"]*\bstart\b', passed)
    assert "PASSED" in passed


@pytest.mark.parametrize("name", GRAD_NAMES)
def test_the_start_label_overlaps_no_node(name):
    rows = [row(1, n, "wrong", "local" if n == name else "inherited") for n in GRAD_NAMES]
    section = Page(render_html(report(rows))).sections["ex-1"]
    (tab,) = section["tabs"]
    label = rect(tab)
    assert label[0] >= 0 and label[1] >= 0
    others = [rect(a) for n, a in section["nodes"].items() if n != name]
    assert not [box for box in others if overlap(label, box, margin=2)]
    below = rect(section["nodes"][name])
    assert label[3] <= below[1] and label[0] <= below[2] and below[0] <= label[2]  # on top of it


def test_every_string_is_escaped():
    d = mixed()
    d["batches"] = ["n=2 <b>"]
    text = render_html(d)
    assert text.count("<script") == 1 and "alert('x')</script>" not in text
    assert html.escape(EVIL) in text
    assert "&lt;solution&gt;" in text and "&lt;i&gt;" in text and "n=2 &lt;b&gt;" in text
    assert html.escape("(t.counts * dprobs).sum(1) < 2 && 'x'") in text
    assert "<b>" not in text and "<i>" not in text and "<solution>" not in text


def test_the_page_loads_nothing():
    text = render_html(mixed())
    lowered = text.lower()
    for needle in ("http", "@import", "url(", "src=", "<link", "<img", "<iframe", "<object", "<embed"):
        assert needle not in lowered, needle
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', lowered))


def test_the_same_report_gives_the_same_page():
    d = mixed()
    assert render_html(d) == render_html(json.loads(json.dumps(d)))


def test_details_hold_the_row_and_the_learners_line_when_it_has_one():
    text = render_html(mixed())
    detail = re.search(r'<div class="detail" id="detail-1-counts_sum_inv" hidden>(.*?)</div>\s*<div class="detail"',
                       text, re.S).group(1)
    for figure in ("1.59e+00", ">12<", "2.50e-01", "a keepdims is missing", "cell 12, line 3", "local",
                   "dcounts_sum_inv = (t.counts * dprobs).sum(1) &lt; 2", "counts_sum_inv = counts_sum**-1"):
        assert figure in detail, figure
    missing = re.search(r'id="detail-1-norm_logits" hidden>(.*?)</div>\s*<div class="detail"', text, re.S).group(1)
    assert "<td></td><td></td><td></td>" in missing and "your line" not in missing  # blank when null


def test_the_header_has_the_facts_summary_and_notes():
    d = mixed()
    text = render_html(d)
    for fact in ("my &lt;solution&gt;.py", "float64", "2 batches", "n=2; n=32", ">42<",
                 html.escape(summary(Report.from_dict(d))), "which is not one of its gradients"):
        assert fact in text, fact


# ---------------------------------------------------------------- in a real browser

needs_chromium = pytest.mark.skipif(not chromium(), reason="no chromium or chromium-browser on PATH")


# run after the page's script: what the panel shows after each thing a reader does
PROBE = """<script>
var seen = [], node = function (ex, name) {
  return document.querySelector("#" + ex + ' .node[data-name="' + name + '"]'); };
var shown = function () {
  return Array.from(document.querySelectorAll("#panel .detail")).filter(function (d) {
    return !d.hidden; }).map(function (d) { return d.id; }).join(" "); };
var sections = function () {
  return Array.from(document.querySelectorAll(".exercise.shown")).map(function (s) { return s.id; }).join(" "); };
seen.push(sections(), shown());
node("ex-1", "bnvar").focus(); seen.push(shown());
node("ex-1", "bnvar").click(); node("ex-1", "h").focus(); seen.push(shown());
node("ex-1", "h").blur(); seen.push(shown());
node("ex-1", "C").dispatchEvent(new MouseEvent("mouseenter")); seen.push(shown());
node("ex-1", "C").dispatchEvent(new MouseEvent("mouseleave")); seen.push(shown());
document.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape"})); seen.push(shown());
document.getElementById("tab-3").click(); seen.push(shown());
seen.push(sections());
document.body.setAttribute("data-probe", JSON.stringify(seen));
</script>"""


@needs_chromium
def test_a_browser_runs_the_page(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(mixed()).replace("</body>", PROBE + "</body>"))
    dom = Page(dump_dom(page, tmp_path / "profile"))
    html_tag = next(e for e in dom.elements if e["tag"] == "html")
    assert "js" in html_tag["classes"]  # the script ran
    assert set(dom.sections["ex-1"]["nodes"]) == set(GRAD_NAMES) | {"loss"}
    probe = json.loads(next(e for e in dom.elements if e["tag"] == "body")["data-probe"])
    assert probe == [
        "ex-1",                     # the page opens on the exercise to start with
        "detail-1-counts_sum_inv",  # and its panel on where to start
        "detail-1-bnvar",           # a node tabbed to
        "detail-1-h",               # another, while bnvar is pinned by a click (or Enter)
        "detail-1-bnvar",           # left: back to the pinned one
        "detail-1-C",               # pointed at
        "detail-1-bnvar",           # and left
        "detail-1-counts_sum_inv",  # Escape lets go
        "detail-none",              # exercise 3's tab: nothing to start with there
        "ex-3"]


@needs_chromium
def test_a_screenshot_shows_the_verdicts_colours(tmp_path):
    image = pytest.importorskip("matplotlib.image", reason="matplotlib reads the PNG")
    page = tmp_path / "report.html"
    page.write_text(render_html(mixed()))
    png = screenshot(page, tmp_path / "shot.png", tmp_path / "profile", (1200, 900))
    pixels = np.round(image.imread(png)[..., :3] * 255).astype(int)
    assert pixels.shape == (900, 1200, 3)
    colours = pixels.reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 50  # not blank
    for kind, fill in FILLS.items():
        assert (colours == fill).all(1).sum() > 300, kind
