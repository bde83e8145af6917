"""Parameter sweeps: policies x one scenario parameter x seeds, with confidence intervals.

``sweep(scenario, parameter="workload.0.rate", values=[1, 1.5, 2], seeds=5)`` runs the
scenario once per (value, seed), every policy inside each run, and returns one row per
(value, policy): the mean of each metric over the seeds and its Student-t interval.
``sweep_replications`` keeps the per-seed rows, from which ``paired_differences`` compares
policies seed by seed. The command line is ``python -m orchsim sweep`` (``orchsim.sweep_cli``).

One simulation result is one draw; whether ``spread`` really beats ``bin_packing`` at a
given load, or how fast waits grow with the arrival rate, only shows over replications.
Design choices, and why:

- A job is one (value, seed): ``orchsim.run`` runs every policy of it on identical
  tasks (common random numbers), so policies in a cell are compared on the same draws.
  The same seeds are used for every value, so a curve over the values is not jagged with
  sampling noise that differs from point to point. For the same reason the honest
  comparison of two policies is their per-seed difference, not two overlapping intervals.
- The parameter is a dotted path into the scenario data (``cluster.nodes.0.count``), and
  every variant is re-validated by the schema (``orchsim.scenario_edit``): pydantic keeps
  integer fields integers and rejects a bad value with the same message a YAML file would
  get, before any simulation starts.
- Jobs run in this process, a process pool or on a Dask cluster (``orchsim.sweep_executor``),
  as plain data that each worker re-validates (``orchsim.sweep_jobs``); the results do not
  depend on which process or machine ran which job.
- Each job is keyed by (scenario content hash, parameter value, seed, policies, orchsim
  version). Given a ``store`` folder, every result is kept there as its job ends
  (``orchsim.sweep_store``) and a rerun of the same sweep runs only what is missing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchsim.cli import parse_seeds
from orchsim.intervals import DEFAULT_METRICS, ReplicationError, paired_differences, summarize
from orchsim.plugins import absolute_specs, load_plugins
from orchsim.scenario import Scenario, ScenarioError, load_scenario
from orchsim.scenario_edit import check_numeric_path, is_number, set_number, with_overrides
from orchsim.scheduling import POLICIES, UnknownPolicyError
from orchsim.sweep_executor import ExecutorSpec, run_jobs
from orchsim.sweep_jobs import Job, Summaries, absolute_inputs, job_key, scenario_hash
from orchsim.sweep_progress import Progress
from orchsim.sweep_store import JobStore

__all__ = [
    "DEFAULT_METRICS",
    "ExecutorSpec",
    "SweepError",
    "check_baseline",
    "check_seeds",
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


def _as_number(value: Any, what: str) -> Number:
    if not is_number(value):
        raise SweepError(f"{what}: {value!r} is not a number")
    number = value.item() if isinstance(value, np.generic) else value
    if isinstance(number, float) and not math.isfinite(number):
        raise SweepError(f"{what}: {value!r} is not a finite number")
    return int(number) if isinstance(number, numbers.Integral) else float(number)


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


Variant = tuple[Any, dict[str, Any]]  # (the parameter's value as validated, the scenario data)


def _variants(
    scenario: Scenario, data: dict[str, Any], parameter: str, values: Iterable[Number] | None
) -> list[Variant]:
    """One validated copy of the scenario data per value, sorted by value; all checked before any run."""
    numbers_in = [_as_number(v, f"values for {parameter}") for v in (values if values is not None else ())]
    if not numbers_in:
        raise SweepError(f"values for {parameter}: the list is empty")
    check_numeric_path(data, parameter, scenario.source)
    variants = []
    for value in numbers_in:
        validated, stored = set_number(scenario, data, parameter, value)
        variants.append((stored, validated))
    stored_values = [v for v, _ in variants]
    if len(set(stored_values)) != len(stored_values):
        raise SweepError(f"values for {parameter}: a value is listed twice (as validated: {stored_values})")
    return sorted(variants, key=lambda item: item[0])


def _jobs(
    scenario: Scenario,
    data: dict[str, Any],
    variants: list[Variant],
    parameter: str | None,
    seeds: list[int],
    names: list[str],
) -> list[Job]:
    """One job per (value, seed), value-major; keyed by content, paths made absolute (workers' cwd differs)."""
    base, folder = scenario_hash(data, scenario.base_dir), str(scenario.base_dir.resolve())
    jobs = []
    for value, variant in variants:
        job_data, inputs = absolute_inputs(variant, scenario.base_dir)
        for seed in seeds:
            key = job_key(base, parameter, value, seed, tuple(names))
            jobs.append(Job(job_data, scenario.source, folder, tuple(names), seed, key, inputs))
    return jobs


def _replications(
    outputs: list[Summaries], values: list[Any], seeds: list[int], names: list[str], parameter: str | None
) -> pd.DataFrame:
    """The jobs' summaries as a replications frame: one row per (value, policy, seed).

    Jobs ran value-major, seeds inner; rows come out by value, then policies in the order
    given, then seeds in the order given.
    """
    rows = []
    for index, summaries in enumerate(outputs):
        value = values[index // len(seeds)]
        seed = seeds[index % len(seeds)]
        for summary in summaries:
            row: dict[str, Any] = {} if parameter is None else {parameter: value}
            row["policy"] = summary.pop("policy")
            row["seed"] = seed
            rows.append(row | summary)
    raw = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(names)}
    keys = [parameter] if parameter is not None else []
    raw["_policy_order"] = raw["policy"].map(order)
    raw["_row"] = range(len(raw))
    raw = raw.sort_values([*keys, "_policy_order", "_row"], kind="stable")
    return raw.drop(columns=["_policy_order", "_row"]).reset_index(drop=True)


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
    executor: str | ExecutorSpec = "processes",
    scheduler: str | None = None,
    store: str | Path | None = None,
    resume: bool = True,
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
            With ``executor="dask"`` and no scheduler: the local cluster's workers.
        progress: Show a progress bar over the runs, from the start, with an ETA.
        warmup: Override ``metrics.warmup``: seconds of simulated time left out of the
            statistics at the start of every run.
        until: Override ``metrics.until``: the end of the measurement window (seconds).
        plugins: Modules or ``.py`` files registering policies (``orchsim.plugins``),
            loaded here and in every worker process before the scenario is read.
        executor: ``processes`` (a local pool), ``dask`` (``orchsim.sweep_dask``), another
            registered name, or an ``ExecutorSpec`` (which then overrides ``processes``
            and ``scheduler``).
        scheduler: ``dask``: the scheduler's address (``tcp://host:8786``); default a
            local cluster started for the sweep.
        store: A folder where each finished job's rows are kept as it ends (one JSON file
            per job key); ``None`` keeps nothing.
        resume: Take the jobs already in ``store`` instead of running them again.

    Returns:
        Columns ``<parameter>`` (if given), ``policy``, ``seed``, then every summary column
        of ``orchsim.run``.

    Raises:
        ScenarioError: a bad scenario, a seed, window, parameter path or value it rejects
            (named), all before any run.
        UnknownPolicyError: a policy that is not registered.
        SweepError: mismatched or malformed arguments; an unknown executor, a Dask
            scheduler that cannot be reached, ``dask`` without ``orchsim[cluster]``.
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

    variants = [(None, data)] if parameter is None else _variants(scenario, data, parameter, values)
    jobs = _jobs(scenario, data, variants, parameter, seeds_run, names)
    spec = executor if isinstance(executor, ExecutorSpec) else ExecutorSpec(executor, processes, scheduler)
    bar = Progress(len(jobs), desc="sweep", enabled=progress)
    kept = JobStore(store) if store is not None else None
    outputs = run_jobs(jobs, spec, progress=bar, store=kept, resume=resume)
    return _replications(outputs, [v for v, _ in variants], seeds_run, names, parameter)


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
    executor: str | ExecutorSpec = "processes",
    scheduler: str | None = None,
    store: str | Path | None = None,
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
        executor: ``processes``, ``dask`` or an ``ExecutorSpec`` (see ``sweep_replications``).
        scheduler: ``dask``: the scheduler's address; default a local cluster.
        store: A folder keeping each job's result as it ends; a rerun runs only what is missing.

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
        executor=executor,
        scheduler=scheduler,
        store=store,
    )
    return summarize(raw, metrics=metrics, confidence=confidence)
