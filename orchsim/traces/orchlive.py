"""A recording of a live orchlive cluster (``python -m orchlive record``): its tasks and nodes.

The folder holds ``tasks.csv`` (one row per task attempt), ``nodes.csv`` (one row per
node) and ``policy.json``; the README's "Recording a live cluster" section documents
every column. Resource columns use openb's names and units (``cpu_milli``,
``memory_mib``, ``gpu_milli``); any other column after the fixed ones is a resource of
that name.

What the simulator replays of a task: its submit time, its requests, and as duration the
time its node was held by its last attempt that ran to an end (preferring a COMPLETED
one): ``end_time - assigned_time``, i.e. the measured run time plus the worker's start-up,
because a live node's resources are the task's from its assignment to its end, and the
simulator's wait ends at placement (a recording without ``assigned_time`` uses
``end_time - start_time``). The wait is for the simulator to produce. Tasks that never
started are replayed with ``MIN_POD_DURATION`` and counted in ``clamped``; tasks that
never started *and* never ended (still pending when recorded) are left out and counted in
``skipped``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from orchsim.recording_format import (
    COLUMN_RESOURCES,
    NODE_COLUMNS,
    NODE_EVENT_COLUMNS,
    NODE_EVENTS_FILE,
    NODE_OPTIONAL,
    NODES_FILE,
    TASK_COLUMNS,
    TASK_EVENTS,
    TASK_FIXED,
    TASKS_FILE,
)
from orchsim.traces.openb import MIN_POD_DURATION
from orchsim.traces.orchlive_structure import RecordedStructure, gang_replica_rows, recorded_structure, structure_cells
from orchsim.traces.table import Table, parse_floats, read_table, text_column, trace_error
from orchsim.traces.tasks import TraceTasks, sorted_tasks

__all__ = [
    "RecordedAttempts",
    "load_orchlive_attempts",
    "RecordedTasks",
    "load_orchlive_node_history",
    "load_orchlive_node_times",
    "load_orchlive_nodes",
    "load_orchlive_structure",
    "load_orchlive_tasks",
    "recorded_outcomes",
]

# The column names are ``orchsim.recording_format``'s, shared with the writer (``orchlive.record``).


@dataclass(frozen=True)
class RecordedTasks:
    """One entry per replayed task, in the order ``load_orchlive_tasks`` returns them.

    Attributes:
        task_id: Live task ids, object ``(T,)``.
        node: Node of the attempt replayed (its last started one), ``""`` if none.
        wait: Seconds from submission to the first placement, ``nan`` if never placed.
        state: Final state of the replayed attempt (COMPLETED, FAILED, RESCHEDULED...).
        attempts: Number of placements the task had.
        submit: Submission, seconds from the first one.
        end: End of the replayed attempt (seconds), ``nan`` if it did not end.
        ready: When it could first be placed: its submission, or for a DAG's child the
            end of its last parent (seconds); None when no task has parents.
        assigned_event: Id of the replayed attempt's ``task.assigned`` event, ``nan`` if
            none; None for a recording before format 3 (``TASK_EVENTS``).
        end_event: Id of the event that ended the replayed attempt, likewise. Event ids
            compare in etcd's commit order.
    """

    task_id: np.ndarray
    node: np.ndarray
    wait: np.ndarray
    state: np.ndarray
    attempts: np.ndarray
    submit: np.ndarray
    end: np.ndarray
    ready: np.ndarray | None = None
    assigned_event: np.ndarray | None = None
    end_event: np.ndarray | None = None


def _optional(table: Table, column: str) -> np.ndarray:
    """A column of times where empty cells are ``nan``; other bad cells are an error naming the line."""
    cells = [c.strip() or "nan" for c in table.columns[column]]
    values, bad = parse_floats(cells)
    if bad is not None and cells[bad] != "nan":
        raise table.error(bad, column, f"{cells[bad]!r} is not a number")
    return values


def _tasks_table(directory: Path) -> tuple[Table, np.ndarray, np.ndarray, np.ndarray]:
    if not directory.is_dir():
        raise trace_error(str(directory), "not a folder (a recording is a folder holding tasks.csv and nodes.csv)")
    table = read_table(str(directory / TASKS_FILE))
    table.require(TASK_COLUMNS)
    return table, _optional(table, "submit_time"), _optional(table, "start_time"), _optional(table, "end_time")


def _chosen_rows(table: Table, start: np.ndarray, end: np.ndarray) -> tuple[list[int], int]:
    """Per task (first-seen order), the row replayed; and how many tasks were left out (never ran nor ended).

    The row replayed is the task's last COMPLETED attempt, else its last attempt that
    started and ended, else its last row. A gang is replayed as its replica 0: the other
    replicas' rows are not tasks of the replay (``orchlive_structure``).
    """
    ids = np.where(gang_replica_rows(table), "", text_column(table, "task_id"))
    states = text_column(table, "state")
    ran = ~np.isnan(start) & ~np.isnan(end)
    rank = ran.astype(int) + (ran & (states == "COMPLETED"))  # 2 completed, 1 ran, 0 other
    best: dict[str, int] = {}
    for i, task in enumerate(ids):
        if task and (task not in best or rank[i] >= rank[best[task]]):
            best[task] = i
    keep = [i for i in best.values() if not (np.isnan(start[i]) and np.isnan(end[i]))]
    return keep, len(best) - len(keep)


def _resource_columns(table: Table, fixed: tuple[str, ...]) -> dict[str, str]:
    """Recording column -> resource name, for every column after the fixed ones."""
    return {c: COLUMN_RESOURCES.get(c, c) for c in table.header if c not in fixed}


def load_orchlive_tasks(path: str | os.PathLike[str]) -> tuple[TraceTasks, RecordedTasks]:
    """The tasks of a recording folder, for replay, and what each really did.

    Returns:
        The tasks sorted by submit time (seconds from the first submission), with
        resources ``cpu`` (millicores), ``memory`` (MiB), ``gpu`` (milli-GPU) and any
        other recorded resource; ``names`` are the live task ids. And the recorded
        outcome of each, in the same order.

    Raises:
        TraceError: naming the file, line and column of the first problem.
    """
    directory = Path(path)
    table, submit, start, end = _tasks_table(directory)
    keep, skipped = _chosen_rows(table, start, end)
    rows = np.asarray(keep, dtype=np.int64)
    ids = text_column(table, "task_id")
    assigned = _optional(table, "assigned_time")
    held_from = np.where(np.isnan(assigned), start, assigned)  # the node is the task's from its assignment
    duration = (_gang_ends(table, end) - held_from)[rows]
    never = np.isnan(duration) | (duration <= 0)
    duration = np.where(never, MIN_POD_DURATION, duration)
    resources = {}
    for column, name in _resource_columns(table, TASK_FIXED).items():
        values = _optional(table, column)
        resources[name] = np.nan_to_num(values)[rows]
    tasks = sorted_tasks(
        submit[rows], duration, resources, ids[rows], rebase=False, skipped=skipped, clamped=int(never.sum())
    )
    outcomes = recorded_outcomes(table, rows, submit, assigned, end)
    parents = recorded_structure(table, rows[np.argsort(submit[rows], kind="stable")]).parents
    if parents is not None:  # a child's wait starts when its parents have ended, as the simulator counts it
        ready = np.array(
            [max([s, *(outcomes.end[p] for p in ps)]) for s, ps in zip(outcomes.submit, parents, strict=True)]
        )
        outcomes = replace(outcomes, wait=outcomes.wait - (ready - outcomes.submit), ready=ready)
    return tasks, outcomes


@dataclass(frozen=True)
class RecordedAttempts:
    """Every attempt of a recording (one per ``tasks.csv`` row), as the decision check reads them.

    Attributes:
        task_id, node, state: Text ``(A,)``; ``node`` is ``""`` for a task never placed.
        assigned_time, end: The attempt's placement and end (s), ``nan`` if none.
        assigned_event, end_event: Their event ids (format 3), ``nan`` if none; None for
            an older recording.
        created_event: Id of the task's ``task.created`` (format 4), ``nan`` if none; None for
            an older recording.
        submit: The task's submission (s), ``nan`` if unknown; None if not read.
        gang: A replica of a gang (any, replica 0 too); ``devices``: it held devices.
        requests: Per resource name (``cpu``, ``memory``, ``gpu``...), the request ``(A,)``.
    """

    task_id: np.ndarray
    node: np.ndarray
    state: np.ndarray
    assigned_time: np.ndarray
    end: np.ndarray
    assigned_event: np.ndarray | None
    end_event: np.ndarray | None
    gang: np.ndarray
    devices: np.ndarray
    requests: dict[str, np.ndarray]
    created_event: np.ndarray | None = None
    submit: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.task_id)


def load_orchlive_attempts(path: str | os.PathLike[str]) -> RecordedAttempts:
    """Every attempt of the recording in ``path``, in file order.

    Raises:
        TraceError: naming the file, line and column of the first problem.
    """
    table, submit, _, end = _tasks_table(Path(path))
    events = {c: _optional(table, c) if c in table.columns else None for c in TASK_EVENTS}
    requests = {name: np.nan_to_num(_optional(table, c)) for c, name in _resource_columns(table, TASK_FIXED).items()}
    return RecordedAttempts(
        task_id=text_column(table, "task_id"),
        node=text_column(table, "node"),
        state=text_column(table, "state"),
        assigned_time=_optional(table, "assigned_time"),
        end=end,
        assigned_event=events["assigned_event"],
        end_event=events["end_event"],
        gang=structure_cells(table)["gang"] != "",
        devices=text_column(table, "devices") != "",
        requests=requests,
        created_event=events["created_event"],
        submit=submit,
    )


def _gang_ends(table: Table, end: np.ndarray) -> np.ndarray:
    """Per row, its end, or for a gang's attempt the last end of its replicas' same attempt (the gang's run)."""
    gang = structure_cells(table)["gang"]
    if not (gang != "").any():
        return end
    attempt = text_column(table, "attempt")
    last: dict[tuple[str, str], float] = {}
    for i in np.flatnonzero(gang != ""):
        key = (str(gang[i]), str(attempt[i]))
        if not np.isnan(end[i]):
            last[key] = max(last.get(key, -np.inf), float(end[i]))
    return np.array([last.get((str(g), str(a)), e) if g else e for g, a, e in zip(gang, attempt, end, strict=True)])


def load_orchlive_structure(path: str | os.PathLike[str]) -> RecordedStructure:
    """The gangs, DAGs and failed processes of a recording's replayed tasks, in ``load_orchlive_tasks``' order.

    Raises:
        TraceError: naming the file, line and column of the first problem.
    """
    table, submit, start, end = _tasks_table(Path(path))
    keep, _ = _chosen_rows(table, start, end)
    rows = np.asarray(keep, dtype=np.int64)
    return recorded_structure(table, rows[np.argsort(submit[rows], kind="stable")])


def recorded_outcomes(
    table: Table, rows: np.ndarray, submit: np.ndarray, assigned: np.ndarray, end: np.ndarray
) -> RecordedTasks:
    """What the live cluster did with each replayed task, sorted as ``sorted_tasks`` sorts them.

    The wait is to the first placement (``assigned_time``), as the simulator counts it: a
    task holds its node from its assignment, and the worker's start-up is not queueing.
    """
    ids, node_of = text_column(table, "task_id"), text_column(table, "node")
    first: dict[str, float] = {}
    placements: dict[str, int] = {}
    for i, task in enumerate(ids):
        if not np.isnan(assigned[i]):
            first[task] = min(first.get(task, np.inf), float(assigned[i]))
        placements[task] = placements.get(task, 0) + (1 if node_of[i] else 0)
    order = rows[np.argsort(submit[rows], kind="stable")]
    chosen = ids[order]
    nodes = node_of[order]
    wait = np.array([first.get(t, np.nan) for t in chosen]) - submit[order]
    states = text_column(table, "state")[order]
    attempts = np.array([placements[t] for t in chosen], dtype=np.int64)
    events = {c: _optional(table, c)[order] if c in table.columns else None for c in TASK_EVENTS}
    outcome = RecordedTasks(chosen, nodes, wait, states, attempts, submit[order], end[order])
    return replace(outcome, assigned_event=events["assigned_event"], end_event=events["end_event"])


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(";") if "=" in item)


def _nodes_table(path: str | os.PathLike[str]) -> tuple[Table, list[str], list[int]]:
    """``nodes.csv``, its node ids and their sorted order; a bad or repeated id names its line."""
    table = read_table(str(Path(path) / NODES_FILE))
    table.require(NODE_COLUMNS)
    ids = [cell.strip() for cell in table.columns["node_id"]]
    for i, node in enumerate(ids):
        if not node:
            raise table.error(i, "node_id", "empty node id")
        if node in ids[:i]:
            raise table.error(i, "node_id", f"duplicate node id {node!r}")
    return table, ids, sorted(range(len(ids)), key=ids.__getitem__)


def load_orchlive_nodes(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, np.ndarray], list[dict[str, str]]]:
    """The nodes of a recording folder: ids (sorted, as the live master numbers them), capacities, labels.

    Capacities are float64 arrays per resource (``cpu`` millicores, ``memory`` MiB, ``gpu``
    milli-GPU, others as recorded). When each node joins, is lost or drained is
    ``load_orchlive_node_times``'s.

    Raises:
        TraceError: missing file or column, bad number, duplicate node id.
    """
    table, ids, order = _nodes_table(path)
    fixed = NODE_COLUMNS + NODE_OPTIONAL
    capacity = {name: _optional(table, column)[order] for column, name in _resource_columns(table, fixed).items()}
    labels = [_pairs(table.columns["labels"][i]) for i in order]
    return [ids[i] for i in order], capacity, labels


def load_orchlive_node_times(path: str | os.PathLike[str]) -> dict[str, dict[str, float]]:
    """Per node id (sorted), its recorded ``joined``, ``lost``, ``drained`` and ``rejoined`` times (s).

    Seconds from the first task's submission; an empty cell (never happened) is absent
    from the node's mapping. A recording written before ``rejoined`` existed has none.

    Raises:
        TraceError: missing file or column, bad number, duplicate node id.
    """
    table, ids, order = _nodes_table(path)
    columns = {c: _optional(table, c) for c in ("joined", "lost", "drained", *NODE_OPTIONAL) if c in table.columns}
    return {ids[i]: {c: float(values[i]) for c, values in columns.items() if not np.isnan(values[i])} for i in order}


#: Node event kinds of a history, as ``load_orchlive_node_history`` returns them.
NODE_EVENT_KINDS = ("joined", "lost", "drained")


def load_orchlive_node_history(path: str | os.PathLike[str]) -> dict[str, list[tuple[float, str]]]:
    """Per node id (sorted), every join, loss and drain in time order: ``(seconds, kind)``.

    From ``node_events.csv`` (format 2: every event) when the folder has one, else from
    ``nodes.csv``'s columns (format 1: the first join, the last loss and drain, the last
    return). A join the node reported in state ``DRAINING`` (a drained worker restarting:
    the live master keeps it cordoned) is not a return to service and is left out. A node
    whose first join is older than the events kept has ``nodes.csv``'s ``joined`` first.

    Raises:
        TraceError: missing file or column, bad number or event kind, unknown node id.
    """
    folder = Path(path)
    times = load_orchlive_node_times(folder)
    if not (folder / NODE_EVENTS_FILE).exists():
        old = {"joined": "joined", "lost": "lost", "drained": "drained", "rejoined": "joined"}
        return {node: sorted((t, old[c]) for c, t in seen.items()) for node, seen in times.items()}
    table = read_table(str(folder / NODE_EVENTS_FILE))
    table.require(NODE_EVENT_COLUMNS)
    at = _optional(table, "time")
    history: dict[str, list[tuple[float, str]]] = {node: [] for node in times}
    nodes, kinds, states = (text_column(table, c) for c in ("node_id", "event", "state"))
    for i, (node, kind, state) in enumerate(zip(nodes, kinds, states, strict=True)):
        if node not in history:
            raise table.error(i, "node_id", f"{node!r} is not in {NODES_FILE}")
        if kind not in NODE_EVENT_KINDS or np.isnan(at[i]):
            raise table.error(i, "event", f"{kind!r} at {at[i]}: expected {', '.join(NODE_EVENT_KINDS)} and a time")
        if not (kind == "joined" and state == "DRAINING"):
            history[node].append((float(at[i]), str(kind)))
    for node, events in history.items():
        events.sort(key=lambda e: e[0])
        if "joined" in times[node] and not any(k == "joined" for _, k in events):
            events.insert(0, (times[node]["joined"], "joined"))
    return history
