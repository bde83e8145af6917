"""Command line: ``python -m orchsim SCENARIO [--policy NAME ...] [--out DIR] [--seed N]``.

Also ``python -m orchsim sweep ...`` (parameter grids) and ``python -m orchsim report ...``
(an HTML comparison page).

User mistakes (a bad scenario, a malformed trace, an unknown policy, an unwritable
``--out``) exit with status 2 and one message naming the file and the field or line; no
traceback (``orchsim.cli``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchsim.cli import fail, format_number, print_table, user_error
from orchsim.plugins import add_plugin_argument
from orchsim.run import TABLES, Results, run

__all__ = ["main"]

# What the default table shows: the numbers that tell policies apart, in ~80 columns.
# Shares are printed in %; util and stranded columns are added per resource (below).
_COMPACT = {
    "policy": "policy",
    "tasks_completed": "done",
    "unplaced": "unplaced",
    "mean_wait": "wait\nmean",
    "p95_wait": "wait\np95",
}
_SHORT_NAMES = {"memory": "mem"}  # in the compact headers, where every column counts
_COMPACT_TITLE = "wait in s (started tasks); util, stranded in % of live capacity; nodes: mean"


class ColumnsError(ValueError):
    """``--columns`` names a column the summary does not have."""


_SUBCOMMANDS = {"sweep": "orchsim.sweep_cli", "report": "orchsim.report", "replay": "orchsim.replay_cli"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchsim",
        description="Simulate a cluster scenario under each scheduling policy "
        "(see also: python -m orchsim sweep --help, python -m orchsim report --help).",
    )
    parser.add_argument("scenario", type=Path, help="scenario YAML file")
    parser.add_argument("--policy", action="append", dest="policies", metavar="NAME", help="policy to run (repeatable)")
    parser.add_argument("--out", type=Path, help="output folder (default results/<name>/)")
    parser.add_argument("--seed", type=int, help="override the scenario's seed (a non-negative integer)")
    parser.add_argument(
        "--warmup",
        type=float,
        metavar="SECONDS",
        help="leave the first SECONDS of simulated time out of the statistics",
    )
    parser.add_argument("--until", type=float, metavar="SECONDS", help="end the measurement window at SECONDS")
    add_plugin_argument(parser, where=", before the scenario is read")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures (and matplotlib's start-up)")
    parser.add_argument(
        "--format",
        choices=["csv", "parquet"],
        default="csv",
        help="file format of the tables (default csv; parquet keeps full precision and suits large runs)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--columns",
        default="compact",
        metavar="compact|all|A,B,...",
        help="the printed table's columns: compact (default, fits 80 columns), all (every summary.csv column, "
        "then unplaced and mean_nodes_used, which are derived for the table), or a comma-separated list of them",
    )
    parser.add_argument("--wide", action="store_const", const="all", dest="columns", help="same as --columns all")
    return parser


def _print_table(results: Results, columns: str) -> None:
    """One row per policy: the compact columns (default), every column (``all``) or those named.

    Reads the summary rows and numpy columns, not DataFrames, so that the command line
    never imports pandas.
    """
    rows = _table_rows(results)
    if columns == "compact":
        headers, cells = _compact(rows, results)
        print_table(headers, cells, title=_COMPACT_TITLE)
        return
    names = [*rows[0]] if columns == "all" else ["policy", *_named_columns(columns, rows[0])]
    cells = [[format_number(row[name]) for name in names] for row in rows]
    print_table(names, cells, transpose_if_wide=True)


def _table_rows(results: Results) -> list[dict[str, Any]]:
    """The summary rows with the table's derived columns (unplaced tasks, mean nodes in use) added."""
    import numpy as np

    series = results.table("timeseries")
    metrics = results.scenario.metrics
    rows = []
    for row in results.summary_rows:
        mine = series["policy"] == row["policy"]
        times, used = series["time"][mine], series["nodes_used"][mine].astype(float)
        window = (times >= metrics.warmup) & (times < (metrics.until if metrics.until is not None else np.inf))
        used = used[window] if window.any() else used
        unplaced = int(row["tasks_pending"]) + int(row["unschedulable"])
        rows.append({**row, "unplaced": unplaced, "mean_nodes_used": float(used.mean()) if len(used) else 0.0})
    return rows


def _compact(rows: list[dict[str, Any]], results: Results) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the default table.

    Utilisation is shown for the resources some task asks for (a resource nobody requests
    is 0 for every policy), and stranded capacity for the busiest of them: the one
    whose free leftovers on busy nodes decide what else fits.
    """
    # plots.requested_resources's rule, not imported from there: that would load matplotlib.
    demand, resources = results.workload.demand, results.workload.resources
    asked = [r for i, r in enumerate(resources) if demand.size and demand[:, i].any()] or list(resources)
    busiest = max(asked, key=lambda r: sum(row[f"mean_util_{r}"] for row in rows))
    short = {r: _SHORT_NAMES.get(r, r) for r in asked}
    columns = dict(_COMPACT) | {f"mean_util_{r}": f"util\n{short[r]}" for r in asked}
    columns |= {"mean_nodes_used": "nodes\nused", f"mean_stranded_{busiest}": f"stranded\n{short[busiest]}"}

    def cell(name: str, value: Any) -> str:
        share = name.startswith(("mean_util_", "mean_stranded_"))
        return format_number(100 * value if share else value)

    return list(columns.values()), [[cell(name, row[name]) for name in columns] for row in rows]


def _named_columns(text: str, row: dict[str, Any]) -> list[str]:
    """The column names of ``--columns a,b,c``, checked against the summary's.

    Raises:
        ColumnsError: a name that is not a column, with the valid ones.
    """
    names = [name.strip() for name in text.split(",") if name.strip() and name.strip() != "policy"]
    unknown = [name for name in names if name not in row]
    if unknown or not names:
        valid = ", ".join(name for name in row if name != "policy")
        named = ", ".join(unknown) or repr(text)
        raise ColumnsError(f"--columns: unknown column {named}; use compact, all or: {valid}")
    return names


def _check_numbers(args: argparse.Namespace) -> str | None:
    """The command-line numbers' own range checks, named as the user typed them."""
    if args.seed is not None and args.seed < 0:
        return f"--seed: must be a non-negative integer, got {args.seed}"
    for flag, value in (("--warmup", args.warmup), ("--until", args.until)):
        if value is not None and not (value >= 0 and value != float("inf")):
            return f"{flag}: must be a finite number of seconds >= 0, got {value}"
    if args.warmup is not None and args.until is not None and args.until <= args.warmup:
        return f"--until ({args.until}) must be after --warmup ({args.warmup})"
    return None


def _simulate(args: argparse.Namespace) -> tuple[Results, Path, bool]:
    """Load the plugins and the scenario, run every policy, write the results; where, and if over an earlier run.

    The default folder is named after the scenario, not the policies: a run with ``--policy``
    replaces a full run's files, which the closing line says rather than do silently.
    """
    from orchsim.plugins import load_plugins
    from orchsim.scenario import load_scenario

    load_plugins(args.plugins)
    results = run(
        load_scenario(args.scenario),
        policies=args.policies,
        seed=args.seed,
        progress=not args.quiet,
        warmup=args.warmup,
        until=args.until,
    )
    out = args.out or Path("results") / results.scenario.name
    replaced = (out / f"summary.{args.format}").exists()
    results.write(out, plots=not args.no_plots, format=args.format)
    return results, out, replaced


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (2 for a user's mistake).

    ``python -m orchsim SCENARIO ...`` simulates; ``python -m orchsim sweep ...`` and
    ``python -m orchsim report ...`` hand over to their own modules.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in _SUBCOMMANDS:
        import importlib

        return int(importlib.import_module(_SUBCOMMANDS[args_list[0]]).main(args_list[1:]))
    args = _parser().parse_args(args_list)
    problem = _check_numbers(args)
    if problem:
        return fail(problem)
    try:
        results, out, replaced = _simulate(args)
    except Exception as err:
        return user_error(err, out=args.out)
    try:
        _print_table(results, args.columns)
    except ColumnsError as err:
        return fail(str(err))
    files = ", ".join(f"{name}.{args.format}" for name in TABLES)
    plots = "" if args.no_plots else " and PNG plots"
    print(f"wrote {out}/{files}{plots}" + (" (replacing an earlier run's files there)" if replaced else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
