"""``python -m orchsim sweep SCENARIO --param workload.0.rate --values 1,1.5,2 --seeds 5``.

Runs ``orchsim.sweep`` over the grid, writes ``sweep_replications.csv`` (every run) and
``sweep.csv`` (mean and Student-t interval per value and policy), and prints the interval
table. With ``--baseline POLICY`` it also writes ``sweep_paired.csv`` and prints each other
policy minus the baseline, paired by seed; ``--warmup``/``--until`` set the measurement
window of every run. Arguments, seeds, the window and the baseline are checked before
anything runs; a mistake exits 2 with one line (``orchsim.cli``).

Every finished run is kept in ``--out``/jobs/ as it ends, so the same command run again
(after a crash, a kill, a lost cluster) runs only what is missing; ``--force`` runs all
again. ``--executor dask [--scheduler tcp://host:8786]`` runs the jobs on a Dask cluster.
The terminal shows one table per metric with the policies side by side, fitted to the
terminal's width (``orchsim.sweep_tables``).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchsim.cli import parse_seeds, user_error
from orchsim.intervals import paired_differences, summarize
from orchsim.plugins import add_plugin_argument, load_plugins
from orchsim.scenario import load_scenario
from orchsim.sweep import SweepError, check_baseline, sweep_replications
from orchsim.sweep_executor import BACKENDS, ExecutorSpec
from orchsim.sweep_tables import print_intervals, print_paired, terminal_width
from orchsim.table_files import write_table

__all__ = ["main"]

Number = int | float


def _parse_values(text: str) -> list[Number]:
    """``1,1.5,2`` -> [1, 1.5, 2]; integers stay integers so integer fields accept them."""
    values: list[Number] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        number: Number
        try:
            number = int(token)
        except ValueError:
            try:
                number = float(token)
            except ValueError:
                raise SweepError(f"--values: {token!r} is not a number") from None
        if not math.isfinite(number):
            raise SweepError(f"--values: {token!r} is not a finite number")
        values.append(number)
    if not values:
        raise SweepError("--values: no values given")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchsim sweep",
        description="Run a scenario over policies x values of one parameter x seeds (in parallel) "
        "and print each metric's mean and Student-t confidence interval per (value, policy).",
    )
    parser.add_argument("scenario", type=Path, help="scenario YAML file")
    parser.add_argument("--param", metavar="PATH", help="dotted path of a numeric field, e.g. workload.0.rate")
    parser.add_argument("--values", metavar="LIST", help="comma-separated values for --param, e.g. 1,1.5,2")
    parser.add_argument("--policy", action="append", dest="policies", metavar="NAME", help="policy (repeatable)")
    parser.add_argument(
        "--seeds", default="5", metavar="N|LIST", help="replications (5, the default) or explicit seeds (1,2,3; 7,)"
    )
    parser.add_argument(
        "--baseline",
        metavar="POLICY",
        help="also print (and write sweep_paired.csv) each other policy minus this one, paired by seed",
    )
    parser.add_argument("--warmup", type=float, metavar="SECONDS", help="simulated seconds left out at the start")
    parser.add_argument("--until", type=float, metavar="SECONDS", help="end of the measurement window (s)")
    parser.add_argument("--processes", type=int, metavar="N", help="worker processes (default: CPU count)")
    parser.add_argument(
        "--metric", action="append", dest="metrics", metavar="NAME", help="summary column to aggregate (repeatable)"
    )
    parser.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default results/<name>/sweep/)")
    parser.add_argument(
        "--format", choices=["csv", "parquet"], default="csv", help="file format of the tables (default csv)"
    )
    add_plugin_argument(parser, where=", here and in every worker")
    add_executor_arguments(parser)
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take the runs already kept in OUT/jobs/ from an earlier run of the same sweep (default on)",
    )
    parser.add_argument("--force", action="store_true", help="run every job again, replacing the kept results")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor``, ``--scheduler``, ``--ship-inputs``: where the jobs run (``sweep`` and ``report``)."""
    parser.add_argument(
        "--executor",
        default="processes",
        metavar="NAME",
        help=f"where jobs run: {' or '.join(BACKENDS)} (default processes; dask needs orchsim[cluster])",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="--executor dask: the scheduler, e.g. tcp://host:8786 (default: a local cluster of --processes workers)",
    )
    parser.add_argument(
        "--ship-inputs",
        action="store_true",
        help="send trace files to the workers once (for workers that do not see them at the same path)",
    )


def executor_spec(args: argparse.Namespace) -> ExecutorSpec:
    """The executor the flags name; a scheduler without ``--executor dask`` is a mistake."""
    if args.scheduler is not None and args.executor != "dask":
        raise SweepError("--scheduler: only with --executor dask")
    if args.executor not in BACKENDS:
        raise SweepError(f"--executor: unknown {args.executor!r}; choose one of {', '.join(BACKENDS)}")
    return ExecutorSpec(args.executor, args.processes, args.scheduler, args.ship_inputs)


def attach_negative_values(argv: Sequence[str], flags: Sequence[str] = ("--values", "--seeds")) -> list[str]:
    """``--values -1,1`` -> ``--values=-1,1``: argparse takes a value starting with ``-`` for a flag."""
    fixed: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        following = next(tokens, None) if token in flags else None
        if following is not None and re.fullmatch(r"-[0-9.].*", following):
            fixed.append(f"{token}={following}")
        else:
            fixed += [token] if following is None else [token, following]
    return fixed


def _level(confidence: float) -> str:
    return f"{confidence:.0%}" if confidence * 100 == round(confidence * 100) else str(confidence)


@dataclass
class _Outcome:
    """What a sweep wrote, for the terminal: every run, the intervals, the paired differences."""

    raw: pd.DataFrame
    table: pd.DataFrame
    paired: pd.DataFrame | None
    out: Path
    format: str = "csv"  # the files' extension


def _replicate(args: argparse.Namespace) -> tuple[pd.DataFrame, Path]:
    """Check every argument, run the grid and save every run; returns the runs and the folder."""
    if (args.param is None) != (args.values is None):
        raise SweepError("--param and --values go together: give both or neither")
    if not 0 < args.confidence < 1:
        raise SweepError(f"--confidence: must be between 0 and 1, got {args.confidence}")
    values = _parse_values(args.values) if args.values is not None else None
    seeds = parse_seeds(args.seeds)
    load_plugins(args.plugins)
    scenario = load_scenario(args.scenario)
    policies = list(dict.fromkeys(args.policies)) if args.policies else None
    if args.baseline is not None:
        check_baseline(args.baseline, policies or scenario.policies)
    out = args.out or Path("results") / scenario.name / "sweep"
    raw = sweep_replications(
        scenario,
        parameter=args.param,
        values=values,
        policies=policies,
        seeds=seeds,
        progress=not args.quiet,
        warmup=args.warmup,
        until=args.until,
        plugins=args.plugins,
        executor=executor_spec(args),
        store=out / "jobs",
        resume=args.resume and not args.force,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_table(raw, out, "sweep_replications", args.format)
    return raw, out


def _sweep(args: argparse.Namespace) -> _Outcome:
    """Run and save the sweep, then aggregate; returns what the terminal shows.

    ``sweep_replications.csv`` is written before aggregating, so a mistyped ``--metric``
    never loses the runs.
    """
    raw, out = _replicate(args)
    paired = None
    try:
        table = summarize(raw, metrics=args.metrics, confidence=args.confidence)
        if args.baseline is not None:
            paired = paired_differences(raw, args.baseline, metrics=args.metrics, confidence=args.confidence)
    except SweepError as err:
        raise SweepError(f"{err}; the runs are saved in {out / f'sweep_replications.{args.format}'}") from None
    write_table(table, out, "sweep", args.format)
    if paired is not None:
        write_table(paired, out, "sweep_paired", args.format)
    return _Outcome(raw, table, paired, out, args.format)


def _say(*lines: str) -> None:
    """Print notes under a table, each wrapped to the terminal's width like the tables."""
    for line in lines:
        print(textwrap.fill(line, width=terminal_width(), break_on_hyphens=False) if line else "")


def _print_outcome(outcome: _Outcome, baseline: str | None, confidence: float) -> None:
    raw, table, paired = outcome.raw, outcome.table, outcome.paired
    metrics = [c.removesuffix("_mean") for c in table.columns if c.endswith("_mean")]
    clipped = print_intervals(table, metrics)
    level = _level(confidence)
    seeds_used = ", ".join(map(str, raw.seed.unique()))
    if raw.seed.nunique() > 1:
        _say(f"mean ± half-width of the {level} Student-t interval over seeds {seeds_used}")
    else:
        _say(f"one seed ({seeds_used}): no interval")
    if clipped:
        _say("mean [low, high]: interval clipped at 0 (and 1 for shares), its natural bound;")
        _say("sweep.csv keeps the raw t interval")
    written = f"sweep.{outcome.format}, sweep_replications.{outcome.format}"
    if paired is not None:
        _say("", f"paired differences: policy minus {baseline}, seed by seed on the same tasks")
        print_paired(paired, metrics)
        if raw.seed.nunique() > 1:
            _say(f"mean difference ± half-width of the {level} Student-t interval over the per-seed")
            _say("differences (not clipped); * the interval excludes 0")
        else:
            _say("one seed: the difference of that run, no interval")
        written += f", sweep_paired.{outcome.format}"
    print(f"wrote {outcome.out}/{written}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchsim sweep ...``; returns the exit status (2 for user mistakes)."""
    args = _parser().parse_args(attach_negative_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        outcome = _sweep(args)
    except Exception as err:
        return user_error(err, out=args.out)
    _print_outcome(outcome, args.baseline, args.confidence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
