"""Recorded vs replayed, measured alike: waits, nodes in use, stranded capacity, what failures cost.

The simulator's own metrics are integrals it keeps while it runs; a recording has none,
only when each attempt held which node. So the side-by-side table measures both sides the
same way, from those intervals: the time-weighted mean number of nodes running something,
and the stranded share per resource (free capacity on those nodes over the capacity of
the nodes present), exact over ``[0, last end]``. A node is present from its join (or 0)
to its loss (the live master's declaration), as the replay has it.

What the recorded failures cost a policy is the difference between its replay with the
recorded losses and the same replay without them (``failures: false`` on the node list):
extra mean wait and mean time to completion, tasks lost with their node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orchsim.recording_format import COLUMN_RESOURCES, TASKS_FILE
from orchsim.traces import load_orchlive_node_history, load_orchlive_nodes
from orchsim.traces.orchlive_latency import in_service
from orchsim.traces.table import parse_floats, read_table, text_column

__all__ = ["Held", "held_from_recording", "held_from_replay", "occupancy", "side_by_side"]


@dataclass(frozen=True)
class Held:
    """Who held which node when: one entry per run (attempt).

    Attributes:
        node: Node ids, object ``(K,)``.
        begin: Start of each hold (s), float ``(K,)``.
        end: Its end (s), float ``(K,)``.
        demand: What each held, float ``(R, K)`` in the resources' order.
    """

    node: np.ndarray
    begin: np.ndarray
    end: np.ndarray
    demand: np.ndarray


def _floats(cells: Sequence[str]) -> np.ndarray:
    values, _ = parse_floats([c.strip() or "nan" for c in cells])
    return values


def held_from_recording(directory: str | Path, resources: Sequence[str]) -> Held:
    """Every recorded attempt that held a node: from its assignment (or start) to its end."""
    table = read_table(str(Path(directory) / TASKS_FILE))
    node = text_column(table, "node")
    assigned, start, end = (_floats(table.columns[c]) for c in ("assigned_time", "start_time", "end_time"))
    begin = np.where(np.isnan(assigned), start, assigned)
    keep = (node != "") & ~np.isnan(begin) & ~np.isnan(end)
    columns = {COLUMN_RESOURCES.get(c, c): c for c in table.header}
    demand = np.array(
        [np.nan_to_num(_floats(table.columns[columns[r]])) if r in columns else np.zeros(len(node)) for r in resources]
    )
    return Held(node[keep], begin[keep], end[keep], demand.reshape(len(resources), -1)[:, keep])


def held_from_replay(tasks: dict[str, Any], resources: Sequence[str]) -> Held:
    """The replay's runs (its tasks table for one policy: the last run of each task that ran)."""
    node = np.asarray(tasks["node"], dtype=object)
    begin = np.asarray(tasks["start_time"], dtype=np.float64)
    end = np.asarray(tasks["end_time"], dtype=np.float64)
    keep = (node != "") & ~np.isnan(begin) & ~np.isnan(end)
    demand = np.array([np.asarray(tasks[r], dtype=np.float64) for r in resources]).reshape(len(resources), -1)
    return Held(node[keep], begin[keep], end[keep], demand[:, keep])


def occupancy(held: Held, directory: str | Path, resources: Sequence[str]) -> dict[str, float]:
    """Time-weighted mean nodes in use and stranded share per resource over ``[0, last end]``.

    Returns:
        ``mean_nodes_used`` and ``mean_stranded_<r>`` for every resource ``r``.
    """
    ids, caps, _ = load_orchlive_nodes(directory)
    # A node is there from a join to a loss (any number of each; a drained node is still there).
    history = {
        n: [(t, k) for t, k in seen if k != "drained"] for n, seen in load_orchlive_node_history(directory).items()
    }
    capacity = np.array([caps.get(r, np.zeros(len(ids))) for r in resources])  # (R, N)
    horizon = float(held.end.max()) if held.end.size else 0.0
    changes = [t for seen in history.values() for t, _ in seen]
    cuts = np.unique(np.concatenate([[0.0, horizon], held.begin, held.end, changes]))
    cuts = cuts[(cuts >= 0) & (cuts <= horizon)]
    if cuts.size < 2:
        return {"mean_nodes_used": 0.0, **{f"mean_stranded_{r}": 0.0 for r in resources}}
    mid, width = (cuts[:-1] + cuts[1:]) / 2, np.diff(cuts)  # segments (S,)
    column = {n: i for i, n in enumerate(ids)}
    where = np.array([column[n] for n in held.node], dtype=np.int64)
    active = (held.begin[None, :] <= mid[:, None]) & (held.end[None, :] > mid[:, None])  # (S, K)
    busy = np.zeros((mid.size, len(ids)), dtype=bool)
    used = np.zeros((len(resources), mid.size, len(ids)))
    for k, n in enumerate(where):
        busy[active[:, k], n] = True
        used[:, active[:, k], n] += held.demand[:, k : k + 1]
    present = np.array([[in_service(history.get(n, []), m) for n in ids] for m in mid], dtype=bool).reshape(
        -1, len(ids)
    )
    out = {"mean_nodes_used": float((busy.sum(axis=1) * width).sum() / horizon)}
    for r, name in enumerate(resources):
        live = (capacity[r][None, :] * present).sum(axis=1)
        free = ((capacity[r][None, :] - used[r]) * busy).sum(axis=1)
        share = np.divide(free, live, out=np.zeros_like(free), where=live > 0)
        out[f"mean_stranded_{name}"] = float((share * width).sum() / horizon)
    return out


def side_by_side(
    directory: str | Path, recorded: Any, results: Any, without: Any | None = None
) -> list[dict[str, Any]]:
    """One row for the live cluster, then one per replayed policy, measured alike (see the module).

    Args:
        directory: The recording.
        recorded: Its ``RecordedTasks`` (``load_orchlive_tasks``).
        results: The replay's ``Results`` (every policy).
        without: The same replay without the recorded losses, for what they cost (optional).
    """
    resources = list(results.workload.resources)
    waits = recorded.wait[~np.isnan(recorded.wait)]
    rows = [
        {
            "run": "recorded (live)",
            "done": int(np.sum(recorded.state == "COMPLETED")),
            "mean_wait": float(waits.mean()) if waits.size else np.nan,
            "p95_wait": float(np.percentile(waits, 95)) if waits.size else np.nan,
            "mean_time_in_system": float(np.nanmean(recorded.end - recorded.submit)),
            "tasks_lost": int(np.sum(recorded.attempts > 1)),
            **occupancy(held_from_recording(directory, resources), directory, resources),
        }
    ]
    tasks = results.table("tasks")
    base = without.table("tasks") if without is not None else None
    for row in results.summary_rows:
        name = row["policy"]
        mine = {k: np.asarray(v)[np.asarray(tasks["policy"]) == name] for k, v in tasks.items()}
        failures = results.failures[results.failures["policy"] == name]
        entry = {
            "run": f"replay: {name}",
            "done": int(row["tasks_completed"]),
            "mean_wait": float(row["mean_wait"]),
            "p95_wait": float(row["p95_wait"]),
            "mean_time_in_system": _time_in_system(mine),
            "tasks_lost": int(failures["tasks_lost"].sum()),
            **occupancy(held_from_replay(mine, resources), directory, resources),
        }
        if base is not None:
            plain = {k: np.asarray(v)[np.asarray(base["policy"]) == name] for k, v in base.items()}
            entry["failure_cost_wait"] = entry["mean_wait"] - float(np.nanmean(np.asarray(plain["wait"], float)))
            entry["failure_cost_time_in_system"] = entry["mean_time_in_system"] - _time_in_system(plain)
        rows.append(entry)
    return rows


def _time_in_system(tasks: dict[str, Any]) -> float:
    """Mean seconds from submission to the end, over the tasks that ended."""
    spent = np.asarray(tasks["end_time"], dtype=np.float64) - np.asarray(tasks["submit_time"], dtype=np.float64)
    return float(np.nanmean(spent)) if np.isfinite(spent).any() else float("nan")
