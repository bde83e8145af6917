"""What stops a task when the worker's lease may expire, from outside the worker.

Why outside: a worker that is frozen (SIGSTOP, swapped out, a stalled VM) can stop
nothing, yet etcd lets its lease expire and the master reruns its tasks elsewhere. The
worker writes its *lease deadline* to a file after each successful renewal (the time the
renewal was sent plus the lease TTL minus a margin, on ``CLOCK_MONOTONIC``, which every
process of the machine shares). Whatever supervises a task reads that file every
``poll`` seconds and, once the deadline has passed, writes why to the task's reason file
and kills the task. The lease itself expires no earlier than ``TTL`` after the renewal
was sent, and the master waits a grace period after that, so the copy stops before
another can start (README, "At most one copy").

Process tasks are supervised by the worker's launcher (``launcher.py``, which uses this
module's helpers): one process for all of a worker's tasks. A container gets a
supervisor of its own, this module run as ``python -I -S supervisor.py`` (standard
library only, no package import, and a task's environment cannot change what it
imports; it imports only built-in modules and ``ctypes``, because every
container pays its start). It reads one ``marshal``-encoded dict on stdin (the worker
runs the same interpreter)::

    {"docker": {"host": "unix:///var/run/docker.sock", "container": "id"},
     "heartbeat": "/path/lease-deadline" | null, "reason": "/path/x.stopped", "poll": 0.1}

answers ``ok PID`` on stdout, kills the container through the engine's API at the
deadline, and exits when the container is gone or has stopped. Containers outlive a
worker restart (the new worker adopts them), so their supervisors do too.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import sys
import time

TYPE_CHECKING = False  # not ``typing.TYPE_CHECKING``: importing typing costs every task's start 11 ms
if TYPE_CHECKING:
    from typing import Any

try:
    import _signal as signal  # the C module behind ``signal``, without its enums (4 ms of imports)
except ImportError:  # pragma: no cover - every CPython has it
    import signal  # type: ignore[no-redef]

PR_SET_PDEATHSIG = 1
CONTAINER_CHECK_SECONDS = 1.0  # docker mode: how often to ask whether the container still runs


def read_deadline(path: str | None) -> float:
    """The lease deadline the worker last wrote (CLOCK_MONOTONIC seconds); inf without a file path.

    A missing or unreadable file is a deadline already passed: the worker writes the
    file before it starts any task, so its absence means the data directory was lost.
    """
    if path is None:
        return float("inf")
    try:
        with open(path) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return float("-inf")


def write_deadline(path: str, deadline: float) -> None:
    """Write ``deadline`` atomically (a reader sees the old or the new value, never a partial one)."""
    scratch = f"{path}.{os.getpid()}.tmp"
    with open(scratch, "w") as f:
        f.write(f"{deadline:.6f}\n")
    os.replace(scratch, path)


_PRCTL: list[Any] = []  # libc's prctl (or None), looked up once: before a fork, so the child only calls it


def _prctl() -> Any:
    """The C library's ``prctl``, or None where it cannot be found."""
    if not _PRCTL:
        try:
            _PRCTL.append(ctypes.CDLL(None, use_errno=True).prctl)
        except (OSError, AttributeError):
            _PRCTL.append(None)
    return _PRCTL[0]


def set_parent_death_signal(sig: int) -> None:
    """Ask Linux to send ``sig`` when the parent dies (no-op where prctl is unavailable)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _answer(line: str) -> None:
    """Tell the worker how the start went, then let go of stdout."""
    os.write(1, (line + "\n").encode())
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def stop_reason(deadline: float) -> str:
    """Why a task was stopped at the lease ``deadline``, for its reason file and log."""
    late = time.monotonic() - deadline
    return (
        "stopped by its supervisor: the worker did not renew its lease in time "
        f"(lease deadline passed {late:.2f} s ago); the master reruns it after the lease expires"
    )


def record(order: dict[str, Any], reason: str) -> None:
    """Write why the task was stopped to its reason file, and say so in its log (or on stderr)."""
    try:
        with open(order["reason"], "w") as f:
            f.write(reason + "\n")
        line = f"orchlive supervisor: {reason}\n".encode()
        if order.get("log"):
            with open(order["log"], "ab") as log:
                log.write(line)
        else:
            os.write(2, line)
    except OSError:
        pass


def docker_call(host: str, method: str, path: str, timeout: float = 10.0) -> int:
    """One request to the Docker engine at ``host`` (``unix://PATH`` or ``tcp://HOST:PORT``); its status.

    For ``GET /containers/ID/json`` a container that exists but no longer runs answers 410.
    (http.client is imported here: with ssl it costs more than the rest of the supervisor.)
    """
    import http.client
    import json
    import socket

    class UnixHTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(host[len("unix://") :])

    if host.startswith("unix://"):
        conn: http.client.HTTPConnection = UnixHTTPConnection("localhost", timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host.split("://", 1)[-1], timeout=timeout)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        body = reply.read()
        if method == "GET" and reply.status == 200:
            return 200 if json.loads(body).get("State", {}).get("Running") else 410
        return reply.status
    finally:
        conn.close()


def supervise_container(order: dict[str, Any]) -> None:
    """Docker mode: kill the container at the lease deadline; leave once it has stopped."""
    host, container = order["docker"]["host"], order["docker"]["container"]
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    _answer(f"ok {os.getpid()}")
    poll = float(order.get("poll") or 0.1)
    checked = 0.0
    while True:
        deadline = read_deadline(order.get("heartbeat"))
        if time.monotonic() >= deadline:
            record(order, stop_reason(deadline))
            try:  # noqa: SIM105 - no contextlib here (see the module docstring)
                docker_call(host, "POST", f"/containers/{container}/kill")
            except Exception:  # gone already, or the engine is down with it
                pass
            os._exit(0)
        if time.monotonic() - checked >= CONTAINER_CHECK_SECONDS:
            checked = time.monotonic()
            try:
                gone = docker_call(host, "GET", f"/containers/{container}/json") in (404, 410)
            except Exception:  # an engine that does not answer: ask again later
                gone = False
            if gone:
                os._exit(0)
        time.sleep(poll)


def main() -> None:
    """Read the order on stdin and supervise its container."""
    order = marshal.loads(sys.stdin.buffer.read())
    if not order.get("docker"):
        _answer("error the supervisor guards containers: process tasks go through the worker's launcher")
        os._exit(2)
    supervise_container(order)


if __name__ == "__main__":
    main()
