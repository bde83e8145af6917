"""``python -m orchlive dev``: its flags, the checks before anything starts, and the banner.

SIGTERM and SIGHUP stop the cluster exactly as Ctrl-C does (they become a
``KeyboardInterrupt``), so closing the terminal or ``kill <pid>`` leaves no etcd, master
or worker behind.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from orchlive.cli.flags import (
    filter_config,
    policy_config,
    policy_flags,
    resource_flags,
    resources_of,
    sample_config,
)
from orchlive.cli.usage import UsageError, count, port_number
from orchlive.config import Settings

__all__ = ["add_dev_parser", "run_dev"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_dev_parser(sub: Any, settings: Settings) -> None:
    """The ``dev`` subcommand, on the subparsers ``sub``."""
    dev = sub.add_parser("dev", help="a local cluster: etcd, a master and N process workers")
    dev.add_argument("--workers", type=int, default=3, help="process workers to start, w1..wN (default: 3)")
    dev.add_argument(
        "--port", type=port_number, default=settings.port, help="the master's API port (default: %(default)s)"
    )
    dev.add_argument("--etcd-port", type=port_number, default=None, help="etcd's client port (default: a free one)")
    dev.add_argument("--keep", action="store_true", help="keep the working directory (logs, etcd data) at the end")
    dev.add_argument(
        "--max-restarts", type=count, default=3, metavar="N", help="restarts per dead worker (default: %(default)s)"
    )
    metrics = "the first worker's Prometheus /metrics port, the others count up (default: free ports)"
    dev.add_argument("--metrics-port", type=port_number, default=None, metavar="PORT", help=metrics)
    policy_flags(dev, settings)
    resource_flags(dev, "4000", "8192", "every worker offers this much")


def _master_args(args: argparse.Namespace, params: dict[str, object], filters: dict[str, Any]) -> list[str]:
    """The master's flags beyond port and policy, already checked here."""
    from orchsim.plugins import is_path

    # The master child gets absolute plugin paths, whatever folder it ends up running in.
    plugins = [str(Path(p).resolve()) if is_path(p) else p for p in args.plugins]
    extra = [a for p in plugins for a in ("--plugin", p)]
    if params:
        extra += ["--policy-params", json.dumps(params)]
    extra += ["--queue", args.queue, "--backfill-window", str(args.backfill_window)]
    if args.preemption:
        extra.append("--preemption")
    if sample_config(args) is not None:  # checked once already, before anything started
        extra += ["--sample", args.sample]
    if filters:
        extra += ["--filters", json.dumps(filters)]
    return extra


def banner(
    url: str, etcd: str, workers: int, work_dir: Path | None, keep: bool, metrics_ports: Sequence[int] = ()
) -> str:
    """What ``dev`` prints once ready: where everything is and the exact commands to point a client at it.

    ``metrics_ports``: the workers' ``/metrics`` ports, printed as Prometheus scrape targets.
    """
    kept = "kept at the end" if keep else "removed at the end; --keep keeps them"
    targets = ", ".join([url.removeprefix("http://"), *(f"127.0.0.1:{port}" for port in metrics_ports)])
    return "\n".join(
        [
            f"orchlive dev: master {url}, etcd {etcd}, {workers} process workers (w1..w{workers})",
            f"logs in {work_dir} ({kept})",
            "In another terminal:",
            f"    export ORCH_MASTER={url}",
            "    python -m orchlive nodes",
            "    python -m orchlive submit --name hello -- echo hello world",
            f"Prometheus scrape targets (/metrics): {targets}",
            "Ctrl-C (or SIGTERM, SIGHUP) stops everything it started.",
        ]
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Stop as Ctrl-C does; further signals are ignored while the children are stopped."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def _check_worker_capacity(resources: dict[str, int | float]) -> None:
    """What every worker will offer, checked as a worker checks it (GPUs whole devices), before anything starts."""
    from orchlive import devices
    from orchlive.models import Resources

    try:
        devices.declare(Resources.model_validate(resources), None, detect=dict)  # no probing: only the arithmetic
    except ValueError as err:
        raise UsageError(f"--resource: {str(err).splitlines()[0]}") from None


def run_dev(args: argparse.Namespace) -> int:
    """Check everything, start the cluster, supervise it until interrupted; 0 on a clean stop, 1 on a failure."""
    from orchlive.dev import DevCluster, DevError

    if args.workers < 1:
        raise UsageError(f"--workers: must be at least 1, got {args.workers}")
    params = policy_config(args)  # refused here, before anything starts
    filters = filter_config(args)
    sample_config(args)
    resources = resources_of(args)
    _check_worker_capacity(resources)
    cluster = DevCluster(
        workers=args.workers,
        port=args.port,
        etcd_port=args.etcd_port,
        policy=args.policy,
        cpu=int(resources.pop("cpu")),
        memory=int(resources.pop("memory")),
        resources=resources,
        master_args=_master_args(args, params, filters),
        max_restarts=args.max_restarts,
        metrics_port=args.metrics_port,
        keep=args.keep,
    )
    try:
        cluster.check()
    except DevError as err:
        raise UsageError(str(err)) from None
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    try:
        with cluster:
            ports = list(cluster.metrics_ports.values())
            ready = banner(cluster.url, cluster.etcd_endpoint, args.workers, cluster.work_dir, args.keep, ports)
            print(ready, flush=True)
            cluster.wait()
    except DevError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass  # interrupted while starting: the cluster has stopped what it started
    return 0
