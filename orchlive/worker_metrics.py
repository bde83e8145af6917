"""A worker's ``/metrics``: what it runs, what that uses, and how fresh its heartbeat is.

The master's ``/metrics`` shows the cluster as etcd records it; only the worker knows what
it really runs and when it last renewed its lease (a worker cut off from etcd still runs
its tasks while the master already counts it lost). Prometheus scrapes both.

The worker has no HTTP API (etcd is its only channel), so this module gives it a minimal
server on its own event loop (``asyncio.start_server``): ``GET /metrics`` and nothing else,
answered from the loop's own state, so no lock and no thread. It binds 127.0.0.1 unless told
otherwise (``--metrics-host``) and is off unless given a port (``--metrics-port``): several
workers share a machine in ``orchlive dev`` and the tests, so no default port could be right
for all of them.

Metrics (each with a ``node`` label, the worker's id):

* ``orch_worker_running_tasks``: tasks running here now.
* ``orch_worker_capacity{resource}`` / ``orch_worker_used{resource}``: what the worker
  offers and what its running tasks asked for (cpu in millicores, memory in MiB, gpu in
  milli-GPU).
* ``orch_worker_device_used_ratio{kind, device}``: each device's share held by running
  tasks, 0 to 1 (one GPU shared by two 500 milli-GPU tasks: 1).
* ``orch_worker_heartbeat_age_seconds``: seconds since the lease was last granted or
  renewed (since the worker started, before its first registration); above the lease TTL
  the master has presumed this node lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from orchlive import devices as dev
from orchlive.metrics_text import CONTENT_TYPE, Sample, family

if TYPE_CHECKING:
    from orchlive.worker import Worker

__all__ = ["render", "start_metrics_server"]

_REQUEST_TIMEOUT = 5.0  # seconds a client may take to send its request line and headers
_MAX_REQUEST = 16 * 1024  # bytes of request head accepted


def _used(worker: Worker) -> dict[str, float]:
    """Per resource, the sum of what the running tasks asked for; every resource offered is listed."""
    used = dict.fromkeys(worker.capacity, 0.0)
    for run in worker.running.values():
        for name, amount in run.task.resources.items():
            used[name] = used.get(name, 0.0) + amount
    return used


def _device_shares(worker: Worker) -> list[Sample]:
    """Every declared device with the share (0..1) the running tasks hold of it."""
    samples: list[Sample] = []
    for kind, count in sorted(worker.devices.items()):
        grants: dict[str, dev.Grant] = {}
        for task_id, run in worker.running.items():
            ids = run.task.devices.get(kind)
            if ids:
                with contextlib.suppress(ValueError):  # refused at start: the task does not run here
                    grants[task_id] = dev.grant_for(kind, run.task.resources.get(kind, 0), ids)
        held = dev.used_shares(grants)
        samples += [
            ({"node": worker.node_id, "kind": kind, "device": str(i)}, held.get(i, 0.0) / dev.DEVICE_UNIT)
            for i in range(count)
        ]
    return samples


def render(worker: Worker, now: float | None = None) -> str:
    """The worker's metrics in the text format; ``now`` on ``time.monotonic``'s clock (default: now)."""
    now = time.monotonic() if now is None else now
    node = {"node": worker.node_id}
    lines = family("orch_worker_running_tasks", "gauge", "Tasks running on this worker.", [(node, len(worker.running))])
    units = "cpu in millicores, memory in MiB, gpu in milli-GPU"
    lines += family(
        "orch_worker_capacity",
        "gauge",
        f"Amount of a resource this worker offers ({units}).",
        [(node | {"resource": name}, amount) for name, amount in worker.capacity.items()],
    )
    lines += family(
        "orch_worker_used",
        "gauge",
        f"Amount of a resource the tasks running on this worker asked for ({units}).",
        [(node | {"resource": name}, amount) for name, amount in _used(worker).items()],
    )
    lines += family(
        "orch_worker_device_used_ratio",
        "gauge",
        "Share of one device (0 to 1) held by the tasks running on this worker.",
        _device_shares(worker),
    )
    lines += family(
        "orch_worker_heartbeat_age_seconds",
        "gauge",
        "Seconds since this worker last granted or renewed its etcd lease.",
        [(node, max(now - worker.renewed_at, 0.0))],
    )
    return "\n".join(lines) + "\n"


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _answer(worker: Worker, head: bytes) -> bytes:
    """The whole response to one request head: the metrics for ``GET /metrics``, 404 or 405 otherwise."""
    method, _, rest = head.partition(b" ")
    path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD"):
        return _response("405 Method Not Allowed", b"only GET /metrics\n")
    if path != b"/metrics":
        return _response("404 Not Found", b"only /metrics is served here\n")
    body = render(worker).encode()
    response = _response("200 OK", body, CONTENT_TYPE)
    return response[: len(response) - len(body)] if method == b"HEAD" else response


async def start_metrics_server(worker: Worker, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``host:port`` from the running loop; the caller closes the server.

    Raises:
        OSError: the address cannot be bound (in use, not this machine's).
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            writer.write(_answer(worker, head))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass  # a client that went away or sent no request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(serve, host, port, limit=_MAX_REQUEST)
