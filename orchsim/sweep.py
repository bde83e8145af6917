"""Parameter sweeps: policies x one scenario parameter x seeds, with confidence intervals.

``python -m orchsim sweep SCENARIO --param workload.0.rate --values 1,1.5,2 --seeds 5``
runs the scenario once per (value, seed), every policy inside each run, and prints one row
per (value, policy): the mean of each metric over the seeds and its Student-t interval.
With ``--baseline POLICY`` it also prints each other policy minus the baseline, paired by
seed (``orchsim.intervals.paired_differences``); ``--warmup``/``--until`` set the
measurement window of every run.

One simulation result is one draw; whether ``spread`` really beats ``bin_packing`` at a
given load, or how fast waits grow with the arrival rate, only shows over replications.
Design choices, and why:

- A job is one (value, seed): ``orchsim.run`` runs every policy of it on identical
  tasks (common random numbers), so policies in a cell are compared on the same draws.
  The same seeds are used for every value, so a curve over the values is not jagged with
  sampling noise that differs from point to point. For the same reason the honest
  comparison of two policies is their per-seed difference, not two overlapping intervals.
- Each job depends only on its scenario data, policies and seed, so results are the same
  whatever process runs it and in whatever order; only ``wall_seconds`` varies.
- The parameter is a dotted path into the scenario data (``cluster.nodes.0.count``), and
  every variant is re-validated by ``parse_scenario``: pydantic keeps integer fields
  integers and rejects a bad value with the same message a YAML file would get, before
  any simulation starts.
- Jobs cross process boundaries as plain dicts, not ``Scenario`` objects: they pickle
  cheaply and re-validate in the worker. Workers start with the platform's default method;
  a policy registered at run time (in a notebook) reaches them with ``fork`` (Linux), and
  elsewhere must live in an importable module, or use ``processes=1``.
"""

from __future__ import annotations

import argparse
import copy
import math
import numbers
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchsim.intervals import DEFAULT_METRICS, ReplicationError, display_bounds, paired_differences, summarize
from orchsim.plugins import PluginError, absolute_specs, add_plugin_argument, load_plugins
from orchsim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from orchsim.scenario_edit import with_overrides
from orchsim.scheduling import POLICIES, UnknownPolicyError
from orchsim.traces import TraceError

__all__ = [
    "DEFAULT_METRICS",
    "SweepError",
    "check_baseline",
    "check_seeds",
    "main",
    "paired_differences",
    "parse_seeds",
    "seed_list",
    "summarize",
    "sweep",
    "sweep_replications",
]

Number = int | float

#: A sweep that cannot run as asked (mismatched arguments, bad values, unknown metric or
#: baseline). One class with the statistics' errors, so one ``except`` covers both.
SweepError = ReplicationError


# --------------------------------------------------------------------- parameter paths
def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _walk(data: dict[str, Any], path: str, source: str) -> tuple[Any, str | int]:
    """The container holding ``path``'s leaf, and the leaf's key; a missing step names the path."""
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise ScenarioError(f"{source}: parameter {path!r}: not a dotted path such as workload.0.rate")
    node: Any = data
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i]) or "the scenario"
        key: str | int
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(
                    f"{source}: parameter {path}: {parent} is a list of {len(node)}, "
                    f"so {part!r} must be an index from 0 to {len(node) - 1}"
                )
            key = int(part)
        elif isinstance(node, dict):
            if part not in node:
                fields = ", ".join(map(str, node)) or "nothing"
                raise ScenarioError(f"{source}: parameter {path}: {parent} has no field {part!r} (it has: {fields})")
            key = part
        else:
            raise ScenarioError(f"{source}: parameter {path}: {parent} is {_kind(node)}, it has no field {part!r}")
        if i == len(parts) - 1:
            return node, key
        node = node[key]
    raise AssertionError("unreachable")  # pragma: no cover


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_leaf(data: dict[str, Any], path: str, source: str) -> None:
    """Refuse a path whose current value a number cannot sensibly replace."""
    if path == "seed":
        raise ScenarioError(f"{source}: parameter seed: the seed is set per replication (seeds=), not swept")
    container, key = _walk(data, path, source)
    current = container[key]
    if current is None or _is_number(current):
        return
    if isinstance(current, dict) and current.get("dist") == "constant":
        return  # a bare number is a constant distribution: the shorthand YAML allows
    if isinstance(current, dict) and "dist" in current:
        numeric = [f"{path}.{k}" for k, v in current.items() if _is_number(v)]
        hint = f"; sweep one of its numbers: {', '.join(numeric)}" if numeric else ""
        raise ScenarioError(f"{source}: parameter {path}: is a distribution ({current['dist']}), not a number{hint}")
    raise ScenarioError(f"{source}: parameter {path}: not a numeric field (it is {_kind(current)})")


def _as_number(value: Any, what: str) -> Number:
    if not _is_number(value):
        raise SweepError(f"{what}: {value!r} is not a number")
    number = value.item() if isinstance(value, np.generic) else value
    if isinstance(number, float) and not math.isfinite(number):
        raise SweepError(f"{what}: {value!r} is not a finite number")
    return int(number) if isinstance(number, numbers.Integral) else float(number)


def _variant(scenario: Scenario, data: dict[str, Any], path: str, value: Number) -> tuple[dict[str, Any], Number]:
    """Scenario data with ``path`` set to ``value``, validated; and the value as validated."""
    changed = copy.deepcopy(data)
    container, key = _walk(changed, path, scenario.source)
    container[key] = value
    try:
        parsed = parse_scenario(changed, source=scenario.source, base_dir=scenario.base_dir)
    except ScenarioError as err:
        raise ScenarioError(f"{err} (parameter {path} = {value!r})") from None
    validated = parsed.model_dump(mode="json")
    container, key = _walk(validated, path, scenario.source)
    stored = container[key]
    if isinstance(stored, dict):  # a constant distribution
        stored = stored["value"]
    return validated, stored


# --------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class _Job:
    """One simulation (all policies, one seed, one parameter value), as picklable plain data."""

    data: dict[str, Any]
    source: str
    base_dir: str
    policies: tuple[str, ...]
    seed: int


def _run_job(job: _Job) -> list[dict[str, Any]]:
    """Run one job; module-level so a process pool can pickle it. Returns the summary rows."""
    from orchsim.run import run

    scenario = parse_scenario(job.data, source=job.source, base_dir=Path(job.base_dir))
    return run(scenario, policies=list(job.policies), seed=job.seed).summary.to_dict("records")


def seed_list(seeds: Sequence[int] | int, base: int) -> list[int]:
    """The seeds of the replications: ``seeds`` itself, or that many from ``base`` on.

    Only the shape is checked here (integers, none twice); whether the scenario accepts a
    seed is the schema's call (``check_seeds``).

    Raises:
        SweepError: a count below 1, a non-integer, an empty list or a seed listed twice.
    """
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepError(f"seeds: need at least 1 replication, got {seeds}")
        # Consecutive seeds are independent streams: the engine and workload feed them to SeedSequence.
        return [base + i for i in range(int(seeds))]
    chosen = []
    for seed in seeds:
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise SweepError(f"seeds: {seed!r} is not an integer")
        chosen.append(int(seed))
    if not chosen:
        raise SweepError("seeds: the list is empty")
    if len(set(chosen)) != len(chosen):
        raise SweepError(f"seeds: a seed is listed twice: {chosen}")
    return chosen


def check_seeds(scenario: Scenario, seeds: Sequence[int]) -> None:
    """Refuse, before anything runs, a seed the scenario schema rejects (e.g. a negative one).

    Raises:
        ScenarioError: naming the file, the ``seed`` field and the seed given.
    """
    for seed in seeds:
        try:
            with_overrides(scenario, seed=seed)
        except ScenarioError as err:
            raise ScenarioError(f"{err} (got {seed})") from None


def check_baseline(baseline: str, policies: Sequence[str]) -> None:
    """Refuse, before anything runs, a baseline that is unknown or not among ``policies``.

    Raises:
        SweepError: the name is not registered, is not one of ``policies``, or is the
            only one (nothing to compare it with).
    """
    try:
        POLICIES.spec(baseline)
    except UnknownPolicyError as err:
        raise SweepError(f"baseline: {err}") from None
    if baseline not in policies:
        raise SweepError(
            f"baseline: {baseline!r} is not among the policies run ({', '.join(policies)}); add it with --policy"
        )
    if len(policies) < 2:
        raise SweepError(f"baseline: {baseline!r} is the only policy run; there is nothing to compare with it")


def _policy_list(policies: Sequence[str] | None, scenario: Scenario) -> list[str]:
    if isinstance(policies, str):
        raise SweepError(f"policies: a list of names, got the string {policies!r}")
    names = list(policies if policies else scenario.policies)
    for name in names:
        POLICIES.spec(name)  # UnknownPolicyError lists the registered names
    if len(set(names)) != len(names):
        raise SweepError(f"policies: a policy is listed twice: {names}")
    return names


def _execute(jobs: list[_Job], processes: int | None, progress: bool) -> list[list[dict[str, Any]]]:
    """Run ``jobs``, in a process pool unless one process; results in job order."""
    workers = (os.cpu_count() or 1) if processes is None else processes
    if workers < 1:
        raise SweepError(f"processes: need at least 1, got {workers}")
    workers = min(workers, len(jobs))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="run", desc="sweep", delay=1.0, leave=False)
    try:
        if workers == 1:
            results = []
            for job in jobs:
                results.append(_run_job(job))
                if bar is not None:
                    bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures: dict[Future[list[dict[str, Any]]], int] = {
                pool.submit(_run_job, job): i for i, job in enumerate(jobs)
            }
            collected: dict[int, list[dict[str, Any]]] = {}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    if future.exception() is not None:
                        for other in pending:
                            other.cancel()
                        raise future.exception()  # type: ignore[misc]
                    collected[futures[future]] = future.result()
                    if bar is not None:
                        bar.update()
            return [collected[i] for i in range(len(jobs))]
    finally:
        if bar is not None:
            bar.close()


# --------------------------------------------------------------------- public API
def sweep_replications(
    scenario: Scenario | str | Path,
    *,
    parameter: str | None = None,
    values: Iterable[Number] | None = None,
    policies: Sequence[str] | None = None,
    seeds: Sequence[int] | int = 5,
    processes: int | None = None,
    progress: bool = False,
    warmup: float | None = None,
    until: float | None = None,
    plugins: Sequence[str] = (),
) -> pd.DataFrame:
    """Run the grid and return every replication, one row per (value, policy, seed).

    Keep this frame when the interval table is not the end: it can be re-aggregated with
    another confidence level or metric (``summarize``) without simulating again, and paired
    differences between policies can be computed from it (rows with the same value and seed
    share their tasks).

    Args:
        scenario: A scenario object or the path of a YAML file.
        parameter: Dotted path of a numeric field of the scenario data, e.g.
            ``workload.0.rate`` or ``cluster.nodes.0.count``; ``None`` to replicate only.
        values: The values ``parameter`` takes (sorted ascending in the output).
        policies: Policy names; default the scenario's.
        seeds: A number of replications (seeds ``scenario.seed``, ``scenario.seed + 1``, ...)
            or the explicit seeds.
        processes: Worker processes (default ``os.cpu_count()``); 1 runs in this process.
        progress: Show a progress bar over the runs (after a second).
        warmup: Override ``metrics.warmup``: seconds of simulated time left out of the
            statistics at the start of every run.
        until: Override ``metrics.until``: the end of the measurement window (seconds).
        plugins: Modules or ``.py`` files registering policies (``orchsim.plugins``),
            loaded here and in every worker process before the scenario is read.

    Returns:
        Columns ``<parameter>`` (if given), ``policy``, ``seed``, then every summary column
        of ``orchsim.run``.

    Raises:
        ScenarioError: a bad scenario, a seed, window, parameter path or value it rejects
            (named), all before any run.
        UnknownPolicyError: a policy that is not registered.
        SweepError: mismatched or malformed arguments.
        TraceError: a trace file that cannot be read.
        PluginError: a plugin that cannot be loaded.
    """
    extra_plugins = absolute_specs(plugins)
    load_plugins(extra_plugins)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if (parameter is None) != (values is None):
        raise SweepError("parameter and values go together: give both or neither")
    names = _policy_list(policies, scenario)
    seeds_run = seed_list(seeds, scenario.seed)
    # The window is part of the scenario data every job re-validates and hands to run().
    scenario = with_overrides(scenario, warmup=warmup, until=until)
    check_seeds(scenario, seeds_run)
    data = scenario.model_dump(mode="json")
    if extra_plugins:  # workers re-read the scenario: they load these first, as the schema does
        data["plugins"] = [*extra_plugins, *data["plugins"]]

    variants: list[tuple[Number | None, dict[str, Any]]]
    if parameter is None:
        variants = [(None, data)]
    else:
        assert values is not None
        numbers_in = [_as_number(v, f"values for {parameter}") for v in values]
        if not numbers_in:
            raise SweepError(f"values for {parameter}: the list is empty")
        _check_leaf(data, parameter, scenario.source)
        variants = []
        for value in numbers_in:
            validated, stored = _variant(scenario, data, parameter, value)
            variants.append((stored, validated))
        stored_values = [v for v, _ in variants]
        if len(set(stored_values)) != len(stored_values):
            raise SweepError(f"values for {parameter}: a value is listed twice (as validated: {stored_values})")
        variants.sort(key=lambda item: item[0])  # type: ignore[arg-type, return-value]

    jobs = [
        _Job(data=variant, source=scenario.source, base_dir=str(scenario.base_dir), policies=tuple(names), seed=seed)
        for _, variant in variants
        for seed in seeds_run
    ]
    outputs = _execute(jobs, processes, progress)

    rows = []
    for index, summaries in enumerate(outputs):
        value = variants[index // len(seeds_run)][0]
        seed = seeds_run[index % len(seeds_run)]
        for summary in summaries:
            row: dict[str, Any] = {} if parameter is None else {parameter: value}
            row["policy"] = summary.pop("policy")
            row["seed"] = seed
            rows.append(row | summary)
    raw = pd.DataFrame(rows)
    # Policies in the order given within each value; seeds in the order given.
    order = {name: i for i, name in enumerate(names)}
    keys = [parameter] if parameter is not None else []
    raw["_policy_order"] = raw["policy"].map(order)
    raw["_row"] = range(len(raw))
    raw = raw.sort_values([*keys, "_policy_order", "_row"], kind="stable")
    return raw.drop(columns=["_policy_order", "_row"]).reset_index(drop=True)


def sweep(
    scenario: Scenario | str | Path,
    *,
    parameter: str | None = None,
    values: Iterable[Number] | None = None,
    policies: Sequence[str] | None = None,
    seeds: Sequence[int] | int = 5,
    processes: int | None = None,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    progress: bool = False,
    warmup: float | None = None,
    until: float | None = None,
) -> pd.DataFrame:
    """Run ``scenario`` over policies x parameter values x seeds; one row per (value, policy).

    ``sweep_replications`` followed by ``summarize``; call those two to keep the
    per-seed rows as well (and ``paired_differences`` on them to compare policies).

    Args:
        scenario: A scenario object or the path of a YAML file.
        parameter: Dotted path of a numeric field, e.g. ``workload.0.rate``; ``None`` to
            replicate only (one row per policy).
        values: The values ``parameter`` takes.
        policies: Policy names; default the scenario's.
        seeds: A number of replications, or the explicit seeds.
        processes: Worker processes (default ``os.cpu_count()``); 1 runs in this process.
        metrics: Summary columns to aggregate; default ``DEFAULT_METRICS`` that are present.
        confidence: Level of the two-sided Student-t intervals.
        progress: Show a progress bar over the runs.
        warmup: Override ``metrics.warmup`` (seconds left out at the start).
        until: Override ``metrics.until`` (end of the measurement window, seconds).

    Returns:
        ``<parameter>``, ``policy``, ``replications``, and ``<metric>_mean``,
        ``<metric>_ci_low``, ``<metric>_ci_high`` per metric; sorted by value, then
        policies in the order given.

    Raises:
        ScenarioError: a bad scenario, or a parameter path or value it rejects (named).
        UnknownPolicyError: a policy that is not registered.
        SweepError: mismatched or malformed arguments, an unknown metric.
        TraceError: a trace file that cannot be read.
    """
    if not 0 < confidence < 1:  # before simulating, not after
        raise SweepError(f"confidence: must be between 0 and 1, got {confidence}")
    raw = sweep_replications(
        scenario,
        parameter=parameter,
        values=values,
        policies=policies,
        seeds=seeds,
        processes=processes,
        progress=progress,
        warmup=warmup,
        until=until,
    )
    return summarize(raw, metrics=metrics, confidence=confidence)


# --------------------------------------------------------------------- command line
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


def parse_seeds(text: str) -> int | list[int]:
    """``5`` is a count of replications; ``1,2,3`` (or ``7,`` for one) lists the seeds."""
    tokens = [t.strip() for t in text.split(",")]
    try:
        if len(tokens) == 1:
            return int(tokens[0])
        return [int(t) for t in tokens if t]
    except ValueError:
        raise SweepError(f"--seeds: {text!r} is neither a count (5) nor a list of integer seeds (1,2,3)") from None


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


def _console() -> Any:
    from rich.console import Console

    # Never truncate when the output is a file or a pipe (CI logs, tests).
    return Console(width=None if sys.stdout.isatty() else 250, highlight=False)


def _print_table(table: pd.DataFrame, metrics: list[str]) -> bool:
    """Print the interval table; returns whether any interval was clipped for display."""
    from rich.table import Table

    keys = list(table.columns[: table.columns.get_loc("replications")])
    out = Table(show_header=True, header_style="bold")
    for key in keys:
        out.add_column(key, justify="left" if key == "policy" else "right", no_wrap=True)
    out.add_column("n", justify="right")
    for metric in metrics:
        out.add_column(_SHORT.get(metric, metric), justify="right", no_wrap=True)
    any_clipped = False
    for _, row in table.iterrows():
        cells = [str(row[key]) for key in keys] + [str(row["replications"])]
        for m in metrics:
            text, clipped = _cell(m, row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"])
            cells.append(text)
            any_clipped |= clipped
        out.add_row(*cells)
    _console().print(out, markup=False)
    return any_clipped


def _print_paired(paired: pd.DataFrame, metrics: list[str]) -> None:
    from rich.table import Table

    keys = list(paired.columns[: paired.columns.get_loc("policy")])
    out = Table(show_header=True, header_style="bold")
    for key in keys:
        out.add_column(key, justify="right", no_wrap=True)
    out.add_column("policy", justify="left", no_wrap=True)
    out.add_column("n", justify="right")
    for metric in metrics:
        out.add_column("Δ " + _SHORT.get(metric, metric), justify="right", no_wrap=True)
    for _, row in paired.iterrows():
        cells = [str(row[key]) for key in keys] + [str(row["policy"]), str(row["pairs"])]
        cells += [
            _diff_cell(row[f"{m}_diff"], row[f"{m}_diff_ci_low"], row[f"{m}_diff_ci_high"], row[f"{m}_excludes_0"])
            for m in metrics
        ]
        out.add_row(*cells)
    _console().print(out, markup=False)


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
    add_plugin_argument(parser, where=", here and in every worker")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _level(confidence: float) -> str:
    return f"{confidence:.0%}" if confidence * 100 == round(confidence * 100) else str(confidence)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchsim sweep ...``; returns the exit status (2 for user mistakes).

    Arguments, seeds, the window and the baseline are checked before anything runs, and
    ``sweep_replications.csv`` is written before aggregating, so a run is never lost to a
    mistyped ``--metric``.
    """
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    paired = None
    try:
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
        raw.to_csv(out / "sweep_replications.csv", index=False, float_format="%.6f")
        try:
            table = summarize(raw, metrics=args.metrics, confidence=args.confidence)
            if args.baseline is not None:
                paired = paired_differences(raw, args.baseline, metrics=args.metrics, confidence=args.confidence)
        except SweepError as err:
            raise SweepError(f"{err}; the runs are saved in {out / 'sweep_replications.csv'}") from None
        table.to_csv(out / "sweep.csv", index=False, float_format="%.6f")
        if paired is not None:
            paired.to_csv(out / "sweep_paired.csv", index=False, float_format="%.6f")
    except (ScenarioError, TraceError, SweepError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except PluginError as err:
        print(f"error: --plugin: {err}", file=sys.stderr)
        return 2
    except UnknownPolicyError as err:
        print(f"error: --policy: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # --out not writable
        print(f"error: cannot write {err.filename or args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    metrics = [c.removesuffix("_mean") for c in table.columns if c.endswith("_mean")]
    clipped = _print_table(table, metrics)
    level = _level(args.confidence)
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
    written = "sweep.csv, sweep_replications.csv"
    if paired is not None:
        print(f"\npaired differences: policy minus {args.baseline}, seed by seed on the same tasks")
        _print_paired(paired, metrics)
        if raw.seed.nunique() > 1:
            print(
                f"mean difference ± half-width of the {level} Student-t interval over the per-seed differences "
                "(not clipped); * the interval excludes 0"
            )
        else:
            print("one seed: the difference of that run, no interval")
        written += ", sweep_paired.csv"
    print(f"wrote {out}/{written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
