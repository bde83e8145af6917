"""Pure functions from run records to tables: per-task rows, one summary row, the time series.

Definitions (all times in simulated seconds):

* ``wait`` of a task: total time it spent queued, over all its attempts (so the sum of
  waits equals the time integral of the queue length: Little's law holds exactly).
* ``makespan``: last completion minus first submission.
* ``throughput``: completed tasks per second of makespan.
* ``mean_util_<r>``: time integral of allocated ``r`` over time integral of ``r``
  capacity on live nodes (a time-weighted mean, exact, not sampled).
* ``final_util_<r>``: allocated share of live capacity at the end (for arrival-only traces).
* ``mean_stranded_<r>``: mean over samples of the free ``r`` on nodes running at least one
  task, as a share of live capacity (capacity that consolidation could have freed).
* ``fragmentation``: mean over samples of the share of free capacity stranded on nodes
  too full for the workload's median request.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchsim.engine import RunRecords, Status
from orchsim.workload import Workload

__all__ = ["summary_row", "tasks_frame", "timeseries_frame"]


def tasks_frame(records: RunRecords, workload: Workload) -> pd.DataFrame:
    """One row per task: policy, task_id, times, node, status, attempts, wait, requested resources."""
    node_ids = np.asarray([*records.node_ids, ""], dtype=object)
    frame = pd.DataFrame(
        {
            "policy": records.policy,
            "task_id": np.arange(len(workload), dtype=np.int64),
            "submit_time": workload.submit_time,
            "start_time": records.start_time,
            "end_time": records.end_time,
            "node": node_ids[records.node],  # -1 indexes the trailing "" (never placed)
            "status": np.asarray(Status.NAMES, dtype=object)[records.status],
            "attempts": records.attempts,
            "wait": records.wait,
        }
    )
    for i, name in enumerate(workload.resources):
        frame[name] = workload.demand[:, i]
    return frame


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summary_row(records: RunRecords, workload: Workload) -> dict[str, float | int | str]:
    """The headline numbers of one policy run."""
    status = records.status
    completed = status == Status.COMPLETED
    started = ~np.isnan(records.start_time)
    waits = records.wait[started]
    first_submit = float(workload.submit_time.min()) if len(workload) else 0.0
    last_end = float(np.nanmax(records.end_time[completed])) if completed.any() else first_submit
    makespan = last_end - first_submit
    row: dict[str, float | int | str] = {
        "policy": records.policy,
        "tasks_submitted": len(workload),
        "tasks_completed": int(completed.sum()),
        "tasks_failed": int((status == Status.FAILED).sum()),
        "tasks_pending": int((status == Status.PENDING).sum()),
        "tasks_running": int((status == Status.RUNNING).sum()),
        "unschedulable": int((status == Status.UNSCHEDULABLE).sum()),
        "rescheduled": records.rescheduled,
        "mean_wait": float(waits.mean()) if len(waits) else float("nan"),
        "p50_wait": _percentile(waits, 50),
        "p95_wait": _percentile(waits, 95),
        "p99_wait": _percentile(waits, 99),
        "max_wait": float(waits.max()) if len(waits) else float("nan"),
        "makespan": makespan,
        "throughput": float(completed.sum()) / makespan if makespan > 0 else float("nan"),
    }
    for name in workload.resources:
        cap = records.integrals[f"capacity_{name}"]
        row[f"mean_util_{name}"] = records.integrals[f"used_{name}"] / cap if cap > 0 else 0.0
    for name in workload.resources:
        series = records.samples.get(f"util_{name}", np.zeros(0))
        row[f"final_util_{name}"] = float(series[-1]) if len(series) else 0.0
    for name in workload.resources:
        series = records.samples.get(f"stranded_{name}", np.zeros(0))
        row[f"mean_stranded_{name}"] = float(series.mean()) if len(series) else 0.0
    horizon = records.horizon
    row["mean_queue"] = records.integrals["queue"] / horizon if horizon > 0 else 0.0
    row["mean_running"] = records.integrals["running"] / horizon if horizon > 0 else 0.0
    row["peak_nodes_used"] = records.peak_nodes_used
    frag = records.samples.get("fragmentation", np.zeros(0))
    row["fragmentation"] = float(frag.mean()) if len(frag) else 0.0
    row["decisions"] = records.decisions
    row["wall_seconds"] = records.wall_seconds
    return row


def timeseries_frame(records: RunRecords) -> pd.DataFrame:
    """The sampled time series of one run, with a ``policy`` column first."""
    frame = pd.DataFrame(records.samples)
    frame.insert(0, "policy", records.policy)
    return frame


def failures_frame(records: RunRecords) -> pd.DataFrame:
    """One row per detected node failure: when, which node, and how many tasks it took down.

    Counted at detection, so tasks placed on the node after it died but before the
    failure was noticed are included: they were lost too.
    """
    frame = pd.DataFrame(records.failures, columns=["failed_at", "detected_at", "node", "tasks_lost"])
    frame.insert(0, "policy", records.policy)
    return frame.astype({"failed_at": "float64", "detected_at": "float64", "tasks_lost": "int64"})
