"""Record what a live cluster did, for the simulator to replay (``python -m orchlive record``).

The recording is three files in one folder, read back by ``orchsim.traces.orchlive``:

* ``tasks.csv``: one row per task *attempt* (a placement and what became of it), from the
  event stream (``task.assigned`` opens an attempt; ``task.running`` starts it;
  ``task.completed``, ``task.failed`` or ``task.rescheduled`` ends it). A task never placed
  has one row with attempt 0 and no node.
* ``nodes.csv``: one row per node, from ``/api/v1/nodes`` and the ``node.joined``,
  ``node.lost`` and ``node.drained`` events; ``node_events.csv`` every one of those events.
* ``policy.json``: the master's policy, its parameters, seed and queue discipline (what
  ``/health`` says, unless the caller gives them), and the workers' lease (``--lease-ttl``).

``record`` dumps what the store still holds (the event window); ``follow`` (``--follow``)
records continuously and resumes after a restart (``events.jsonl``, ``cursor.json``).
``--swf FILE`` also writes the recording as an SWF log (``orchlive.record_swf``).

Times are seconds from the first task's submission (a node that joined before it has a
negative ``joined``). Requests use the openb column names and units: ``cpu_milli``
(millicores), ``memory_mib`` (MiB), ``gpu_milli`` (milli-GPU); any other resource keeps
its name. The event stream never ends: the history the store holds arrives at once, and
the dump stops after ``quiet`` seconds without an event (as ``orchlive events`` does).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchlive.cli.usage import UsageError
from orchlive.client.http import Api
from orchlive.record_rows import (
    attempts,
    column,
    merge_nodes,
    merge_tasks,
    node_event_rows,
    node_rows,
    node_times,
    resource_order,
    task_rows,
    when,
    write_csv,
)
from orchsim.recording_format import (
    CURSOR_FILE,
    FORMAT,
    NODE_COLUMNS,
    NODE_EVENT_COLUMNS,
    NODE_EVENTS_FILE,
    NODE_OPTIONAL,
    NODES_FILE,
    POLICY_FILE,
    TASK_COLUMNS,
    TASK_EVENTS,
    TASK_OPTIONAL,
    TASK_TAIL,
    TASKS_FILE,
)

__all__ = ["EVENTS_FILE", "Recording", "add_record_parser", "follow", "record", "run_record", "write_recording"]

#: ``--follow`` keeps every task and node event it read here, one JSON object a line.
EVENTS_FILE = "events.jsonl"
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


@dataclass
class _Snapshot:
    """What the master said: its ``/health``, the tasks and nodes the store holds, and events."""

    health: dict[str, Any]
    tasks: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    events: list[dict[str, Any]]


def _policy_meta(health: dict[str, Any], policy: str | None, params: dict[str, Any] | None) -> dict[str, Any]:
    """``policy.json``'s policy and parameters (the caller's, else ``/health``'s), and how the master scheduled.

    Seed, queue discipline, preemption, grace, filters, node sampling and plugins: a replay
    schedules as the live master did (``orchsim.replay_cli``).
    """
    scheduler = health.get("scheduler") or {}
    told = dict(params or {})
    return {
        "policy": policy or str(health.get("policy", "")),
        "params": told or dict(scheduler.get("params") or {}),
        "policy_from": "argument" if policy else "/health",
        "seed": scheduler.get("seed"),
        "queue": scheduler.get("queue"),
        "backfill_window": scheduler.get("backfill_window"),
        "preemption": scheduler.get("preemption"),
        "lost_grace": scheduler.get("lost_grace"),
        "filters": scheduler.get("filters") or {},
        "sampling": scheduler.get("sampling"),
        "plugins": scheduler.get("plugins") or [],
    }


def write_recording(
    snap: _Snapshot, out: Path, *, policy: str | None, params: dict[str, Any] | None, master: str, lease_ttl: float
) -> Recording:
    """Write the three files of a recording from one snapshot of the master (see the module)."""
    events = [e for e in snap.events if str(e.get("type", "")).startswith(("task.", "node."))]
    tasks, nodes = merge_tasks(snap.tasks, events), merge_nodes(snap.nodes, events)
    submits = [when(t["creation_time"]) for t in tasks]
    epoch = min((s for s in submits if s is not None), default=None) or datetime.now().astimezone()
    resources = resource_order(tasks, nodes)
    columns = [column(r) for r in resources]
    rows = task_rows(tasks, attempts(events), resources, epoch)
    write_csv(out / TASKS_FILE, [*TASK_COLUMNS, *columns, *TASK_TAIL, *TASK_OPTIONAL, *TASK_EVENTS], rows)
    write_csv(
        out / NODES_FILE,
        [*NODE_COLUMNS, *NODE_OPTIONAL, *columns],
        node_rows(nodes, node_times(events), resources, epoch),
    )
    write_csv(out / NODE_EVENTS_FILE, list(NODE_EVENT_COLUMNS), node_event_rows(events, epoch))
    meta = _policy_meta(snap.health, policy, params)
    meta |= {
        "format": FORMAT,
        "master": master,
        "epoch": epoch.isoformat(),
        "lease_ttl": lease_ttl,
        "resources": dict(zip(resources, columns, strict=True)),
    }
    (out / POLICY_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return Recording(out, len(tasks), len(rows), len(nodes), len(snap.events), meta["policy"], resources)


def _snapshot(api: Api, events: list[dict[str, Any]]) -> _Snapshot:
    # Every task the store holds, page by page in creation order.
    return _Snapshot(api.get("/health"), api.get_all("/api/v1/tasks", _PAGE), api.get("/api/v1/nodes"), events)


def record(
    master_url: str,
    out_dir: str | Path,
    *,
    policy: str | None = None,
    policy_params: dict[str, Any] | None = None,
    quiet: float = 1.5,
    lease_ttl: float = 5.0,
) -> Recording:
    """Write ``tasks.csv``, ``nodes.csv`` and ``policy.json`` of the cluster behind ``master_url``.

    Args:
        master_url: The master's base URL (``http://127.0.0.1:8000``).
        out_dir: The folder, created if missing; the three files are overwritten.
        policy: The policy to record; default the one the master's ``/health`` names.
        policy_params: The policy's parameters; default those ``/health`` shows.
        quiet: Seconds without an event that end the dump of the event stream.
        lease_ttl: The workers' heartbeat lease (s): the replay's failure timeout.

    Raises:
        UsageError: the master cannot be reached or refuses a request (one line).
    """
    with Api(master_url, "record") as api:
        snap = _snapshot(api, [])
        snap.events = list(api.events(since=0, quiet=quiet))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # only once the master answered
    return write_recording(snap, out, policy=policy, params=policy_params, master=master_url, lease_ttl=lease_ttl)


def _resume(out: Path) -> tuple[list[dict[str, Any]], int]:
    """The events a previous ``--follow`` kept in ``out`` (by id, no duplicates), and the id to resume after.

    A last line cut short (the recorder was killed while writing it) is dropped: its event
    comes again, since the cursor is written after the events.
    """
    path, found = out / EVENTS_FILE, {}
    lines = path.read_text().splitlines() if path.exists() else []
    for n, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
            found[int(event["id"])] = event
        except (ValueError, KeyError, TypeError):
            if n < len(lines):
                raise UsageError(f"{path}:{n}: not an event of the stream (a JSON object with an id)") from None
    cursor = max(found, default=0)
    try:
        cursor = max(cursor, int(json.loads((out / CURSOR_FILE).read_text())["last_event_id"]))
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError):
        raise UsageError(f'{out / CURSOR_FILE}: expected {{"last_event_id": N}}') from None
    return [found[i] for i in sorted(found)], cursor


def follow(
    master_url: str,
    out_dir: str | Path,
    *,
    policy: str | None = None,
    policy_params: dict[str, Any] | None = None,
    flush: float = 5.0,
    rounds: int | None = None,
    lease_ttl: float = 5.0,
) -> Recording | None:
    """Record continuously: read the event stream as it comes, rewrite the recording after each lull.

    The task and node events read are kept in ``events.jsonl`` and the last event id in
    ``cursor.json``, so a recorder started again on the same folder resumes after it
    (``?since=``) and keeps no event twice; tasks and nodes the store has since forgotten
    stay in the recording, from the last view their events carried.

    Args:
        master_url: The master's base URL.
        out_dir: The folder; a previous ``follow``'s folder is resumed.
        policy: As ``record``'s.
        policy_params: As ``record``'s.
        flush: Seconds without an event after which the files are rewritten.
        rounds: Stop after this many rewrites (None: until interrupted).
        lease_ttl: As ``record``'s.

    Returns:
        The last rewrite's counts (None if ``rounds`` is 0).
    """
    out = Path(out_dir)
    events, cursor = _resume(out)
    done: Recording | None = None
    given = {"policy": policy, "params": policy_params, "master": master_url, "lease_ttl": lease_ttl}
    with Api(master_url, "record") as api:
        api.get("/health")  # unreachable: one line, and no folder made
        out.mkdir(parents=True, exist_ok=True)
        while rounds is None or rounds > 0:
            new = [e for e in api.events(since=cursor, quiet=flush) if int(e.get("id", 0)) > cursor]
            kept = [e for e in new if str(e.get("type", "")).startswith(("task.", "node."))]
            with (out / EVENTS_FILE).open("a") as f:
                f.writelines(json.dumps(e) + "\n" for e in kept)
            events += kept
            cursor = max([cursor, *(int(e["id"]) for e in new)])
            (out / CURSOR_FILE).write_text(json.dumps({"last_event_id": cursor}) + "\n")
            snap = _snapshot(api, events)
            done = write_recording(snap, out, **given)
            rounds = None if rounds is None else rounds - 1
    return done


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
        help="a parameter of the master's policy (repeatable; default: those /health shows)",
    )
    parser.add_argument("--quiet", type=float, default=1.5, help="seconds without an event that end the dump")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="record continuously, resuming after the last event a previous --follow kept in --out",
    )
    parser.add_argument("--flush", type=float, default=5.0, help="--follow: seconds without an event between rewrites")
    parser.add_argument("--rounds", type=int, help="--follow: stop after this many rewrites (default: until Ctrl-C)")
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=os.environ.get("ORCH_LEASE_TTL", "5"),  # a string: argparse converts it, and names a bad one
        help="the workers' heartbeat lease, seconds (ORCH_LEASE_TTL, 5): the replay's failure timeout",
    )
    parser.add_argument("--swf", type=Path, metavar="FILE", help="also write the recording as an SWF log")


def run_record(args: argparse.Namespace) -> int:
    """``python -m orchlive record``: prints one line saying what was written."""
    from orchsim.policy_params import PolicyParamError, merge_params, parse_assignment

    try:
        params = merge_params(*(parse_assignment(a) for a in args.policy_param))
    except PolicyParamError as err:
        raise UsageError(f"--policy-param: {err}") from None
    given = {"policy": args.policy, "policy_params": params, "lease_ttl": args.lease_ttl}
    try:
        if args.follow:
            try:
                done = follow(args.master, args.out, flush=args.flush, rounds=args.rounds, **given)
            except KeyboardInterrupt:
                print(f"stopped; {args.out} holds the recording up to the last rewrite")
                return 0
        else:
            done = record(args.master, args.out, quiet=args.quiet, **given)
        if done is not None and args.swf is not None:
            from orchlive.record_swf import write_swf

            write_swf(args.out, args.swf)
    except OSError as err:
        raise UsageError(f"--out {args.out}: cannot write ({err.strerror})") from None
    if done is not None:
        print(
            f"recorded {done.tasks} tasks ({done.attempts} attempt rows), {done.nodes} nodes, "
            f"{done.events} events, policy {done.policy or '?'} -> {done.out_dir}"
        )
    return 0
