"""Command line: ``python -m orchsim SCENARIO [--policy NAME ...] [--out DIR] [--seed N]``.

Also ``python -m orchsim sweep ...`` (parameter grids) and ``python -m orchsim report ...``
(an HTML comparison page).

User mistakes (a bad scenario, a malformed trace, an unknown policy) exit with status 2
and one message naming the file and the field or line; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from orchsim.plugins import add_plugin_argument
from orchsim.scenario import ScenarioError, load_scenario

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


_SUBCOMMANDS = {"sweep": "orchsim.sweep", "report": "orchsim.report"}


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
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _print_table(summary) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    headers = {c: h for c, h in _TABLE_COLUMNS.items() if c in summary.columns}
    headers |= {c: c.replace("mean_util_", "util_") for c in summary.columns if c.startswith("mean_util_")}
    table = Table(show_header=True, header_style="bold")
    for column, header in headers.items():
        table.add_column(header, justify="left" if column == "policy" else "right", no_wrap=True)
    for _, row in summary.iterrows():
        cells = []
        for column in headers:
            value = row[column]
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        table.add_row(*cells)
    # Never truncate when the output is a file or a pipe (CI logs, tests).
    Console(width=None if sys.stdout.isatty() else 250).print(table)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status.

    ``python -m orchsim SCENARIO ...`` simulates; ``python -m orchsim sweep ...`` and
    ``python -m orchsim report ...`` hand over to ``orchsim.sweep`` and ``orchsim.report``.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in _SUBCOMMANDS:
        import importlib

        return int(importlib.import_module(_SUBCOMMANDS[args_list[0]]).main(args_list[1:]))
    args = _parser().parse_args(args_list)
    from orchsim.scheduling import UnknownPolicyError
    from orchsim.traces import TraceError

    problem = _check_numbers(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from orchsim.plugins import PluginError, load_plugins

    try:
        load_plugins(args.plugins)
    except PluginError as err:
        print(f"error: --plugin: {err}", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(args.scenario)
        from orchsim import run

        results = run(
            scenario,
            policies=args.policies,
            seed=args.seed,
            progress=not args.quiet,
            warmup=args.warmup,
            until=args.until,
        )
    except (ScenarioError, TraceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except UnknownPolicyError as err:
        print(f"error: --policy: {err}", file=sys.stderr)
        return 2
    out = args.out or Path("results") / results.scenario.name
    results.write(out, plots=not args.no_plots)
    _print_table(results.summary)
    print(f"wrote {out}/tasks.csv, summary.csv, timeseries.csv" + ("" if args.no_plots else " and PNG plots"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
