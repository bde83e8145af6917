"""Markdown tables from a ``--benchmark-json`` file of the ``policy`` group.

    pytest benchmarks/test_policy.py --benchmark-only --benchmark-json=bench.json
    python benchmarks/report_policy.py bench.json

Prints three tables: the median time of one decision per policy and cluster size (with
the speedup over the in-run Go loop at the target size), the speedup over the loop at
every size, and the extra single-size entries; then the verdict on the issue's target.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BASELINE = "loop_baseline"
TARGET = (10_000, 4)
MISSING = "-"


def _size(n_nodes: int) -> str:
    return f"{n_nodes // 1000}k" if n_nodes >= 1000 else str(n_nodes)


def _us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 1000 else f"{us:.1f}"


def _ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.1f}x"


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A markdown table; the first ``text_columns`` columns left-aligned, the numbers right-aligned."""
    align = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def load(path: Path, group: str) -> tuple[dict[tuple[str, int, int], dict[str, Any]], list[dict[str, Any]]]:
    """Grid entries keyed by (policy, nodes, resources), and the other entries of the group."""
    data = json.loads(path.read_text())
    grid: dict[tuple[str, int, int], dict[str, Any]] = {}
    extras: list[dict[str, Any]] = []
    for bench in data["benchmarks"]:
        if bench.get("group") != group:
            continue
        params = bench.get("params") or {}
        if {"policy", "n_nodes", "n_resources"} <= params.keys():
            grid[(params["policy"], int(params["n_nodes"]), int(params["n_resources"]))] = bench
        else:
            extras.append(bench)
    return grid, extras


def report(path: Path, group: str = "policy") -> str:
    grid, extras = load(path, group)
    if not grid and not extras:
        return f"no benchmarks of group {group!r} in {path}"
    sizes = sorted({(n, r) for _, n, r in grid})
    policies = sorted({p for p, _, _ in grid} - {BASELINE}) + (
        [BASELINE] if any(k[0] == BASELINE for k in grid) else []
    )
    columns = [f"{_size(n)} x {r}" for n, r in sizes]
    target_label = f"{_size(TARGET[0])} x {TARGET[1]}"

    def speedup(key: tuple[str, int, int]) -> float | None:
        bench = grid.get(key)
        return None if bench is None else bench["extra_info"].get("speedup_vs_loop")

    medians = []
    for p in policies:
        cells = [_us(grid[(p, n, r)]["stats"]["median"]) if (p, n, r) in grid else MISSING for n, r in sizes]
        medians.append([f"`{p}`", *cells, _ratio(speedup((p, *TARGET)))])
    out = [
        "Median time of one decision, µs (nodes x resources):",
        "",
        _table(["policy", *columns, f"speedup vs loop at {target_label}"], medians),
        "",
        "Speedup over the Go loop measured in the same run (loop median / policy median):",
        "",
        _table(["policy", *columns], [[f"`{p}`", *(_ratio(speedup((p, n, r))) for n, r in sizes)] for p in policies]),
    ]
    if extras:
        rows = []
        for bench in extras:
            info = bench["extra_info"]
            size = f"{_size(info.get('n_nodes', 0))} x {info.get('n_resources', '?')}"
            request = json.dumps(info.get("request", {}), separators=(", ", ": "))
            rows.append(
                [
                    f"`{bench['name']}`",
                    f"`{info.get('policy', '?')}`",
                    size,
                    f"{info.get('request_form', 'vector')} {request}",
                    _us(bench["stats"]["median"]),
                    _ratio(info.get("speedup_vs_loop")),
                ]
            )
        out += [
            "",
            "Other entries:",
            "",
            _table(["benchmark", "policy", "size", "request", "median µs", "vs loop"], rows, text_columns=4),
        ]
    target = grid.get(("bin_packing", *TARGET))
    if target is not None and "target_median_s" in target["extra_info"]:
        info, med = target["extra_info"], target["stats"]["median"]
        ok = [
            p
            for p in policies
            if p != BASELINE and grid.get((p, *TARGET), {}).get("extra_info", {}).get("meets_target")
        ]
        out += [
            "",
            f"Target at {target_label} (median < {info['target_median_s'] * 1e6:g} µs and"
            f" >= {info['target_speedup']:g}x the loop): `bin_packing` {_us(med)} µs,"
            f" {_ratio(info['speedup_vs_loop'])} -> "
            f"{'met' if info['meets_target'] else 'NOT met'}; policies meeting it: "
            f"{', '.join(f'`{p}`' for p in ok) or 'none'}.",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="file written by pytest --benchmark-json")
    parser.add_argument("--group", default="policy")
    args = parser.parse_args(argv)
    print(report(args.json, args.group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
