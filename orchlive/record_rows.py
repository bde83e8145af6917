"""A recording's rows from what the API and the event stream said: pure functions, no I/O.

``orchlive.record`` fetches (once, or continuously with ``--follow``) and writes; this
module turns tasks, nodes and events into the rows of ``tasks.csv`` and ``nodes.csv``
(``orchsim.recording_format`` names the columns). Times are seconds from ``epoch``, the
first task's submission.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

from orchsim.recording_format import RESOURCE_COLUMNS

__all__ = [
    "attempts",
    "column",
    "merge_nodes",
    "merge_tasks",
    "node_event_rows",
    "node_rows",
    "node_times",
    "resource_order",
    "task_rows",
    "when",
    "write_csv",
]

# Events that end an attempt: a preempted attempt ends like a rescheduled one (back to the queue).
_ENDS = {
    "task.completed": "COMPLETED",
    "task.failed": "FAILED",
    "task.rescheduled": "RESCHEDULED",
    "task.preempted": "PREEMPTED",
    "task.skipped": "SKIPPED",  # a DAG child whose parent failed, or a gang's spare replica
}
_REQUEUED = ("task.rescheduled", "task.preempted")


def when(stamp: str | None) -> datetime | None:
    """An ISO timestamp of the API as a datetime (None stays None)."""
    return None if not stamp else datetime.fromisoformat(stamp)


def column(resource: str) -> str:
    """The recording's column of a live resource (openb's names for cpu, memory, gpu)."""
    return RESOURCE_COLUMNS.get(resource, resource)


def resource_order(tasks: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[str]:
    """Every resource any task asks or any node offers: cpu, memory, gpu first, then the rest sorted."""
    found = sorted({r for item in [*tasks, *nodes] for r in item.get("resources", item.get("capacity", {}))})
    return [r for r in RESOURCE_COLUMNS if r in found] + [r for r in found if r not in RESOURCE_COLUMNS]


def _latest_objects(events: list[dict[str, Any]], prefix: str, needs: str) -> dict[str, dict[str, Any]]:
    """Per id, the last object of the ``prefix`` events that carries ``needs`` (a full view)."""
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        obj = event.get("object", {})
        if event.get("type", "").startswith(prefix) and "id" in obj and needs in obj:
            found[obj["id"]] = obj
    return found


def merge_tasks(listed: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks the store lists, plus those only the events still show (deleted since), by submission.

    A task the store no longer holds is known from the last view an event carried; the
    store's view wins for the others. Sorted by submission time, ties in listed order.
    """
    seen = _latest_objects(events, "task.", "creation_time")
    merged = {t["id"]: t for t in listed}
    merged |= {i: obj for i, obj in seen.items() if i not in merged and "resources" in obj and "name" in obj}
    rows = list(merged.values())
    return sorted(rows, key=lambda t: when(t["creation_time"]) or datetime.min)


def merge_nodes(listed: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nodes the store lists, plus those only the events still show."""
    seen = _latest_objects(events, "node.", "capacity")
    merged = {n["id"]: n for n in listed}
    merged |= {i: obj for i, obj in seen.items() if i not in merged}
    return list(merged.values())


def attempts(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per task id, its attempts in order: ``{attempt, node, devices, start, end, state, reason, exit_code}``.

    And ``assigned_event``, ``end_event``: the ids of the events that opened and ended it
    (``TASK_EVENTS``), which compare in commit order; ``created_event``: the id of the task's
    ``task.created`` (the master had seen it through its watch when it first placed the task).
    """
    found: dict[str, list[dict[str, Any]]] = {}
    created: dict[str, Any] = {}  # per task, the id of its task.created
    for event in events:
        kind, obj = event.get("type", ""), event.get("object", {})
        if not kind.startswith("task.") or "id" not in obj:
            continue
        rows = found.setdefault(obj["id"], [])
        stamp = when(event.get("timestamp"))
        if kind == "task.created":
            created[obj["id"]] = event.get("id")
        elif kind == "task.assigned":
            rows.append({"attempt": obj.get("attempts", len(rows) + 1), "node": obj.get("node_id") or ""})
            rows[-1] |= {"devices": obj.get("devices", {}), "assigned": stamp, "state": "ASSIGNED"}
            rows[-1] |= {"assigned_event": event.get("id"), "created_event": created.get(obj["id"])}
        elif rows and kind == "task.running":
            rows[-1] |= {"start": when(obj.get("start_time")) or stamp, "state": "RUNNING"}
        elif kind in _ENDS:
            if not rows:  # failed before any placement (e.g. unschedulable)
                rows.append({"attempt": 0, "node": "", "devices": {}})
            end = when(obj.get("end_time")) if kind not in _REQUEUED else None
            rows[-1] |= {"end": end or stamp, "state": _ENDS[kind], "reason": obj.get("reason") or ""}
            rows[-1]["end_event"] = event.get("id")
            rows[-1]["exit_code"] = obj.get("exit_code") if kind not in _REQUEUED else None
    return found


def node_times(events: list[dict[str, Any]]) -> dict[str, dict[str, datetime]]:
    """Per node id: the first ``joined``, the last ``lost`` and ``drained``, and ``rejoined``.

    ``rejoined`` is the last join that came after a loss or a drain (a worker restarted
    under the same name): the node was out, and is back.
    """
    times: dict[str, dict[str, datetime]] = {}
    for event in events:
        kind, obj = event.get("type", ""), event.get("object", {})
        stamp = when(event.get("timestamp"))
        if not kind.startswith("node.") or "id" not in obj or stamp is None:
            continue
        what = kind.split(".", 1)[1]
        mine = times.setdefault(obj["id"], {})
        if what == "joined" and "joined" in mine:
            if "lost" in mine or "drained" in mine:
                mine["rejoined"] = stamp
        elif what in ("joined", "lost", "drained"):
            mine[what] = stamp
    return times


def node_event_rows(events: list[dict[str, Any]], epoch: datetime) -> list[list[str]]:
    """``node_events.csv``'s rows: every join, loss and drain, in time order (``NODE_EVENT_COLUMNS``).

    An uncordon of a live node is a join (it takes tasks again); of a lost one, and a
    removal, nothing (the node is out until its worker joins).

    ``nodes.csv`` keeps one time of each kind per node; this keeps them all, so that a
    node lost, back, drained... any number of times replays through each. The state is
    the node's as the event reported it: a join in state ``DRAINING`` is a drained
    worker restarting, which the master keeps cordoned.
    """
    rows = []
    for event in events:
        kind, obj = event.get("type", ""), event.get("object", {})
        stamp = when(event.get("timestamp"))
        what = kind.split(".", 1)[1] if kind.startswith("node.") else ""
        if what == "uncordoned":  # back in service, as a replay sees it, if its worker is up
            what = "joined" if obj.get("state") == "READY" else ""
        if what in ("joined", "lost", "drained") and "id" in obj and stamp is not None:
            rows.append((stamp, [obj["id"], _seconds(stamp, epoch), what, str(obj.get("state") or "")]))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def _seconds(at: datetime | None, epoch: datetime) -> str:
    return "" if at is None else f"{(at - epoch).total_seconds():.6f}"


def _id_text(event_id: int | None) -> str:
    return "" if event_id is None else str(int(event_id))


def _devices_text(devices: dict[str, list[int]]) -> str:
    """``{"gpu": [0, 3]}`` as ``gpu:0;gpu:3``."""
    return ";".join(f"{kind}:{index}" for kind in sorted(devices) for index in devices[kind])


def _structure(task: dict[str, Any]) -> list[str]:
    """``TASK_OPTIONAL``'s cells: the task's gang and its dependencies (empty for a single task, no parents)."""
    gang = task.get("gang") or ""
    sizes = [str(task.get("replica", 0)), str(task.get("replicas", 1)), str(task.get("min_replicas") or "")]
    after = ";".join(task.get("after") or [])
    rules = [task.get("on", "success"), task.get("if_parent_fails", "fail")] if after else ["", ""]
    return [gang, *(sizes if gang else ["", "", ""]), after, *rules]


def task_rows(
    tasks: list[dict[str, Any]], tried: dict[str, list[dict[str, Any]]], resources: list[str], epoch: datetime
) -> list[list[str]]:
    """One row per attempt of every task (attempt 0 for a task never placed), in ``tasks``' order.

    Columns: ``TASK_COLUMNS``, the resources, ``TASK_TAIL``, ``TASK_OPTIONAL`` (gang, DAG),
    ``TASK_EVENTS``.
    """
    rows = []
    for task in tasks:
        submit = _seconds(when(task["creation_time"]), epoch)
        asks = [f"{task['resources'].get(r, 0):g}" for r in resources]
        mine = tried.get(task["id"]) or [{"attempt": 0, "node": "", "devices": {}, "state": task["state"]}]
        structure = _structure(task)
        for a in mine:
            start, end = _seconds(a.get("start"), epoch), _seconds(a.get("end"), epoch)
            assigned = _seconds(a.get("assigned"), epoch)
            head = [task["id"], task["name"], submit, a["node"], _devices_text(a.get("devices", {})), assigned]
            head += [start, end]
            code = a.get("exit_code")
            tail = [a.get("reason", ""), "" if code is None else str(code)]
            ids = [_id_text(a.get(column)) for column in ("assigned_event", "end_event", "created_event")]
            rows.append([*head, a.get("state", task["state"]), str(a["attempt"]), *asks, *tail, *structure, *ids])
    return rows


def node_rows(
    nodes: list[dict[str, Any]], times: dict[str, dict[str, datetime]], resources: list[str], epoch: datetime
) -> list[list[str]]:
    """One row per node, sorted by id (as the master numbers them): ``NODE_COLUMNS``, ``NODE_OPTIONAL``, capacity."""
    rows = []
    for node in sorted(nodes, key=lambda n: n["id"]):
        mine = times.get(node["id"], {})
        joined = mine.get("joined") or when(node.get("registered_time"))
        labels = ";".join(f"{k}={v}" for k, v in sorted(node.get("labels", {}).items()))
        devices = ";".join(f"{k}={v}" for k, v in sorted(node.get("devices", {}).items()))
        seen = [joined, mine.get("lost"), mine.get("drained"), mine.get("rejoined")]
        capacity = [f"{node['capacity'].get(r, 0):g}" for r in resources]
        rows.append([node["id"], labels, devices, *(_seconds(t, epoch) for t in seen), *capacity])
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write ``path`` whole (through a temporary file, so that a reader never sees half of it)."""
    partial = path.with_suffix(path.suffix + ".part")
    with partial.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    partial.replace(path)
