"""The Python entry point for notebooks and scripts: ``orchsim.run(...)`` returns DataFrames.

``import orchsim`` imports this module, so that ``orchsim.run`` is the function below rather
than this module (a submodule imported after the package would replace a package attribute
of its name). That is why it stays light: the simulator (simpy, pandas, pydantic) is
imported by the first call, never when ``orchsim`` or ``orchsim.scheduling`` is imported.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from orchsim.engine import RunRecords
    from orchsim.scenario import Scenario
    from orchsim.workload import Workload

__all__ = ["Results", "run"]

TABLES = ("tasks", "summary", "timeseries")  # the files a run writes, in this order


class _Table:
    """A DataFrame field of ``Results`` built from its columns on first read (``None`` = not yet)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Results | None, owner: type) -> Any:
        if obj is None:
            return None  # the dataclass default: build when read
        if obj.__dict__.get(self.name) is None:
            obj.__dict__[self.name] = obj.frame(self.name)
        return obj.__dict__[self.name]

    def __set__(self, obj: Results, value: pd.DataFrame | None) -> None:
        obj.__dict__[self.name] = value


@dataclass(eq=False)
class Results:
    """Everything a run produced, as DataFrames (one block of rows per policy).

    The tables are kept as columns (``table(name)``) and become DataFrames on first read
    of ``summary``, ``tasks``, ``timeseries`` or ``failures``: writing files needs no
    pandas, and importing it is most of a small run's start-up. ``dataclasses.replace``
    works as on any dataclass (a DataFrame passed in is used as given).
    """

    scenario: Scenario
    workload: Workload
    records: list[RunRecords]
    summary_rows: list[dict[str, Any]]  # one dict per policy, in the order run
    columns: dict[str, dict[str, np.ndarray]] = field(repr=False)  # "tasks", "timeseries"
    summary: _Table = _Table()
    tasks: _Table = _Table()
    timeseries: _Table = _Table()
    failures: _Table = _Table()

    def table(self, name: str) -> dict[str, np.ndarray]:
        """``tasks``, ``summary`` or ``timeseries`` as columns (name -> 1-D array), without pandas."""
        if name == "summary":
            from orchsim.table_files import columns_of_rows

            return columns_of_rows(self.summary_rows)
        return self.columns[name]

    def frame(self, name: str) -> pd.DataFrame:
        """A table as a new DataFrame: summary, tasks, timeseries or failures (one row per node failure)."""
        import pandas as pd

        if name == "summary":
            return pd.DataFrame(self.summary_rows)
        if name == "failures":
            from orchsim.metrics import failures_frame

            frames = [failures_frame(records) for records in self.records]
            return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return pd.DataFrame(self.columns[name])

    def write(self, out_dir: str | Path, *, plots: bool = True, format: str = "csv") -> list[Path]:
        """Write tasks, summary and timeseries (``.csv`` or ``.parquet``), and PNG plots, to ``out_dir``.

        Args:
            out_dir: The folder, created if missing.
            plots: Also draw the PNG figures (imports matplotlib, which costs most of a
                second: leave it off when only the numbers matter).
            format: ``"csv"`` (floats with 6 decimals, as ``DataFrame.to_csv`` with
                ``float_format="%.6f"`` writes them) or ``"parquet"`` (full precision).

        Returns:
            The paths written.
        """
        from orchsim.table_files import write_table

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [write_table(self.table(name), out, name, format) for name in TABLES]
        if plots:
            from orchsim import plots as plotting

            written.extend(plotting.write_all(self, out))
        return written


def _sample_interval(scenario: Scenario, workload: Workload) -> float:
    """Seconds between time-series samples: the scenario's, or ``metrics.samples`` over the expected run."""
    import numpy as np

    if scenario.metrics.sample_interval is not None:
        return scenario.metrics.sample_interval
    if not len(workload):
        return 1.0
    finite = workload.duration[np.isfinite(workload.duration)]
    span = float(workload.submit_time.max()) + (float(finite.mean()) if len(finite) else 0.0)
    return max(span / scenario.metrics.samples, 1e-3)


def decision_latency(scenario: Scenario) -> tuple[float, ...]:
    """The scenario's ``scheduler.decision_latency`` as the engine takes it: seconds, () for none.

    A fixed value is one sample; ``{recording: DIR}`` is measured from that recording
    (``orchsim.traces.decision_latencies``); a recording with no task placed at once is
    an error naming it, rather than a silent zero.
    """
    from orchsim.scenario import DecisionLatency

    latency = scenario.scheduler.decision_latency
    if not isinstance(latency, DecisionLatency):
        return (float(latency),) if latency else ()
    if latency.samples is not None:
        measured = list(latency.samples)
    else:
        from orchsim.traces import decision_latencies

        folder = scenario.resolve(latency.recording or ".")
        measured = decision_latencies(folder).tolist()
        if not measured:
            raise ValueError(f"scheduler.decision_latency.recording: {folder} has no task placed at once to measure")
    return (sum(measured) / len(measured),) if latency.use == "mean" else tuple(measured)


def _engine_config(scenario: Scenario, policy: str, interval: float, extra_events: tuple[Any, ...] = ()) -> Any:
    """The engine's settings for one policy's run: everything it needs from the scenario.

    ``extra_events``: cluster events the node lists bring (a recording's node history).
    """
    from orchsim.engine import EngineConfig

    return EngineConfig(
        policy=policy,
        policy_params=dict(scenario.policy_params.get(policy, {})),
        seed=scenario.seed,
        queue=scenario.scheduler.queue,
        backfill_window=scenario.scheduler.backfill_window,
        max_attempts=scenario.scheduler.max_attempts,
        preemption=scenario.scheduler.preemption,
        per_instant=scenario.scheduler.passes == "per_instant",
        decision_latency=decision_latency(scenario),
        sampling=scenario.scheduler.sampling,
        filters={name: dict(params) for name, params in scenario.scheduler.filters.items()},
        heartbeat_interval=scenario.cluster.heartbeat_interval,
        failure_timeout=scenario.cluster.failure_timeout,
        events=(*scenario.events, *extra_events),
        autoscaler=scenario.autoscaler,
        sample_interval=interval,
        max_samples=scenario.metrics.samples,
        warmup=scenario.metrics.warmup,
        until=scenario.metrics.until,
    )


def _progress_bar(total: int) -> Any:
    """A bar over every task of every policy's run; shown only once a run takes over a second."""
    from tqdm import tqdm

    return tqdm(total=total, unit="task", delay=1.0, leave=False)


def run(
    scenario: Scenario | str | Path,
    *,
    policies: Sequence[str] | None = None,
    seed: int | None = None,
    progress: bool = False,
    warmup: float | None = None,
    until: float | None = None,
) -> Results:
    """Simulate ``scenario`` once per policy, on identical tasks.

    Args:
        scenario: A scenario object or the path of a YAML file.
        policies: Override the scenario's list of policy names.
        seed: Override the scenario's seed (a non-negative integer).
        progress: Show a progress bar (only on runs longer than about a second).
        warmup: Override ``metrics.warmup``: seconds of simulated time left out of the
            statistics at the start.
        until: Override ``metrics.until``: the end of the measurement window (seconds).

    Returns:
        Results with ``summary`` (a row per policy), ``tasks`` and ``timeseries``.

    Raises:
        ScenarioError: a bad scenario file, or an override out of range (named).
        UnknownPolicyError: a policy that is not registered.
    """
    from orchsim.cluster import build_cluster
    from orchsim.engine import Simulation
    from orchsim.metrics import summary_row, tasks_columns, timeseries_columns
    from orchsim.scenario import Scenario, load_scenario
    from orchsim.scenario_edit import with_overrides
    from orchsim.table_files import concat_columns
    from orchsim.workload import build_workload

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scenario = with_overrides(scenario, policies=policies, seed=seed, warmup=warmup, until=until)

    resources, cluster = build_cluster(scenario)
    totals = dict(zip(resources, cluster.capacity.sum(axis=1).tolist(), strict=True))
    workload = build_workload(scenario, resources, totals)
    interval = _sample_interval(scenario, workload)
    bar = _progress_bar(len(workload) * len(scenario.policies)) if progress else None
    all_records = []
    for name in scenario.policies:
        config = _engine_config(scenario, name, interval, cluster.events)
        began = time.perf_counter()
        records = Simulation(workload, cluster, config, progress=bar.update if bar else None).run()
        records.wall_seconds = time.perf_counter() - began
        all_records.append(records)
    if bar is not None:
        bar.close()
    return Results(
        scenario=scenario,
        workload=workload,
        records=all_records,
        summary_rows=[summary_row(records, workload) for records in all_records],
        columns={
            "tasks": concat_columns([tasks_columns(records, workload) for records in all_records]),
            "timeseries": concat_columns([timeseries_columns(records) for records in all_records]),
        },
    )
