"""The live master's decision latency, measured from its own recording.

A live master places a task some time after its submission even when nothing stands in
its way: the watch delivers the new task, a pass reads the cluster and decides, a
transaction commits the placement (milliseconds, up to a few hundred on a loaded
machine). The simulator places in zero time unless told otherwise
(``scheduler.decision_latency``); a replay that should reproduce the live waits needs
this latency, and the recording holds it: submission to first placement (``submit_time``
-> ``assigned_time``) of the tasks that could be placed at once.

"At once" is reconstructed from the recording alone, so that waiting for capacity or
behind other tasks is not counted as latency: at the task's submission every task
submitted before it had been placed (the queue was empty), and some node that was in
service (joined, not lost or drained since) had the room for it, counting what every
recorded attempt held on it at that moment (from its assignment to its end). A gang
counts once (its replica 0), and only if the nodes in service had room for all of it at
once (``min_replicas`` of its replicas, several to a node where they fit): a gang that
waited for another to end waited for capacity. A task with parents does not count at
all: it waited for them, not for the master.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from orchsim.recording_format import TASK_FIXED
from orchsim.traces.orchlive import (
    _optional,
    _resource_columns,
    _tasks_table,
    load_orchlive_node_history,
    load_orchlive_nodes,
)
from orchsim.traces.orchlive_structure import _sizes, gang_replica_rows, structure_cells
from orchsim.traces.table import text_column

__all__ = ["decision_latencies", "in_service"]


def in_service(history: list[tuple[float, str]], at: float) -> bool:
    """Whether a node with this history (``load_orchlive_node_history``) took tasks at ``at`` (s).

    In service from a join until a loss or a drain; a node with no recorded event was
    there all along; before its first join it was not.
    """
    state = not history or history[0][1] != "joined"
    for when, kind in history:
        if when > at:
            break
        state = kind == "joined"
    return state


def _first_placements(ids: np.ndarray, submit: np.ndarray, assigned: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Per task (first-seen rows, sorted by submission): its first row and its first placement (``inf``: never)."""
    first_row: dict[str, int] = {}
    placed: dict[str, float] = {}
    for i, task in enumerate(ids):
        first_row.setdefault(task, i)
        if not np.isnan(assigned[i]):
            placed[task] = min(placed.get(task, np.inf), float(assigned[i]))
    rows = sorted(first_row.values(), key=lambda i: submit[i])
    return rows, np.array([placed.get(ids[i], np.inf) for i in rows])


def decision_latencies(path: str | os.PathLike[str]) -> np.ndarray:
    """Seconds from submission to placement of the recorded tasks the master could place at once (see the module).

    Returns:
        float64 ``(K,)``, in submission order; empty if no task qualifies.

    Raises:
        TraceError: a missing or malformed file of the recording (naming it).
    """
    folder = Path(path)
    table, submit, _, end = _tasks_table(folder)
    ids, on_node = text_column(table, "task_id"), text_column(table, "node")
    assigned = _optional(table, "assigned_time")
    columns = _resource_columns(table, TASK_FIXED)
    names, capacity, _ = load_orchlive_nodes(folder)
    history = load_orchlive_node_history(folder)
    asks = np.array([np.nan_to_num(_optional(table, c)) for c in columns], dtype=np.float64).reshape(len(columns), -1)
    caps = np.array([capacity.get(r, np.zeros(len(names))) for r in columns.values()], dtype=np.float64)
    caps = caps.reshape(len(columns), len(names))
    held = (on_node != "") & ~np.isnan(assigned)
    held_until = np.where(np.isnan(end), np.inf, end)
    column_of = {name: j for j, name in enumerate(names)}
    rows, placed = _first_placements(ids, submit, assigned)
    cells = structure_cells(table)
    own = ~gang_replica_rows(table) & (cells["after"] == "")  # not a replica, not held
    placed, rows = placed[own[rows]], [row for row in rows if own[row]]
    sizes = _sizes(cells, np.asarray(rows, dtype=np.intp), table)  # (replicas, min_replicas), None: no gang
    before = np.maximum.accumulate(np.concatenate([[-np.inf], placed[:-1]])) if len(rows) else placed
    samples = []
    for k, row in enumerate(rows):
        at = submit[row]
        if not np.isfinite(placed[k]) or before[k] > at:
            continue  # never placed, or the queue held an earlier task
        free = caps.copy()
        for i in np.flatnonzero(held & (assigned <= at) & (held_until > at)):
            if on_node[i] in column_of:
                free[:, column_of[on_node[i]]] -= asks[:, i]
        up = np.array([in_service(history.get(n, []), at) for n in names], dtype=bool)
        if _room_for(free[:, up], asks[:, row], 1 if sizes is None else int(sizes[k][1])):
            samples.append(placed[k] - at)
    return np.asarray(samples, dtype=np.float64)


def _room_for(free: np.ndarray, ask: np.ndarray, replicas: int) -> bool:
    """Whether ``replicas`` copies of ``ask`` fit in ``free`` ``(R, N)`` at once, several to a node where they fit."""
    fits_one = np.all(free >= ask[:, None], axis=0)  # exactly the check of a single task
    asked = ask > 0
    if replicas == 1 or not asked.any():
        return bool(fits_one.any())
    copies = np.floor(free[asked] / ask[asked, None]).min(axis=0)  # copies each node holds
    return float(np.where(fits_one, np.maximum(copies, 1), 0).sum()) >= replicas
