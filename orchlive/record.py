"""Record what a live cluster did, for the simulator to replay (``python -m orchlive record``).

The recording is three files in one folder, read back by ``orchsim.traces.orchlive``:

* ``tasks.csv``: one row per task *attempt* (a placement and what became of it), from the
  event stream (``task.assigned`` opens an attempt; ``task.running`` starts it;
  ``task.completed``, ``task.failed`` or ``task.rescheduled`` ends it). A task never placed
  has one row with attempt 0 and no node.
* ``nodes.csv``: one row per node, from ``/api/v1/nodes`` and the ``node.joined``,
  ``node.lost`` and ``node.drained`` events.
* ``policy.json``: the master's policy (``/health`` says which) and its parameters, which
  the API does not expose: they come from the caller (``--policy-param``).

Times are seconds from the first task's submission (a node that joined before it has a
negative ``joined``). Requests use the openb column names and units: ``cpu_milli``
(millicores), ``memory_mib`` (MiB), ``gpu_milli`` (milli-GPU); any other resource keeps
its name. The event stream never ends: the history the store holds arrives at once, and
the dump stops after ``quiet`` seconds without an event (as ``orchlive events`` does).
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchlive.cli.usage import UsageError
from orchlive.client.http import Api

__all__ = [
    "NODE_COLUMNS",
    "RESOURCE_COLUMNS",
    "TASK_COLUMNS",
    "Recording",
    "add_record_parser",
    "record",
    "run_record",
]

#: Live resource name -> recording column (openb's names; same units as the live API).
RESOURCE_COLUMNS = {"cpu": "cpu_milli", "memory": "memory_mib", "gpu": "gpu_milli"}
TASK_COLUMNS = (
    "task_id",
    "name",
    "submit_time",
    "node",
    "devices",
    "assigned_time",
    "start_time",
    "end_time",
    "state",
    "attempt",
)
TASK_TAIL = ("reason", "exit_code")
NODE_COLUMNS = ("node_id", "labels", "devices", "joined", "lost", "drained")
# Events that end an attempt: a preempted attempt ends like a rescheduled one (back to the queue).
_ENDS = {
    "task.completed": "COMPLETED",
    "task.failed": "FAILED",
    "task.rescheduled": "RESCHEDULED",
    "task.preempted": "PREEMPTED",
}
_REQUEUED = ("task.rescheduled", "task.preempted")
_PAGE = 1000


@dataclass
class Recording:
    """What ``record`` wrote: the folder, and counts to report."""

    out_dir: Path
    tasks: int
    attempts: int
    nodes: int
    events: int
    policy: str
    resources: list[str] = field(default_factory=list)


def _when(stamp: str | None) -> datetime | None:
    return None if not stamp else datetime.fromisoformat(stamp)


def _column(resource: str) -> str:
    return RESOURCE_COLUMNS.get(resource, resource)


def _fetch_tasks(api: Api) -> list[dict[str, Any]]:
    """Every task the store holds, page by page in creation order."""
    tasks: list[dict[str, Any]] = []
    while True:
        page = api.get("/api/v1/tasks", offset=len(tasks), limit=_PAGE)
        tasks.extend(page)
        if len(page) < _PAGE:
            return tasks


def _attempts(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per task id, its attempts in order, each ``{attempt, node, devices, start, end, state, reason, exit_code}``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        kind, obj = event.get("type", ""), event.get("object", {})
        if not kind.startswith("task.") or "id" not in obj:
            continue
        rows = found.setdefault(obj["id"], [])
        stamp = _when(event.get("timestamp"))
        if kind == "task.assigned":
            rows.append({"attempt": obj.get("attempts", len(rows) + 1), "node": obj.get("node_id") or ""})
            rows[-1] |= {"devices": obj.get("devices", {}), "assigned": stamp, "state": "ASSIGNED"}
        elif rows and kind == "task.running":
            rows[-1] |= {"start": _when(obj.get("start_time")) or stamp, "state": "RUNNING"}
        elif kind in _ENDS:
            if not rows:  # failed before any placement (e.g. unschedulable)
                rows.append({"attempt": 0, "node": "", "devices": {}})
            end = _when(obj.get("end_time")) if kind not in _REQUEUED else None
            rows[-1] |= {"end": end or stamp, "state": _ENDS[kind], "reason": obj.get("reason") or ""}
            rows[-1]["exit_code"] = obj.get("exit_code") if kind not in _REQUEUED else None
    return found


def _node_times(events: list[dict[str, Any]]) -> dict[str, dict[str, datetime]]:
    """Per node id, the first ``joined`` and the last ``lost`` and ``drained`` times."""
    times: dict[str, dict[str, datetime]] = {}
    for event in events:
        kind, obj = event.get("type", ""), event.get("object", {})
        if kind.startswith("node.") and "id" in obj:
            what = kind.split(".", 1)[1]
            stamp = _when(event.get("timestamp"))
            if what in ("joined", "lost", "drained") and stamp is not None:
                mine = times.setdefault(obj["id"], {})
                if what != "joined" or what not in mine:
                    mine[what] = stamp
    return times


def _seconds(at: datetime | None, epoch: datetime) -> str:
    return "" if at is None else f"{(at - epoch).total_seconds():.6f}"


def _devices_text(devices: dict[str, list[int]]) -> str:
    """``{"gpu": [0, 3]}`` as ``gpu:0;gpu:3``."""
    return ";".join(f"{kind}:{index}" for kind in sorted(devices) for index in devices[kind])


def _task_rows(
    tasks: list[dict[str, Any]], attempts: dict[str, list[dict[str, Any]]], resources: list[str], epoch: datetime
) -> list[list[str]]:
    rows = []
    for task in tasks:
        submit = _seconds(_when(task["creation_time"]), epoch)
        asks = [f"{task['resources'].get(r, 0):g}" for r in resources]
        mine = attempts.get(task["id"]) or [{"attempt": 0, "node": "", "devices": {}, "state": task["state"]}]
        for a in mine:
            start, end = _seconds(a.get("start"), epoch), _seconds(a.get("end"), epoch)
            assigned = _seconds(a.get("assigned"), epoch)
            head = [task["id"], task["name"], submit, a["node"], _devices_text(a.get("devices", {})), assigned]
            head += [start, end]
            code = a.get("exit_code")
            tail = [a.get("reason", ""), "" if code is None else str(code)]
            rows.append([*head, a.get("state", task["state"]), str(a["attempt"]), *asks, *tail])
    return rows


def _node_rows(
    nodes: list[dict[str, Any]], times: dict[str, dict[str, datetime]], resources: list[str], epoch: datetime
) -> list[list[str]]:
    rows = []
    for node in sorted(nodes, key=lambda n: n["id"]):  # the master numbers its nodes by sorted id
        mine = times.get(node["id"], {})
        joined = mine.get("joined") or _when(node.get("registered_time"))
        labels = ";".join(f"{k}={v}" for k, v in sorted(node.get("labels", {}).items()))
        devices = ";".join(f"{k}={v}" for k, v in sorted(node.get("devices", {}).items()))
        when = [_seconds(joined, epoch), _seconds(mine.get("lost"), epoch), _seconds(mine.get("drained"), epoch)]
        capacity = [f"{node['capacity'].get(r, 0):g}" for r in resources]
        rows.append([node["id"], labels, devices, *when, *capacity])
    return rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def record(
    master_url: str,
    out_dir: str | Path,
    *,
    policy: str | None = None,
    policy_params: dict[str, Any] | None = None,
    quiet: float = 1.5,
) -> Recording:
    """Write ``tasks.csv``, ``nodes.csv`` and ``policy.json`` of the cluster behind ``master_url``.

    Args:
        master_url: The master's base URL (``http://127.0.0.1:8000``).
        out_dir: The folder, created if missing; the three files are overwritten.
        policy: The policy to record; default the one the master's ``/health`` names.
        policy_params: The policy's parameters (the master does not expose them).
        quiet: Seconds without an event that end the dump of the event stream.

    Raises:
        UsageError: the master cannot be reached or refuses a request (one line).
    """
    with Api(master_url, "record") as api:
        health = api.get("/health")
        tasks = _fetch_tasks(api)
        nodes = api.get("/api/v1/nodes")
        events = list(api.events(since=0, quiet=quiet))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # only once the master answered
    submits = [_when(t["creation_time"]) for t in tasks]
    epoch = min((s for s in submits if s is not None), default=None) or datetime.now().astimezone()
    resources = sorted({r for item in [*tasks, *nodes] for r in item.get("resources", item.get("capacity", {}))})
    resources = [r for r in RESOURCE_COLUMNS if r in resources] + [r for r in resources if r not in RESOURCE_COLUMNS]
    attempts = _attempts(events)
    task_rows = _task_rows(tasks, attempts, resources, epoch)
    columns = [_column(r) for r in resources]
    _write_csv(out / "tasks.csv", [*TASK_COLUMNS, *columns, *TASK_TAIL], task_rows)
    node_rows = _node_rows(nodes, _node_times(events), resources, epoch)
    _write_csv(out / "nodes.csv", [*NODE_COLUMNS, *columns], node_rows)
    chosen = policy or str(health.get("policy", ""))
    meta = {
        "policy": chosen,
        "params": dict(policy_params or {}),
        "policy_from": "argument" if policy else "/health",
        "master": master_url,
        "epoch": epoch.isoformat(),
        "resources": dict(zip(resources, columns, strict=True)),
    }
    (out / "policy.json").write_text(json.dumps(meta, indent=2) + "\n")
    return Recording(out, len(tasks), len(task_rows), len(nodes), len(events), chosen, resources)


def add_record_parser(sub: Any) -> None:
    """The ``record`` subcommand on the subparsers ``sub``."""
    parser = sub.add_parser("record", help="write the cluster's history as a recording the simulator replays")
    parser.add_argument("--master", default=argparse.SUPPRESS, help="the master's URL (ORCH_MASTER)")
    parser.add_argument("--out", type=Path, required=True, help="folder for tasks.csv, nodes.csv, policy.json")
    parser.add_argument("--policy", help="the policy to record (default: the one the master's /health names)")
    parser.add_argument(
        "--policy-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the master's policy (repeatable): the API does not expose them",
    )
    parser.add_argument("--quiet", type=float, default=1.5, help="seconds without an event that end the dump")


def run_record(args: argparse.Namespace) -> int:
    """``python -m orchlive record``: prints one line saying what was written."""
    from orchsim.policy_params import PolicyParamError, merge_params, parse_assignment

    try:
        params = merge_params(*(parse_assignment(a) for a in args.policy_param))
    except PolicyParamError as err:
        raise UsageError(f"--policy-param: {err}") from None
    try:
        done = record(args.master, args.out, policy=args.policy, policy_params=params, quiet=args.quiet)
    except OSError as err:
        raise UsageError(f"--out {args.out}: cannot write ({err.strerror})") from None
    print(
        f"recorded {done.tasks} tasks ({done.attempts} attempt rows), {done.nodes} nodes, "
        f"{done.events} events, policy {done.policy or '?'} -> {done.out_dir}"
    )
    return 0
