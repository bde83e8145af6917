"""Fail when a benchmark's ratio to its in-run baseline fell below a fraction of the saved one.

    python benchmarks/check_ratios.py benchmarks/baseline_quick.json current.json [--min-fraction 0.5]

Both files are pytest-benchmark ``--benchmark-json`` output; every benchmark records
``extra_info["ratio"]`` (higher is better: a speed-up over the loop, a rate over Ciw's,
placements over raw etcd transactions). Ratios, not times, because absolute times drift
from machine to machine while a ratio measured within one run mostly does not.
Exit status 1 lists every regression; benchmarks missing from either file are reported
but do not fail the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def ratios(path: Path) -> dict[str, float]:
    data = json.loads(path.read_text())
    return {b["fullname"]: float(b["extra_info"]["ratio"]) for b in data["benchmarks"] if "ratio" in b["extra_info"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("current", type=Path)
    parser.add_argument("--min-fraction", type=float, default=0.5)
    args = parser.parse_args(argv)
    saved, now = ratios(args.baseline), ratios(args.current)
    failures = []
    for name in sorted(saved.keys() & now.keys()):
        floor = args.min_fraction * saved[name]
        verdict = "ok" if now[name] >= floor else "REGRESSION"
        print(f"{verdict:10s} {name}: ratio {now[name]:.3g} (saved {saved[name]:.3g}, floor {floor:.3g})")
        if now[name] < floor:
            failures.append(name)
    for name in sorted(saved.keys() ^ now.keys()):
        print(f"{'missing':10s} {name}: only in {'the baseline' if name in saved else 'this run'}")
    if failures:
        print(f"{len(failures)} benchmark(s) fell below {args.min_fraction:g} of their saved ratio", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
