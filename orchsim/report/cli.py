"""``python -m orchsim report``: ``write_report`` from the command line.

``python -m orchsim report SCENARIO... [--out DIR] [--policy NAME ...] [--seed N | --seeds
N|LIST] [--baseline POLICY] [--warmup S] [--until S] [--processes N] [--executor dask
[--scheduler ADDRESS]] [--quiet]``. Prints the page's path; a progress bar over the runs goes to
stderr while they run. A mistake exits 2 with one line (``orchsim.cli``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from orchsim.cli import parse_seeds, user_error
from orchsim.plugins import add_plugin_argument
from orchsim.report.write import write_report
from orchsim.sweep_cli import add_executor_arguments, attach_negative_values, executor_spec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchsim report",
        description="Run scenarios under each policy and write one self-contained HTML page "
        "(tables and embedded PNG figures) comparing the policies.",
    )
    parser.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO", help="scenario YAML file(s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results") / "report",
        metavar="DIR",
        help="output folder for report.html (default results/report/)",
    )
    parser.add_argument("--policy", action="append", dest="policies", metavar="NAME", help="policy to run (repeatable)")
    parser.add_argument("--seed", type=int, metavar="N", help="override every scenario's seed")
    parser.add_argument(
        "--seeds",
        metavar="N|LIST",
        help="several runs per scenario: a count (each scenario's seed and the next ones) or seeds (1,2,3; 7,); "
        "the table shows mean ± half-width of the Student-t interval, the figures the first seed",
    )
    parser.add_argument(
        "--baseline", metavar="POLICY", help="add a table of each other policy minus this one, paired by seed"
    )
    parser.add_argument("--warmup", type=float, metavar="SECONDS", help="simulated seconds left out at the start")
    parser.add_argument("--until", type=float, metavar="SECONDS", help="end of the measurement window (s)")
    add_plugin_argument(parser)
    parser.add_argument(
        "--processes", type=int, default=1, metavar="N", help="runs at once (default 1: in this process)"
    )
    add_executor_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchsim report ...``; returns the exit status (2 for user mistakes)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(attach_negative_values(argv, ("--seeds",)))
    policies = list(dict.fromkeys(args.policies)) if args.policies else None
    command = shlex.join(["python", "-m", "orchsim", "report", *argv])
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        path = write_report(
            args.scenarios,
            args.out,
            policies=policies,
            seed=args.seed,
            seeds=seeds,
            baseline=args.baseline,
            warmup=args.warmup,
            until=args.until,
            command=command,
            plugins=args.plugins,
            executor=executor_spec(args),
            progress=not args.quiet,
        )
    except Exception as err:
        return user_error(err, out=args.out)
    print(path)
    return 0
