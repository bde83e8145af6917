"""What the client shows of tasks, nodes and events: table rows, event lines, ``describe`` pages.

Pure functions from the API's JSON to text, so that every view is tested without a cluster.
Units as the API has them: cpu in millicores, memory in MiB, gpu in milli-GPU.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchlive.client.output import age, parse_time, table

__all__ = ["dag_view", "describe_node", "describe_task", "event_line", "node_table", "task_table"]

Json = dict[str, Any]


def _amount(value: int | float | None) -> str:
    if value is None:
        return "0"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _resources(amounts: dict[str, Any]) -> str:
    return ",".join(f"{name}={_amount(amount)}" for name, amount in amounts.items())


def task_table(tasks: Sequence[Json], wide: bool = False, now: datetime | None = None) -> str:
    """``ID NAME STATE NODE EXIT AGE``; ``wide`` adds the priority, resources asked, attempts, reason and command."""
    headers = ["ID", "NAME", "STATE", "NODE", "EXIT", "AGE"]
    if wide:
        headers += ["PRIORITY", "RESOURCES", "ATTEMPTS", "REASON", "COMMAND"]
    rows = []
    for task in tasks:
        exit_code = task.get("exit_code")
        row = [
            task["id"],
            task["name"],
            task["state"],
            task.get("node_id") or "",
            "" if exit_code is None else str(exit_code),
            age(task.get("creation_time"), now),
        ]
        if wide:
            command = shlex.join(task.get("command") or [])
            row += [
                str(task.get("priority", 0)),
                _resources(task.get("resources", {})),
                str(task.get("attempts", 0)),
                _reason(task),
                command,
            ]
        rows.append(row)
    return table(headers, rows)


def _reason(task: Json) -> str:
    """The task's reason; for a PENDING task without one, that the scheduler has not tried it yet.

    The master notes a reason on every task it tries and leaves waiting. A fifo queue stops
    at its head (and backfill at its window): the tasks behind it are not tried at all, and
    writing a reason on each, at every change of head, would cost a write per queued task.
    """
    if task.get("reason") or task.get("state") != "PENDING":
        return task.get("reason") or ""
    return "queued: not tried yet (behind tasks waiting for room, or just submitted)"


def dag_view(dag: Json) -> str:
    """A DAG (``GET /api/v1/dags/{id}``): ``dag/<id> STATE`` and its counts, then ``ID NAME STATE NODE AFTER REASON``.

    A parent is shown by name when it is a task of the DAG, by id otherwise; a gang's
    replicas show as ``name[i]``.
    """
    names = {task["id"]: task["name"] for task in dag["tasks"] if task.get("replica", 0) == 0}
    counts = ", ".join(f"{n} {state}" for state, n in dag["counts"].items())
    rows = []
    for task in dag["tasks"]:
        name = task["name"] + (f"[{task['replica']}]" if task.get("gang") else "")
        after = ",".join(names.get(parent, parent) for parent in task.get("after", []))
        rows.append([task["id"], name, task["state"], task.get("node_id") or "", after, task.get("reason") or ""])
    headers = ["ID", "NAME", "STATE", "NODE", "AFTER", "REASON"]
    return f"dag/{dag['id']}   {dag['state']}   ({counts})\n" + table(headers, rows)


def node_table(nodes: Sequence[Json], wide: bool = False, now: datetime | None = None) -> str:
    """``NAME STATE TASKS`` and ``allocated/capacity`` per resource (``CPU(m)``, ``MEMORY(Mi)``, others), ``HEARTBEAT``.

    ``wide`` adds the runtime, the labels and the address.
    """
    names: list[str] = []
    for node in nodes:
        names += [name for name in node.get("capacity", {}) if name not in names]
    units = {"cpu": "CPU(m)", "memory": "MEMORY(Mi)", "gpu": "GPU(m)"}
    headers = ["NAME", "STATE", "TASKS", *(units.get(n, n.upper()) for n in names), "HEARTBEAT"]
    if wide:
        headers += ["RUNTIME", "LABELS", "ADDRESS"]
    rows = []
    for node in nodes:
        capacity, allocated = node.get("capacity", {}), node.get("allocated", {})
        used = [f"{_amount(allocated.get(n))}/{_amount(capacity[n])}" if n in capacity else "" for n in names]
        row = [node["id"], node["state"], str(len(node.get("tasks", []))), *used, age(node.get("last_heartbeat"), now)]
        if wide:
            labels = ",".join(f"{k}={v}" for k, v in node.get("labels", {}).items())
            row += [node.get("runtime", ""), labels, node.get("address", "")]
        rows.append(row)
    return table(headers, rows)


def _event_reason(kind: str, obj: Json) -> str:
    """Why, or what happened, in a few words: the object's reason, else what the event type implies."""
    if kind == "events.expired":
        return f"{obj.get('reason', '')}: resumes at {obj.get('resumes_at')}"
    if obj.get("reason"):
        return str(obj["reason"])
    if kind in ("task.assigned", "task.running"):
        return f"on {obj.get('node_id')}"
    if kind in ("task.completed", "task.failed"):
        return f"exit {obj.get('exit_code')}"
    if kind == "task.created":
        return f"name {obj.get('name')}"
    if kind.startswith("node."):
        return str(obj.get("state", ""))
    return ""


def _event_object(kind: str, obj: Json) -> str:
    what = kind.split(".", 1)[0]
    return f"{what}/{obj['id']}" if "id" in obj else "-"


def event_line(event: Json) -> str:
    """``TIME TYPE OBJECT REASON`` on one line: ``2026-01-01T10:00:00Z  task.assigned  task/ab12  on w1``."""
    moment = parse_time(event.get("timestamp"))
    when = moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"
    kind = str(event.get("type", "?"))
    obj = event.get("object") or {}
    return f"{when}  {kind:<16}  {_event_object(kind, obj):<22}  {_event_reason(kind, obj)}".rstrip()


def _fields(pairs: Sequence[tuple[str, str]]) -> list[str]:
    width = max(len(key) for key, _ in pairs) + 2
    return [f"{key + ':':<{width}}{value if value != '' else '<none>'}" for key, value in pairs]


def _moment(text: str | None, now: datetime | None) -> str:
    return "<none>" if not text else f"{text} ({age(text, now)} ago)"


def _events_section(events: Sequence[Json]) -> list[str]:
    if not events:
        return ["Events:     <none>"]
    return ["Events:", *("  " + event_line(e) for e in events)]


def describe_task(task: Json, events: Sequence[Json], now: datetime | None = None) -> str:
    """A task's fields, one per line, and the events that name it, as ``kubectl describe`` shows a pod."""
    exit_code = task.get("exit_code")
    state = task["state"] + ("" if exit_code is None else f" (exit {exit_code})")
    lines = _fields(
        [
            ("Task", task["id"]),
            ("Name", task["name"]),
            ("State", state),
            ("Reason", _reason(task)),
            ("Node", task.get("node_id") or ""),
            ("Command", shlex.join(task.get("command") or [])),
            ("Image", task.get("image") or ""),
            ("Resources", _resources(task.get("resources", {}))),
            ("Env", ", ".join(task.get("env_names", []))),
            ("Timeout", "" if task.get("timeout") is None else f"{task['timeout']:g} s"),
            ("Priority", str(task.get("priority", 0))),
            ("Attempts", f"{task.get('attempts', 0)} of at most {task.get('max_attempts')}"),
            ("Created", _moment(task.get("creation_time"), now)),
            ("Started", _moment(task.get("start_time"), now)),
            ("Ended", _moment(task.get("end_time"), now)),
        ]
    )
    return "\n".join([*lines, *_events_section(events)])


def _devices_section(device_use: dict[str, list[Json]]) -> list[str]:
    """``Devices:`` one row per device (per kind): used and free milli units, and which tasks hold what."""
    rows = [
        [
            kind,
            str(d["index"]),
            _amount(d.get("used")),
            _amount(d.get("free")),
            ",".join(f"{task}={_amount(share)}" for task, share in d.get("tasks", {}).items()),
        ]
        for kind, devices in device_use.items()
        for d in devices
    ]
    if not rows:
        return ["Devices:    <none>"]
    lines = table(["KIND", "DEVICE", "USED", "FREE", "TASKS"], rows).splitlines()
    return ["Devices:", *("  " + line for line in lines)]


def describe_node(node: Json, events: Sequence[Json], now: datetime | None = None) -> str:
    """A node's fields, its resources (capacity, allocated, free), its devices (``device_use``) and its events."""
    labels = ",".join(f"{k}={v}" for k, v in node.get("labels", {}).items())
    lines = _fields(
        [
            ("Node", node["id"]),
            ("State", node["state"]),
            ("Runtime", node.get("runtime", "")),
            ("Address", node.get("address", "")),
            ("Labels", labels),
            ("Registered", _moment(node.get("registered_time"), now)),
            ("Heartbeat", _moment(node.get("last_heartbeat"), now)),
            ("Tasks", ", ".join(node.get("tasks", []))),
        ]
    )
    capacity, allocated, free = node.get("capacity", {}), node.get("allocated", {}), node.get("free", {})
    rows = [[n, _amount(capacity[n]), _amount(allocated.get(n)), _amount(free.get(n))] for n in capacity]
    resources = table(["RESOURCE", "CAPACITY", "ALLOCATED", "FREE"], rows).splitlines()
    devices = _devices_section(node.get("device_use") or {})
    return "\n".join([*lines, "Resources:", *("  " + line for line in resources), *devices, *_events_section(events)])
