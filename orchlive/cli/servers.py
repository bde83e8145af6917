"""``python -m orchlive master`` and ``python -m orchlive worker``: the two long-running processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from pathlib import Path
from typing import IO, Any

from orchlive.cli.flags import (
    common_flags,
    filter_config,
    parsed_resources,
    policy_config,
    policy_flags,
    resource_flags,
    resources_of,
    sample_config,
)
from orchlive.cli.usage import UsageError, port_number
from orchlive.config import Settings, machine_capacity, parse_labels

__all__ = ["add_server_parsers", "run_master", "run_worker"]


def add_server_parsers(sub: Any, settings: Settings) -> None:
    """The ``master`` and ``worker`` subcommands, on the subparsers ``sub``."""
    master = sub.add_parser("master", help="API server and scheduling loop")
    common_flags(master, settings)
    master.add_argument("--host", default=settings.host)
    master.add_argument("--port", type=port_number, default=settings.port)
    policy_flags(master, settings)
    master.add_argument("--seed", type=int, default=settings.seed)
    master.add_argument("--leader-ttl", type=int, default=settings.leader_ttl, help="leader lease, seconds")
    grace = "seconds past a node's lease expiry before its tasks rerun elsewhere (ORCH_LOST_GRACE; %(default)s)"
    master.add_argument("--lost-grace", type=float, default=settings.lost_grace, metavar="SECONDS", help=grace)
    protect = "/health and /metrics need the token (ORCH_PROTECT_SYSTEM)"
    master.add_argument("--protect-system", action="store_true", default=settings.protect_system, help=protect)

    worker = sub.add_parser("worker", help="run tasks on this machine")
    common_flags(worker, settings)
    worker.add_argument("--name", default=settings.name, help="node id (default: the host name)")
    worker.add_argument("--runtime", default=settings.runtime, choices=["process", "docker"])
    resource_flags(worker, None, None, "offer this much")
    worker.add_argument("--labels", default=settings.labels, help="k=v,k=v")
    devices = "devices, e.g. gpu=8 (ORCH_DEVICES; default: a gpu capacity as whole GPUs, else nvidia-smi's)"
    worker.add_argument("--devices", default=settings.devices, metavar="KIND=COUNT,...", help=devices)
    worker.add_argument("--network", default=settings.network, choices=["none", "host"], help="container network")
    worker.add_argument("--lease-ttl", type=int, default=settings.lease_ttl)
    margin = "stop tasks this long before the lease could expire (ORCH_LEASE_MARGIN; default min(1, TTL/8))"
    worker.add_argument("--lease-margin", type=float, default=settings.lease_margin, metavar="SECONDS", help=margin)
    run_as = "process runtime: run tasks as this user (ORCH_RUN_AS; another user needs a root worker)"
    worker.add_argument("--run-as", default=settings.run_as, metavar="USER", help=run_as)
    worker.add_argument("--data-dir", type=Path, default=settings.data_dir)
    metrics = "serve Prometheus /metrics on this port (default 0: off; see orchlive.worker_metrics)"
    worker.add_argument("--metrics-port", type=int, default=0, metavar="PORT", help=metrics)
    worker.add_argument("--metrics-host", default="127.0.0.1", help="address of /metrics (default: %(default)s)")


def run_master(args: argparse.Namespace, settings: Settings) -> int:
    """Check the policy flags, then serve the API and run the scheduling loop until stopped."""
    import uvicorn

    from orchlive.api import create_app
    from orchlive.master import Master
    from orchlive.store import Store
    from orchsim.plugins import absolute_specs

    if not 0 <= args.lost_grace <= 3600:
        raise UsageError(f"--lost-grace: {args.lost_grace} is not a number of seconds in [0, 3600]")
    params = policy_config(args)
    filters = filter_config(args)
    sample = sample_config(args)
    try:
        store = Store(args.etcd, args.prefix)
    except ValueError as err:  # a malformed endpoint list
        raise UsageError(f"--etcd: {err}") from None
    master = Master(
        store,
        args.policy,
        seed=args.seed,
        params=params,
        queue=args.queue,
        backfill_window=args.backfill_window,
        filters=filters,
        sample=sample,
        preemption=args.preemption,
        plugins=absolute_specs(args.plugins),  # as /health shows them: a recording replays with them
        candidate=settings.master_id,
        leader_ttl=args.leader_ttl,
        lost_grace=args.lost_grace,
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
    return resources_of(args, base | parsed_resources("ORCH_RESOURCES", settings.resources))


def _worker_devices(args: argparse.Namespace) -> dict[str, int] | None:
    """``--devices`` (``ORCH_DEVICES``); None when not given: the worker's own rule (``orchlive.devices.declare``)."""
    from orchlive.devices import parse_devices

    try:
        return parse_devices(args.devices) if args.devices.strip() else None
    except ValueError as err:
        raise UsageError(f"--devices: {err}") from None


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Register this machine's capacity and run the tasks assigned to it until SIGINT or SIGTERM."""
    from orchlive.models import Resources
    from orchlive.store import Store
    from orchlive.worker import Worker
    from orchlive.worker_lease import HEARTBEAT_FILE, check_lease_margin

    held = _own_name_and_dir(args)  # noqa: F841 - the data dir's lock lives as long as the process
    try:
        labels = parse_labels(args.labels)
    except ValueError as err:
        raise UsageError(f"--labels: {err}") from None
    capacity = Resources.model_validate(_worker_capacity(args, settings))
    if args.lease_margin is not None:
        try:
            check_lease_margin(args.lease_ttl, args.lease_margin)
        except ValueError as err:
            raise UsageError(f"--lease-margin: {err}") from None
    runtime = _make_runtime(args, heartbeat := args.data_dir / args.name / HEARTBEAT_FILE)
    try:
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
            devices=_worker_devices(args),
            lease_margin=args.lease_margin,
            heartbeat_path=heartbeat,
        )
    except ValueError as err:  # devices contradicting the capacity, a gpu capacity not whole GPUs
        raise UsageError(str(err)) from None

    from orchlive.transitions import NodeNameInUseError

    try:
        return asyncio.run(_serve_worker(worker, runtime, args))
    except NodeNameInUseError as err:
        raise UsageError(f"--name: {err}; choose another name, or stop that worker") from None


def _own_name_and_dir(args: argparse.Namespace) -> IO[str]:
    """Check ``--name``, lock the worker's data dir (one process per dir) and make its instance token there.

    Returns the lock's file. The token is made here, under the lock, so that any failure to
    write the directory is this one line (the worker then only reads the token).
    """
    from orchlive.config import check_node_name
    from orchlive.worker_identity import DataDirInUseError, instance_token, lock_data_dir

    try:
        check_node_name(args.name)
    except ValueError as err:
        raise UsageError(f"--name: {err}") from None
    try:
        held = lock_data_dir(args.data_dir / args.name)
        instance_token(args.data_dir / args.name)
        return held
    except DataDirInUseError as err:
        raise UsageError(f"--data-dir: {err} (the same --name and --data-dir twice?)") from None
    except OSError as err:  # another user's directory, a read-only disk
        raise UsageError(f"--data-dir: cannot use {args.data_dir / args.name}: {err.strerror or err}") from None


def _make_runtime(args: argparse.Namespace, heartbeat: Path) -> Any:
    """The worker's runtime, its supervisors reading ``heartbeat``; a UsageError naming the flag if it cannot run."""
    from orchlive.runtime import TaskStartError, make_runtime
    from orchlive.runtime.process import check_run_as

    if args.run_as and args.runtime != "process":
        raise UsageError(f"--run-as: only the process runtime runs tasks as another user (not {args.runtime})")
    try:
        check_run_as(args.run_as)
    except ValueError as err:
        raise UsageError(f"--run-as: {err}") from None
    options: dict[str, Any] = {"heartbeat": heartbeat}
    if args.runtime == "docker":
        options |= {"node_id": args.name, "network": args.network}
    elif args.run_as:
        options["run_as"] = args.run_as
    try:
        return make_runtime(args.runtime, **options)
    except (TaskStartError, ValueError) as err:
        raise UsageError(f"--runtime {args.runtime}: {err}") from None


async def _serve_worker(worker: Any, runtime: Any, args: argparse.Namespace) -> int:
    """Run ``worker`` (and its ``/metrics``, if asked) until SIGINT or SIGTERM, then leave cleanly.

    A name another live worker holds ends it too (``NodeNameInUseError``, raised after
    leaving); any other error ends it logged, with status 1 (it once ended silently, 0).
    """
    from orchlive.transitions import NodeNameInUseError

    metrics = await _metrics_server(worker, args.metrics_host, args.metrics_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
    running.cancel()
    refused, status = None, 0
    try:
        await running
    except NodeNameInUseError as err:
        refused = err
    except asyncio.CancelledError:
        pass
    except Exception:  # not silently: a worker that stops on its own says why
        logging.getLogger("orchlive.worker").exception("worker %s stopped on an error", worker.node_id)
        status = 1
    await worker.shutdown()
    await runtime.close()
    if metrics is not None:
        metrics.close()
    if refused is not None:
        raise refused
    return status


async def _metrics_server(worker: Any, host: str, port: int) -> asyncio.Server | None:
    """The worker's ``/metrics`` server, started before anything else; None with ``--metrics-port 0``.

    Raises:
        UsageError: one line, when the address cannot be bound (a busy port, a foreign host).
    """
    from orchlive.worker_metrics import start_metrics_server

    if port == 0:
        return None
    if not 0 < port < 65536:
        raise UsageError(f"--metrics-port: {port} is not a port (1..65535, or 0 for none)")
    try:
        return await start_metrics_server(worker, host, port)
    except OSError as err:
        raise UsageError(f"--metrics-port {port}: cannot listen on {host}:{port} ({err.strerror or err})") from None
