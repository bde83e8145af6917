"""``python -m orchlive master | worker | dev | submit | tasks | nodes | events``.

Flags override ``ORCH_*`` environment variables (see ``orchlive.config``). Mistakes
(an unknown policy, a malformed label, an unreachable master) exit with status 2 and
one line naming the problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from orchlive.config import Settings, machine_capacity, parse_labels, parse_resources
from orchsim.plugins import add_plugin_argument

__all__ = ["main"]


class UsageError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def _common(parser: argparse.ArgumentParser, settings: Settings) -> None:
    parser.add_argument("--etcd", default=settings.etcd, help="etcd endpoint host:port (ORCH_ETCD)")
    parser.add_argument("--prefix", default=settings.prefix, help="key prefix of the cluster (ORCH_PREFIX)")


def _policy_flags(parser: argparse.ArgumentParser, settings: Settings) -> None:
    parser.add_argument("--policy", default=settings.policy, help="placement policy (ORCH_POLICY)")
    add_plugin_argument(
        parser,
        default=[p.strip() for p in settings.plugins.split(",") if p.strip()],
        where=" (ORCH_PLUGINS, comma-separated)",
    )
    parser.add_argument(
        "--policy-params",
        default=settings.policy_params,
        metavar="JSON|YAML|@FILE",
        help="policy parameters as a mapping (ORCH_POLICY_PARAMS)",
    )
    parser.add_argument(
        "--policy-param",
        action="append",
        default=[],
        dest="policy_param",
        metavar="NAME=VALUE",
        help="one policy parameter, e.g. weights.cpu=0.5 (repeatable; wins over --policy-params)",
    )
    parser.add_argument(
        "--queue",
        default=settings.queue,
        choices=["fifo", "backfill"],
        help="queue discipline, as in scenario files (ORCH_QUEUE; default fifo, the simulator's)",
    )
    parser.add_argument(
        "--backfill-window",
        type=int,
        default=settings.backfill_window,
        metavar="N",
        help="tasks a backfill pass looks at (ORCH_BACKFILL_WINDOW; 100)",
    )
    parser.add_argument(
        "--filters",
        default=settings.filters,
        metavar="JSON|YAML|@FILE",
        help="filters beyond the built-ins, with parameters: '{max_tasks_per_node: {limit: 8}}' (ORCH_FILTERS)",
    )


def _resource_flags(parser: argparse.ArgumentParser, cpu: str | None, memory: str | None, what: str) -> None:
    """``--cpu``, ``--memory`` and the repeatable ``--resource NAME=AMOUNT`` (read by ``_resources``)."""
    parser.add_argument("--cpu", default=cpu, metavar="MILLICORES", help=f"{what} cpu (default: {cpu})")
    parser.add_argument("--memory", default=memory, metavar="MIB", help=f"{what} memory (default: {memory})")
    parser.add_argument(
        "--resource",
        action="append",
        default=[],
        dest="resources",
        metavar="NAME=AMOUNT",
        help=f"{what} any resource, e.g. gpu=4000 (milli-GPU) or disk=100000 (repeatable; wins over --cpu/--memory)",
    )


def _parsed(flag: str, items: str | Sequence[str]) -> dict[str, int | float]:
    try:
        return parse_resources(items)
    except ValueError as err:
        raise UsageError(f"{flag}: {err}") from None


def _resources(args: argparse.Namespace, base: dict[str, int | float] | None = None) -> dict[str, int | float]:
    """``base``, then ``--cpu``/``--memory``, then every ``--resource``, each winning over the one before.

    Raises:
        UsageError: naming the flag, for a malformed name or amount.
    """
    amounts = dict(base or {})
    for name in ("cpu", "memory"):  # the two shortcuts: --cpu N is --resource cpu=N
        value = getattr(args, name)
        if value is not None:
            amounts |= _parsed(f"--{name}", [f"{name}={value}"])
    return amounts | _parsed("--resource", args.resources)


def _filter_config(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """The ``--filters`` mapping, checked against the registry (after the plugins loaded).

    Raises:
        UsageError: naming the flag, for malformed text, an unknown filter or parameter.
    """
    from orchsim.policy_params import PolicyParamError, parse_params_text
    from orchsim.scheduling import FILTERS, UnknownFilterError

    if args.backfill_window < 1:
        raise UsageError(f"--backfill-window: must be at least 1, got {args.backfill_window}")
    try:
        chosen = parse_params_text(args.filters, what="--filters")
        filters = {name: dict(params or {}) for name, params in chosen.items()}
        FILTERS.active(filters)
    except PolicyParamError as err:
        raise UsageError(str(err)) from None
    except (UnknownFilterError, TypeError, AttributeError, ValueError) as err:
        raise UsageError(f"--filters: {err}") from None
    return filters


def _policy_config(args: argparse.Namespace) -> dict[str, object]:
    """Load the plugins, check the policy and its parameters; the parameters, merged.

    Raises:
        UsageError: naming the flag, for a plugin that cannot load, an unknown policy or
            parameters it does not take.
    """
    from orchsim.plugins import PluginError, load_plugins
    from orchsim.policy_params import (
        PolicyParamError,
        check_policy_params,
        merge_params,
        parse_assignment,
        parse_params_text,
    )
    from orchsim.scheduling import POLICIES, UnknownPolicyError

    try:
        load_plugins(args.plugins)
    except PluginError as err:
        raise UsageError(f"--plugin: {err}") from None
    try:
        POLICIES.spec(args.policy)
    except UnknownPolicyError as err:
        raise UsageError(f"--policy: {err}") from None
    try:
        layers = [parse_params_text(args.policy_params)] + [parse_assignment(a) for a in args.policy_param]
        params = merge_params(*layers)
        check_policy_params(args.policy, params)
    except PolicyParamError as err:
        raise UsageError(str(err)) from None
    return params


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchlive", description="The live orchestrator.")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    master = sub.add_parser("master", help="API server and scheduling loop")
    _common(master, settings)
    master.add_argument("--host", default=settings.host)
    master.add_argument("--port", type=int, default=settings.port)
    _policy_flags(master, settings)
    master.add_argument("--seed", type=int, default=settings.seed)
    master.add_argument("--leader-ttl", type=int, default=settings.leader_ttl, help="leader lease, seconds")
    protect = "/health and /metrics need the token (ORCH_PROTECT_SYSTEM)"
    master.add_argument("--protect-system", action="store_true", default=settings.protect_system, help=protect)

    worker = sub.add_parser("worker", help="run tasks on this machine")
    _common(worker, settings)
    worker.add_argument("--name", default=settings.name, help="node id (default: the host name)")
    worker.add_argument("--runtime", default=settings.runtime, choices=["process", "docker"])
    _resource_flags(worker, None, None, "offer this much")
    worker.add_argument("--labels", default=settings.labels, help="k=v,k=v")
    worker.add_argument("--network", default=settings.network, choices=["none", "host"], help="container network")
    worker.add_argument("--lease-ttl", type=int, default=settings.lease_ttl)
    worker.add_argument("--data-dir", type=Path, default=settings.data_dir)

    dev = sub.add_parser("dev", help="a local cluster: etcd, a master and N process workers")
    dev.add_argument("--workers", type=int, default=3)
    dev.add_argument("--port", type=int, default=settings.port)
    _policy_flags(dev, settings)
    _resource_flags(dev, "4000", "8192", "every worker offers this much")

    url = f"http://{settings.host}:{settings.port}"
    submit = sub.add_parser("submit", help="submit a task")
    submit.add_argument("--master", default=url)
    submit.add_argument("--name", required=True)
    submit.add_argument("--image", default="alpine")
    _resource_flags(submit, "100", "64", "the task asks for")
    submit.add_argument("--timeout", type=float)
    submit.add_argument("argv", nargs=argparse.REMAINDER, help="command and arguments, after --")
    for name, help_text in (("tasks", "list tasks"), ("nodes", "list nodes"), ("events", "follow the event stream")):
        client = sub.add_parser(name, help=help_text)
        client.add_argument("--master", default=url)
    return parser


# ---------------------------------------------------------------------- servers
def run_master(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from orchlive.api import create_app
    from orchlive.master import Master
    from orchlive.store import Store

    params = _policy_config(args)
    filters = _filter_config(args)
    store = Store(args.etcd, args.prefix)
    master = Master(
        store,
        args.policy,
        seed=args.seed,
        params=params,
        queue=args.queue,
        backfill_window=args.backfill_window,
        filters=filters,
        candidate=settings.master_id,
        leader_ttl=args.leader_ttl,
    )
    app = create_app(store, master, api_token=settings.api_token, protect_system=args.protect_system)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _worker_capacity(args: argparse.Namespace, settings: Settings) -> dict[str, int | float]:
    """This machine's cpu and memory, then ORCH_CPU/ORCH_MEMORY, ORCH_RESOURCES, and the flags, in that order."""
    cpu, memory = machine_capacity()
    base: dict[str, int | float] = {
        "cpu": settings.cpu if settings.cpu is not None else cpu,
        "memory": settings.memory if settings.memory is not None else memory,
    }
    return _resources(args, base | _parsed("ORCH_RESOURCES", settings.resources))


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from orchlive.models import Resources
    from orchlive.runtime import TaskStartError, make_runtime
    from orchlive.store import Store
    from orchlive.worker import Worker

    try:
        labels = parse_labels(args.labels)
    except ValueError as err:
        raise UsageError(f"--labels: {err}") from None
    capacity = Resources.model_validate(_worker_capacity(args, settings))
    try:
        options = {"node_id": args.name, "network": args.network} if args.runtime == "docker" else {}
        runtime = make_runtime(args.runtime, **options)
    except (TaskStartError, ValueError) as err:
        raise UsageError(f"--runtime {args.runtime}: {err}") from None
    worker = Worker(
        Store(args.etcd, args.prefix),
        runtime,
        node_id=args.name,
        capacity=capacity,
        labels=labels,
        lease_ttl=args.lease_ttl,
        data_dir=args.data_dir / args.name,
        address=socket.gethostname(),
        log_tail_bytes=settings.log_tail_bytes,
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = asyncio.create_task(worker.run())
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
        await worker.shutdown()
        await runtime.close()

    asyncio.run(serve())
    return 0


def run_dev(args: argparse.Namespace) -> int:
    import json as json_module

    from orchlive.dev import DevCluster
    from orchsim.plugins import is_path

    params = _policy_config(args)  # refused here, before anything starts
    filters = _filter_config(args)
    resources = _resources(args)
    # The master child gets absolute plugin paths, whatever folder it ends up running in.
    plugins = [str(Path(p).resolve()) if is_path(p) else p for p in args.plugins]
    master_args = [a for p in plugins for a in ("--plugin", p)]
    if params:
        master_args += ["--policy-params", json_module.dumps(params)]
    master_args += ["--queue", args.queue, "--backfill-window", str(args.backfill_window)]
    if filters:
        master_args += ["--filters", json_module.dumps(filters)]
    with DevCluster(
        workers=args.workers,
        port=args.port,
        policy=args.policy,
        cpu=int(resources.pop("cpu")),
        memory=int(resources.pop("memory")),
        resources=resources,
        master_args=master_args,
    ) as dev:
        print(
            f"orchlive dev cluster: API {dev.url}  (etcd {dev.etcd_endpoint}, {args.workers} workers); Ctrl-C stops it"
        )
        dev.wait()
    return 0


# ---------------------------------------------------------------------- client
def _client(master: str):  # type: ignore[no-untyped-def]
    import httpx

    return httpx.Client(base_url=master, timeout=10.0, headers=_auth_headers())


def _auth_headers() -> dict[str, str]:
    token = Settings().api_token
    return {"Authorization": f"Bearer {token}"} if token else {}


def run_client(args: argparse.Namespace) -> int:
    import httpx

    resources = _resources(args) if args.command == "submit" else {}
    try:
        with _client(args.master) as http:
            if args.command == "submit":
                command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
                body = {
                    "name": args.name,
                    "image": args.image,
                    "command": command,
                    "resources": resources,
                }
                if args.timeout is not None:
                    body["timeout"] = args.timeout
                response = http.post("/api/v1/tasks", json=body)
            elif args.command in ("tasks", "nodes"):
                response = http.get(f"/api/v1/{args.command}")
            else:
                with http.stream("GET", "/api/v1/events", timeout=None) as stream:
                    for line in stream.iter_lines():
                        if line.startswith("data:"):
                            print(line[5:].strip(), flush=True)
                return 0
    except httpx.HTTPError as err:
        raise UsageError(f"cannot reach the master at {args.master}: {err}") from None
    if response.status_code >= 400:
        raise UsageError(f"{response.status_code}: {response.text}")
    print(json.dumps(response.json(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    settings = Settings()
    args = _parser(settings).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "master":
            return run_master(args, settings)
        if args.command == "worker":
            return run_worker(args, settings)
        if args.command == "dev":
            return run_dev(args)
        return run_client(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
