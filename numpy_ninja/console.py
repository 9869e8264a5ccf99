"""What every numpy-ninja command shows the person at the terminal, written once: errors in one
line, progress of long work, and tables. The oracle's commands use it too."""
import math
import sys
import time


class UserError(Exception):
    """Something the user can put right (a file, a setting, a place to write): a command says it
    in one line on stderr and exits with status 1."""


def error(prog, message):
    """The one line a command prints for a user error."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


class Progress:
    """How far long work has come, on stderr, for the person waiting: on a terminal a tqdm bar
    (bar=True); otherwise a plain line each time `done` passes another 1/parts of `total`, and at
    least every `every` seconds, once `delay` seconds have gone by; nothing when quiet.

        progress = Progress(None, total=200_000, bar=True)   # "step 10,000/200,000  ..."
        progress.update(step, "loss 2.1234")
        progress = Progress("numpy-ninja compare", delay=2, every=2)
        progress.update(status="the broken-up graph in float32")   # "... (4 s)"
    """

    def __init__(self, label, total=None, *, unit="step", start=0, parts=20, every=5.0, delay=0.0,
                 bar=False, quiet=False):
        self.label, self.total, self.unit, self.quiet = label, total, unit, quiet
        self.start, self.t0 = start, time.monotonic()
        self.stride = total / parts if total else math.inf  # units between plain lines
        self.next_done = start + self.stride
        self.every, self.next_time = every, self.t0 + (delay or every)
        self.bar = None
        if bar and not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, unit=unit, dynamic_ncols=True)

    def update(self, done=None, status=""):
        """done: units done so far (None: the work is not counted); status: what it is doing, or
        a figure to show beside the count."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            if status:
                self.bar.set_postfix_str(status, refresh=False)
            return
        now = time.monotonic()
        crossed = done is not None and (done >= self.next_done or done == self.total)
        if not crossed and now < self.next_time:
            return
        self.next_time = now + self.every
        if done is not None:
            self.next_done = done + self.stride
        print(self.line(done, status, now), file=sys.stderr, flush=True)

    def line(self, done, status, now):
        parts = []
        if done is not None:
            parts.append(f"{self.unit} {done:,}/{self.total:,}" if self.total else f"{done:,} {self.unit}s")
        if status:
            parts.append(status)
        elapsed = now - self.t0
        if self.total and done is not None and done > self.start and elapsed > 0:
            rate = (done - self.start) / elapsed
            parts.append(f"{rate:,.0f} {self.unit}s/s  {(self.total - done) / rate:,.0f} s left")
        else:
            parts.append(f"({elapsed:.0f} s)")
        text = "  ".join(parts)
        return f"{self.label}: {text}" if self.label else text

    def close(self):
        if self.bar is not None:
            self.bar.close()


def render_table(head, rows, style="table"):
    """Rows of strings under a header, as lines: aligned columns for a terminal, or a markdown
    table (style="markdown")."""
    if style == "markdown":
        def cells(row):
            return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
        return [cells(head), "|" + "---|" * len(head)] + [cells(r) for r in rows]
    widths = [max(map(len, col)) for col in zip(head, *rows)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *rows]]
