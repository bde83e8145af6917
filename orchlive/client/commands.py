"""The client subcommands (``CLIENT_COMMANDS``): ``submit``, ``tasks``, ``nodes``, ``logs``, ``describe``, ``events``.

And ``dag`` (a DAG's state), ``delete``, ``drain``.

Each takes ``--master URL`` after the subcommand as well as before it (``python -m orchlive
--master URL tasks``); without either, ``ORCH_MASTER``, else the local default. Listing
commands take ``-o table|wide|json|yaml`` as kubectl does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any

from orchlive.cli.flags import resource_flags, resources_of
from orchlive.cli.usage import UsageError, seconds
from orchlive.client.http import Api
from orchlive.client.output import dump
from orchlive.client.views import dag_view, describe_node, describe_task, event_line, node_table, task_table
from orchlive.config import parse_labels

__all__ = ["CLIENT_COMMANDS", "add_client_parsers", "run_client"]

CLIENT_COMMANDS = (
    "submit",
    "tasks",
    "nodes",
    "logs",
    "describe",
    "events",
    "dag",
    "delete",
    "drain",
    "uncordon",
    "remove-node",
)
FORMATS_DAG = ("table", "json", "yaml")
TERMINAL = ("COMPLETED", "FAILED", "SKIPPED")
# The recorded events arrive at once; this long without one ends a listing (not a follow).
QUIET_SECONDS = 1.5
LISTING_PAGE = 10_000  # the API's largest page


def _client_parser(sub: Any, name: str, help_text: str, formats: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    # SUPPRESS: given here it wins, absent it leaves the value given before the subcommand.
    parser.add_argument("--master", default=argparse.SUPPRESS, help="the master's URL (ORCH_MASTER)")
    if formats:
        parser.add_argument("-o", "--output", choices=formats, default=formats[0], help="output format")
    return parser


def add_client_parsers(sub: Any) -> None:
    """Every client subcommand, on the subparsers ``sub``."""
    submit = _client_parser(sub, "submit", "submit a task; prints its id", ("id", "json", "yaml"))
    submit.add_argument("--name", required=True)
    submit.add_argument("--image", default=None, help="container image (docker workers)")
    resource_flags(submit, "100", "64", "the task asks for")
    submit.add_argument("--timeout", type=seconds, help="seconds before the worker kills it")
    submit.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="(repeatable)")
    submit.add_argument("--node-selector", default="", metavar="k=v,k=v", help="only nodes with these labels")
    submit.add_argument("--max-attempts", type=int, help="placements before it fails for good")
    submit.add_argument("--priority", type=int, help="higher goes first and may preempt lower (default 0)")
    submit.add_argument("--replicas", type=int, help="a gang: this many copies, placed all at once or none")
    submit.add_argument("--min-replicas", type=int, help="a gang may start with at least this many")
    submit.add_argument("--after", default="", metavar="ID,NAME", help="wait for these tasks (ids or names)")
    submit.add_argument("--on", choices=["success", "completion"], help="wait for them to succeed (default) or end")
    submit.add_argument("--if-parent-fails", choices=["fail", "skip"], help="when a parent fails (default fail)")
    submit.add_argument("argv", nargs=argparse.REMAINDER, help="command and arguments, after --")
    tasks = _client_parser(sub, "tasks", "list tasks", ("table", "wide", "json", "yaml"))
    tasks.add_argument("--state", type=str.upper, help="only tasks in this state (PENDING, RUNNING...)")
    tasks.add_argument(
        "--queue", action="store_true", help="the PENDING tasks, in the order the master tries them (what runs next)"
    )
    _client_parser(sub, "nodes", "list nodes", ("table", "wide", "json", "yaml"))
    logs = _client_parser(sub, "logs", "a task's output (kept when it ends)")
    logs.add_argument("id")
    logs.add_argument("-f", "--follow", action="store_true", help="wait until the task ends")
    describe = _client_parser(sub, "describe", "one task or node, with its events")
    describe.add_argument("kind", choices=["task", "node"])
    describe.add_argument("id")
    events = _client_parser(sub, "events", "the recorded events, one per line", ("table", "json", "yaml"))
    events.add_argument("-f", "--follow", action="store_true", help="keep following new events")
    events.add_argument("--since", type=int, default=0, metavar="ID", help="only events after this event id")
    dag = _client_parser(sub, "dag", "a DAG's state and its tasks (the id of a DAG or of its root)", FORMATS_DAG)
    dag.add_argument("id")
    delete = _client_parser(sub, "delete", "delete a task, its gang and the tasks waiting for it (running ones stop)")
    delete.add_argument("id")
    drain = _client_parser(sub, "drain", "cordon a node: no new tasks")
    drain.add_argument("id")
    drain.add_argument("--evict", action="store_true", help="also send its tasks elsewhere")
    _client_parser(sub, "uncordon", "let a drained node take new tasks again").add_argument("id")
    _client_parser(sub, "remove-node", "forget a node whose worker is gone (NOT_READY, no tasks)").add_argument("id")


def _submit(api: Api, args: argparse.Namespace) -> str:
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    body: dict[str, Any] = {"name": args.name, "command": command, "resources": resources_of(args)}
    if args.image is not None:
        body["image"] = args.image
    if args.timeout is not None:
        body["timeout"] = args.timeout
    if args.max_attempts is not None:
        body["max_attempts"] = args.max_attempts
    for field in ("priority", "replicas", "min_replicas", "on", "if_parent_fails"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    if args.after:
        body["after"] = list(dict.fromkeys(ref.strip() for ref in args.after.split(",") if ref.strip()))
    elif args.on is not None or args.if_parent_fails is not None:
        flag = "--on" if args.on is not None else "--if-parent-fails"
        raise UsageError(f"submit: {flag} says how to wait for parents: give them with --after ID,NAME")
    try:
        body["env"] = dict(_pair("--env", item) for item in args.env)
    except ValueError as err:
        raise UsageError(f"submit: {err}") from None
    try:
        body["node_selector"] = parse_labels(args.node_selector)
    except ValueError as err:
        raise UsageError(f"submit: --node-selector: {err}") from None
    task = api.submit("/api/v1/tasks", body)
    _warn_if_never_fits(api, body)
    return task["id"] if args.output == "id" else dump(task, args.output)


def _warn_if_never_fits(api: Api, body: dict[str, Any]) -> None:
    """A warning on stderr if no registered node could hold the task even when empty.

    The task is accepted all the same (a larger worker may join; Kubernetes accepts such a
    pod too) and stays PENDING, which says nothing about why: the core's own words do
    (``explain_never``, as ``describe`` shows once the master has looked). Built-in filters
    only: the master's extra filters may refuse more. No worker yet: that, in one line.
    """
    nodes = api.get("/api/v1/nodes")
    if not nodes:
        print("warning: no worker has registered yet; it stays PENDING until one joins", file=sys.stderr)
        return
    import numpy as np

    from orchsim.scheduling import NodeMatrix, could_ever_fit, explain_never

    names = list(dict.fromkeys([*(r for n in nodes for r in n["capacity"]), *body["resources"]]))
    capacities = {r: [float(n["capacity"].get(r, 0)) for n in nodes] for r in names}
    matrix = NodeMatrix.from_capacities(capacities, ids=[n["id"] for n in nodes], labels=[n["labels"] for n in nodes])
    request, selector = matrix.request_vector(body["resources"]), body.get("node_selector") or None
    if not could_ever_fit(matrix, request, np.ones(len(nodes), dtype=bool), selector):
        reason = explain_never(matrix, request, selector)
        print(f"warning: {reason}; it stays PENDING until a node that can hold it joins", file=sys.stderr)


def _pair(flag: str, item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
    return name, value


def _listing(api: Api, args: argparse.Namespace) -> str:
    state = getattr(args, "state", None)
    if getattr(args, "queue", False):
        items = queue_order(api.get_all("/api/v1/tasks", LISTING_PAGE, state="PENDING"))
    else:
        items = api.get(f"/api/v1/{args.command}", **({"state": state} if state else {}))
    if args.output in ("json", "yaml"):
        return dump(items, args.output)
    view = task_table if args.command == "tasks" else node_table
    return view(items, wide=args.output == "wide")


def queue_order(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pending tasks as the master tries them: priority, then ``queued_since`` or creation, then id.

    The master's own key (``orchlive.cache.queue_key``). Tasks waiting for their parents,
    or set aside as fitting no node, are listed too, in their place; their reason says why.
    """

    def key(task: dict[str, Any]) -> tuple[int, datetime, str]:
        joined = datetime.fromisoformat(task.get("queued_since") or task["creation_time"])
        return -task.get("priority", 0), joined, task["id"]

    return sorted(tasks, key=key)


def _logs(api: Api, args: argparse.Namespace) -> str:
    task = api.get(f"/api/v1/tasks/{args.id}")
    while args.follow and task["state"] not in TERMINAL:
        time.sleep(0.5)
        task = api.get(f"/api/v1/tasks/{args.id}")
    if task["state"] not in TERMINAL:
        print(f"logs: task {args.id} is {task['state']}: its output is kept when it ends (-f waits)", file=sys.stderr)
    return api.call("GET", f"/api/v1/tasks/{args.id}/logs").text.rstrip("\n")


def _describe(api: Api, args: argparse.Namespace) -> str:
    path = "tasks" if args.kind == "task" else "nodes"
    item = api.get(f"/api/v1/{path}/{args.id}")
    events = [
        e
        for e in api.events(since=0, quiet=QUIET_SECONDS)
        if e.get("type", "").startswith(f"{args.kind}.") and (e.get("object") or {}).get("id") == args.id
    ]
    return describe_task(item, events) if args.kind == "task" else describe_node(item, events)


def _events(api: Api, args: argparse.Namespace) -> str:
    for event in api.events(since=args.since, quiet=None if args.follow else QUIET_SECONDS):
        if args.output == "json":
            line = json.dumps(event)  # one object per line (JSON Lines)
        elif args.output == "yaml":
            line = "---\n" + dump(event, "yaml")
        else:
            line = event_line(event)
        print(line, flush=True)
    return ""


def _dag(api: Api, args: argparse.Namespace) -> str:
    found = api.get(f"/api/v1/dags/{args.id}")
    return dag_view(found) if args.output == "table" else dump(found, args.output)


def _delete(api: Api, args: argparse.Namespace) -> str:
    api.call("DELETE", f"/api/v1/tasks/{args.id}")
    return f"task/{args.id} deleted"


def _drain(api: Api, args: argparse.Namespace) -> str:
    node = api.call("POST", f"/api/v1/nodes/{args.id}/drain", params={"evict": str(args.evict).lower()}).json()
    return f"node/{node['id']} drained ({node['state']}{', tasks evicted' if args.evict else ''})"


def _uncordon(api: Api, args: argparse.Namespace) -> str:
    node = api.call("POST", f"/api/v1/nodes/{args.id}/uncordon").json()
    return f"node/{node['id']} uncordoned ({node['state']})"


def _remove_node(api: Api, args: argparse.Namespace) -> str:
    api.call("DELETE", f"/api/v1/nodes/{args.id}")
    return f"node/{args.id} removed"


_RUN = {
    "submit": _submit,
    "tasks": _listing,
    "nodes": _listing,
    "logs": _logs,
    "describe": _describe,
    "events": _events,
    "dag": _dag,
    "delete": _delete,
    "drain": _drain,
    "uncordon": _uncordon,
    "remove-node": _remove_node,
}


def run_client(args: argparse.Namespace) -> int:
    """Run one client subcommand; what it shows goes to stdout, a failure is a ``UsageError``."""
    with Api(args.master, args.command) as api:
        text = _RUN[args.command](api, args)
    if text:
        print(text)
    return 0
