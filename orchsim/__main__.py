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

from orchsim.cli import fail, print_table, user_error
from orchsim.plugins import add_plugin_argument
from orchsim.run import TABLES, Results, run

__all__ = ["main"]

# summary column -> short header for the terminal table (the CSV keeps the full names)
_TABLE_COLUMNS = {
    "policy": "policy",
    "tasks_completed": "done",
    "tasks_running": "running",
    "tasks_pending": "pending",
    "unschedulable": "unsched",
    "tasks_never_started": "never_started",
    "rescheduled": "resched",
    "mean_wait": "wait_mean_s",
    "mean_wait_censored": "wait_cens_s",
    "p95_wait": "wait_p95_s",
    "p99_wait": "wait_p99_s",
    "makespan": "makespan_s",
    "peak_nodes_used": "peak_nodes",
    "fragmentation": "frag",
    "wall_seconds": "wall_s",
}


_SUBCOMMANDS = {"sweep": "orchsim.sweep_cli", "report": "orchsim.report"}


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
    return parser


def _print_table(summary: list[dict[str, Any]]) -> None:
    """One row per policy: the summary columns a terminal has room for, under short headers.

    Reads the summary rows, not a DataFrame, so that the command line never imports pandas.
    """
    names = list(dict.fromkeys(name for row in summary for name in row))
    columns = {c: h for c, h in _TABLE_COLUMNS.items() if c in names}
    columns |= {c: c.replace("mean_util_", "util_") for c in names if c.startswith("mean_util_")}
    rows = (
        [f"{value:.4g}" if isinstance(value, float) else str(value) for value in (row.get(c) for c in columns)]
        for row in summary
    )
    print_table(list(columns.values()), rows)


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


def _simulate(args: argparse.Namespace) -> tuple[Results, Path]:
    """Load the plugins and the scenario, run every policy, write the results; and where."""
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
    results.write(out, plots=not args.no_plots, format=args.format)
    return results, out


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
        results, out = _simulate(args)
    except Exception as err:
        return user_error(err, out=args.out)
    _print_table(results.summary_rows)
    files = ", ".join(f"{name}.{args.format}" for name in TABLES)
    print(f"wrote {out}/{files}" + ("" if args.no_plots else " and PNG plots"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
