"""``python -m orchsim sweep SCENARIO --param workload.0.rate --values 1,1.5,2 --seeds 5``.

Runs ``orchsim.sweep`` over the grid, writes ``sweep_replications.csv`` (every run) and
``sweep.csv`` (mean and Student-t interval per value and policy), and prints the interval
table. With ``--baseline POLICY`` it also writes ``sweep_paired.csv`` and prints each other
policy minus the baseline, paired by seed; ``--warmup``/``--until`` set the measurement
window of every run. Arguments, seeds, the window and the baseline are checked before
anything runs; a mistake exits 2 with one line (``orchsim.cli``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orchsim.cli import parse_seeds, print_table, user_error
from orchsim.intervals import display_bounds, paired_differences, summarize
from orchsim.plugins import add_plugin_argument, load_plugins
from orchsim.scenario import load_scenario
from orchsim.sweep import SweepError, check_baseline, sweep_replications
from orchsim.table_files import write_table

__all__ = ["main"]

Number = int | float

# metric -> terminal header; the CSV keeps the full column names
_SHORT = {
    "mean_wait": "wait_mean_s",
    "mean_wait_censored": "wait_cens_s",
    "tasks_never_started": "never_started",
    "p95_wait": "wait_p95_s",
    "makespan": "makespan_s",
    "throughput": "tput_per_s",
    "peak_nodes_used": "peak_nodes",
    "fragmentation": "frag",
    "unschedulable": "unsched",
    "tasks_pending": "pending",
    "mean_util_cpu": "util_cpu",
    "wall_seconds": "wall_s",
}


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


def _fmt(x: float, digits: int) -> str:
    # Significant digits, but 12345 rather than 1.234e+04.
    return f"{x:.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}"


def _cell(metric: str, mean: float, low: float, high: float) -> tuple[str, bool]:
    """``mean ± half-width``, or ``mean [low, high]`` when clipped at a natural bound; and whether."""
    if math.isnan(mean):
        return "n/a", False
    if math.isnan(low):
        return _fmt(mean, 4), False
    shown_low, shown_high, clipped = display_bounds(metric, low, high)
    if clipped:
        return f"{_fmt(mean, 4)} [{_fmt(shown_low, 3)}, {_fmt(shown_high, 3)}]", True
    return f"{_fmt(mean, 4)} ± {_fmt((high - low) / 2, 2)}", False


def _diff_cell(diff: float, low: float, high: float, excludes_0: bool) -> str:
    if math.isnan(diff):
        return "n/a"
    if math.isnan(low):
        return _fmt(diff, 4)
    # Three digits on the half-width: rounded to two, -5.98 ± 5.98 would read as touching 0.
    return f"{_fmt(diff, 4)} ± {_fmt((high - low) / 2, 3)}" + (" *" if excludes_0 else "")


def _print_intervals(table: pd.DataFrame, metrics: list[str]) -> bool:
    """Print the interval table; returns whether any interval was clipped for display."""
    keys = list(table.columns[: table.columns.get_loc("replications")])
    rows, any_clipped = [], False
    for _, row in table.iterrows():
        cells = [str(row[key]) for key in keys] + [str(row["replications"])]
        for m in metrics:
            text, clipped = _cell(m, row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"])
            cells.append(text)
            any_clipped |= clipped
        rows.append(cells)
    print_table([*keys, "n", *(_SHORT.get(m, m) for m in metrics)], rows)
    return any_clipped


def _print_paired(paired: pd.DataFrame, metrics: list[str]) -> None:
    keys = list(paired.columns[: paired.columns.get_loc("policy")])
    rows = [
        [str(row[key]) for key in keys]
        + [str(row["policy"]), str(row["pairs"])]
        + [
            _diff_cell(row[f"{m}_diff"], row[f"{m}_diff_ci_low"], row[f"{m}_diff_ci_high"], row[f"{m}_excludes_0"])
            for m in metrics
        ]
        for _, row in paired.iterrows()
    ]
    print_table([*keys, "policy", "n", *("Δ " + _SHORT.get(m, m) for m in metrics)], rows)


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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


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
    raw = sweep_replications(
        scenario,
        parameter=args.param,
        values=values,
        policies=policies,
        seeds=seeds,
        processes=args.processes,
        progress=not args.quiet,
        warmup=args.warmup,
        until=args.until,
        plugins=args.plugins,
    )
    out = args.out or Path("results") / scenario.name / "sweep"
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


def _print_outcome(outcome: _Outcome, baseline: str | None, confidence: float) -> None:
    raw, table, paired = outcome.raw, outcome.table, outcome.paired
    metrics = [c.removesuffix("_mean") for c in table.columns if c.endswith("_mean")]
    clipped = _print_intervals(table, metrics)
    level = _level(confidence)
    seeds_used = ", ".join(map(str, raw.seed.unique()))
    if raw.seed.nunique() > 1:
        print(f"mean ± half-width of the {level} Student-t interval over seeds {seeds_used}")
    else:
        print(f"one seed ({seeds_used}): no interval")
    if clipped:
        print(
            "mean [low, high]: interval clipped at 0 (and 1 for shares), the metric's natural bound; "
            "sweep.csv keeps the raw t interval"
        )
    written = f"sweep.{outcome.format}, sweep_replications.{outcome.format}"
    if paired is not None:
        print(f"\npaired differences: policy minus {baseline}, seed by seed on the same tasks")
        _print_paired(paired, metrics)
        if raw.seed.nunique() > 1:
            print(
                f"mean difference ± half-width of the {level} Student-t interval over the per-seed differences "
                "(not clipped); * the interval excludes 0"
            )
        else:
            print("one seed: the difference of that run, no interval")
        written += f", sweep_paired.{outcome.format}"
    print(f"wrote {outcome.out}/{written}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchsim sweep ...``; returns the exit status (2 for user mistakes)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        outcome = _sweep(args)
    except Exception as err:
        return user_error(err, out=args.out)
    _print_outcome(outcome, args.baseline, args.confidence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
