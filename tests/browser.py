"""check's web page in a real browser: headless Chromium, when one is on PATH (CI has none).

    chromium()                                 the browser's path, or None
    dump_dom(page, scratch)                    the page's DOM after its script ran
    screenshot(page, png, scratch, size)       a PNG of the page as a window of `size` shows it

Run as a script, it makes the README's picture, docs/check-report.png: the lecture's solution
with two classic mistakes (Bessel's correction forgotten in exercise 1, the 1/n of the mean
forgotten in exercise 4's dlogits) checked, rendered and photographed 1200 pixels wide:

    PYTHONPATH=. python tests/browser.py
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PICTURE = ROOT / "docs" / "check-report.png"
# (exercise, the lecture's line, the mistake)
MISTAKES = ((1, "dbndiff2 = 1.0 / (n - 1) * np.ones_like", "dbndiff2 = 1.0 / n * np.ones_like"),
            (4, "    dlogits /= n\n    dh = ", "    dh = "))


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run(page, scratch, *args):
    """Chromium on the file `page`, offline and without a profile of its own."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={scratch}", *args,
               Path(page).resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def dump_dom(page, scratch):
    return run(page, scratch, "--dump-dom").stdout


def screenshot(page, png, scratch, size=(1200, 900)):
    run(page, scratch, f"--screenshot={png}", f"--window-size={size[0]},{size[1]}")
    return png


def readme_picture(out=PICTURE):
    """docs/check-report.png, made again: cropped below the page's end, in 256 colours (Pillow,
    which matplotlib brings, does both)."""
    from PIL import Image, ImageChops

    from oracle.grade import check_solution
    from oracle.grade.picture import render_html

    source = (ROOT / "tests" / "solutions" / "lecture_numpy.py").read_text()
    for exercise, line, mistake in MISTAKES:
        at = source.index(line, source.index(f"def exercise{exercise}("))
        source = source[:at] + mistake + source[at + len(line):]
    with tempfile.TemporaryDirectory() as scratch:
        solution = Path(scratch) / "my_backprop.py"
        solution.write_text(source)
        report = check_solution(solution).as_dict()
        report["file"] = solution.name
        page = Path(scratch) / "report.html"
        page.write_text(render_html(report))
        shot = Image.open(screenshot(page, Path(scratch) / "shot.png", Path(scratch) / "profile",
                                     (1200, 1600))).convert("RGB")
    content = ImageChops.difference(shot, Image.new("RGB", shot.size, "white")).getbbox()
    shot = shot.crop((0, 0, shot.width, min(shot.height, content[3] + 24)))
    shot.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, optimize=True)
    return out


if __name__ == "__main__":
    if not chromium():
        sys.exit("no chromium on PATH")
    out = readme_picture()
    print(f"{out}: {out.stat().st_size // 1024} KB")
