"""Pure functions from run records to tables: per-task rows, one summary row, the time series.

Definitions (all times in simulated seconds):

* The measurement window ``[warmup, until)`` (``metrics.warmup``, ``metrics.until``;
  default the whole run): wait statistics cover the tasks submitted inside it, time
  integrals and sampled means cover the time inside it. Counts (``tasks_*``) cover every task.
* ``wait`` of a task: total time it spent queued, over all its attempts (so the sum of
  waits equals the time integral of the queue length: Little's law holds exactly). A task
  still queued at the end has waited until the end: a censored observation.
* ``mean_wait`` and the percentiles: over tasks that started. ``prob_wait``: the share of
  them that waited at all (Erlang C's P(wait > 0) for M/M/c).
* ``tasks_never_started``: tasks still queued at the end that were never placed (tasks that
  can never fit are counted in ``unschedulable`` instead).
* ``mean_wait_censored``: the mean wait over started and never-started tasks, each
  never-started one counted with its wait up to the end of the run: a lower bound on the
  true mean wait, which ``mean_wait`` alone overstates as good when many tasks never ran.
* ``makespan``: last completion minus first submission (NaN when nothing completed, e.g.
  a trace whose pods never leave).
* ``throughput``: completed tasks per second of makespan.
* ``mean_util_<r>``: time integral of allocated ``r`` over time integral of ``r``
  capacity on live nodes (a time-weighted mean, exact, not sampled). A node is live from
  when it joins or returns to when it fails or leaves, and work lost with a failed node
  ends when it failed, so the value never exceeds 1.
* ``final_util_<r>``: allocated share of live capacity at the end (for arrival-only traces).
* ``mean_stranded_<r>``: mean over samples of the free ``r`` on nodes running at least one
  task, as a share of live capacity (capacity that consolidation could have freed).
* ``fragmentation``: mean over samples of the share of free capacity stranded on nodes
  too full for the workload's median request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from orchsim.engine import RunRecords, Status
from orchsim.workload import Workload

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["summary_row", "tasks_columns", "tasks_frame", "timeseries_columns", "timeseries_frame"]

# pandas is imported by the *_frame functions only: the command line writes the *_columns
# tables without it (orchsim.table_files), and importing it is most of a small run's start-up.


def tasks_frame(records: RunRecords, workload: Workload) -> pd.DataFrame:
    """One row per task: policy, task_id, times, node, devices, status, attempts, wait, reason, requests.

    The columns, in order, are ``tasks_columns``'s: add a column there, and both the
    DataFrame and the files the command line writes have it.
    """
    import pandas as pd

    return pd.DataFrame(tasks_columns(records, workload))


def tasks_columns(records: RunRecords, workload: Workload) -> dict[str, np.ndarray]:
    """``tasks_frame``'s table as columns (name -> 1-D array, one entry per task), in its order.

    ``reason`` says why a task did not run: for a task never placed, the placement
    explanation at the end ("0/48 nodes fit: 48 insufficient memory"); for an
    unschedulable one, why no node could ever hold it; for a failed one, its losses.
    Empty for tasks that ran.
    """
    node_ids = np.asarray([*records.node_ids, ""], dtype=object)
    reasons = np.full(len(workload), "", dtype=object)
    if records.reasons:
        reasons[list(records.reasons)] = list(records.reasons.values())
    columns = {
        "policy": np.full(len(workload), records.policy, dtype=object),
        "task_id": np.arange(len(workload), dtype=np.int64),
        "submit_time": workload.submit_time,
        "start_time": records.start_time,
        "end_time": records.end_time,
        "node": node_ids[records.node],  # -1 indexes the trailing "" (never placed)
        "devices": _devices_column(records, len(workload)),
        "status": np.asarray(Status.NAMES, dtype=object)[records.status],
        "attempts": records.attempts,
        "wait": records.wait,
        "reason": reasons,
    }
    for i, name in enumerate(workload.resources):
        columns[name] = workload.demand[:, i]
    return columns | records.task_extras  # priority, preemption, gang, DAG columns when in use


def _devices_column(records: RunRecords, n: int) -> np.ndarray:
    """Device indices of each task's last run on its node (``"0;3"``), empty when it took none."""
    column = np.full(n, "", dtype=object)
    if records.devices:
        column[list(records.devices)] = list(records.devices.values())
    return column


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summary_row(records: RunRecords, workload: Workload) -> dict[str, float | int | str]:
    """The headline numbers of one policy run (definitions in the module docstring)."""
    w0, w1 = records.window
    windowed = w0 > 0 or w1 < records.horizon  # else every task and every sample counts
    row: dict[str, float | int | str] = {"policy": records.policy}
    row |= _task_rows(records, workload, windowed)
    row |= _utilisation_rows(records, workload.resources, windowed)
    span = w1 - w0
    row["mean_queue"] = records.integrals["queue"] / span if span > 0 else 0.0
    row["mean_running"] = records.integrals["running"] / span if span > 0 else 0.0
    row["peak_nodes_used"] = records.peak_nodes_used
    frag = records.samples.get("fragmentation", np.zeros(0))
    row["fragmentation"] = float(frag[_sample_window(records, windowed)].mean()) if len(frag) else 0.0
    row["decisions"] = records.decisions
    row["wall_seconds"] = records.wall_seconds
    return row | records.summary_extras  # preemption and DAG keys when in use


def _task_rows(records: RunRecords, workload: Workload, windowed: bool) -> dict[str, float | int]:
    """Task counts, waits over the tasks submitted in the window, makespan and throughput."""
    status = records.status
    completed = status == Status.COMPLETED
    started = ~np.isnan(records.start_time)
    never_started = (status == Status.PENDING) & ~started
    w0, w1 = records.window
    submit = workload.submit_time
    measured = (submit >= w0) & (submit < w1) if windowed else np.ones(len(submit), bool)
    waits = records.wait[started & measured]
    censored = records.wait[(started | never_started) & measured]
    first_submit = float(submit.min()) if len(workload) else 0.0
    makespan = float(np.nanmax(records.end_time[completed])) - first_submit if completed.any() else float("nan")
    return {
        "tasks_submitted": len(workload),
        "tasks_completed": int(completed.sum()),
        "tasks_failed": int((status == Status.FAILED).sum()),
        "tasks_pending": int((status == Status.PENDING).sum()),
        "tasks_running": int((status == Status.RUNNING).sum()),
        "unschedulable": int((status == Status.UNSCHEDULABLE).sum()),
        "tasks_never_started": int(never_started.sum()),
        "rescheduled": records.rescheduled,
        "tasks_measured": int((started & measured).sum()),
        "mean_wait": float(waits.mean()) if len(waits) else float("nan"),
        "mean_wait_censored": float(censored.mean()) if len(censored) else float("nan"),
        "prob_wait": float((waits > 0).mean()) if len(waits) else float("nan"),
        "p50_wait": _percentile(waits, 50),
        "p95_wait": _percentile(waits, 95),
        "p99_wait": _percentile(waits, 99),
        "max_wait": float(waits.max()) if len(waits) else float("nan"),
        "makespan": makespan,
        "throughput": float(completed.sum()) / makespan if makespan > 0 else float("nan"),
    }


def _sample_window(records: RunRecords, windowed: bool) -> np.ndarray:
    """Bool mask of the samples inside the window (all of them if none falls inside)."""
    w0, w1 = records.window
    times = records.samples.get("time", np.zeros(0))
    in_window = (times >= w0) & (times < w1) if windowed else np.ones(len(times), bool)
    if len(times) and not in_window.any():
        in_window[:] = True  # a window shorter than one sample interval: use them all
    return in_window


def _utilisation_rows(records: RunRecords, resources: tuple[str, ...], windowed: bool) -> dict[str, float]:
    """Exact mean utilisation, final utilisation and sampled stranded share per resource."""
    row: dict[str, float] = {}
    for name in resources:
        cap = records.integrals[f"capacity_{name}"]
        row[f"mean_util_{name}"] = records.integrals[f"used_{name}"] / cap if cap > 0 else 0.0
    for name in resources:
        series = records.samples.get(f"util_{name}", np.zeros(0))
        row[f"final_util_{name}"] = float(series[-1]) if len(series) else 0.0
    in_window = _sample_window(records, windowed)
    for name in resources:
        series = records.samples.get(f"stranded_{name}", np.zeros(0))
        row[f"mean_stranded_{name}"] = float(series[in_window].mean()) if len(series) else 0.0
    return row


def timeseries_frame(records: RunRecords) -> pd.DataFrame:
    """The sampled time series of one run, with a ``policy`` column first."""
    import pandas as pd

    return pd.DataFrame(timeseries_columns(records))


def timeseries_columns(records: RunRecords) -> dict[str, np.ndarray]:
    """``timeseries_frame``'s table as columns (name -> 1-D array, one entry per sample)."""
    samples = {name: np.asarray(values) for name, values in records.samples.items()}
    rows = len(next(iter(samples.values()))) if samples else 0
    return {"policy": np.full(rows, records.policy, dtype=object), **samples}


def failures_frame(records: RunRecords) -> pd.DataFrame:
    """One row per detected node failure: when, which node, and how many tasks it took down.

    Counted at detection, so tasks placed on the node after it died but before the
    failure was noticed are included: they were lost too.
    """
    import pandas as pd

    frame = pd.DataFrame(records.failures, columns=["failed_at", "detected_at", "node", "tasks_lost"])
    frame.insert(0, "policy", records.policy)
    return frame.astype({"failed_at": "float64", "detected_at": "float64", "tasks_lost": "int64"})
