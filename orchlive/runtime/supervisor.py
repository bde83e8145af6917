"""A task's supervisor: a small process beside the task that stops it when the worker's lease may expire.

Why a separate process: a worker that is frozen (SIGSTOP, swapped out, a stalled VM) can
stop nothing, yet etcd lets its lease expire and the master reruns its tasks elsewhere.
The worker writes its *lease deadline* to a file after each successful renewal (the
time the renewal was sent plus the lease TTL minus a margin, on ``CLOCK_MONOTONIC``,
which every process of the machine shares). The supervisor reads that file every
``poll`` seconds and, once the deadline has passed, writes why to the reason file and
kills the task: the whole process group (process runtime) or the container (docker
runtime, through the engine's API). The lease itself expires no earlier than
``TTL`` after the renewal was sent, and the master waits a grace period after that, so
the copy stops before another can start (README, "At most one copy").

Run as ``python -I -S supervisor.py`` (standard library only, no package import: it
starts in about 20 ms, and a task's environment cannot change what it imports). It
reads one JSON object on stdin::

    {"command": [...], "env": {...}, "user": "nobody" | null,      # process mode
     "docker": {"host": "unix:///var/run/docker.sock", "container": "id"},  # or docker mode
     "heartbeat": "/path/lease-deadline" | null, "reason": "/path/x.stopped",
     "parent": 1234, "poll": 0.1}

and answers one line on stdout, ``ok PID`` or ``error MESSAGE`` (the task could not
start), then closes it. Process mode: the supervisor leads the process group the worker
created (``start_new_session``); the task runs in it (as ``user`` if given, with that
user's groups), with stdout and stderr on the supervisor's stderr (the task's log), so
the worker's ``killpg`` stops both. If the worker dies (even ``kill -9``) the
supervisor is told (parent-death signal, and a check of its parent) and kills the group:
processes never outlive their worker. It exits as the task did (same code, or the same
signal). Docker mode: containers outlive a worker restart (the new worker adopts them),
so the supervisor does too; it exits when the container is gone or has stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

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


def _set_parent_death_signal(sig: int) -> None:
    """Ask Linux to send ``sig`` when the parent dies (no-op where prctl is unavailable)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _child_setup() -> None:
    """In the task's process, between fork and exec (the supervisor has a single thread)."""
    _set_parent_death_signal(signal.SIGKILL)


def _start_task(order: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start the task in this process group, as ``order['user']`` if given; its output to our stderr."""
    options: dict[str, Any] = {}
    user = order.get("user")
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
        options = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": groups}
    return subprocess.Popen(
        order["command"],
        env=order.get("env") or {},
        stdin=subprocess.DEVNULL,
        stdout=2,
        stderr=2,
        preexec_fn=_child_setup,  # safe: the supervisor runs no threads
        **options,
    )


def _answer(line: str) -> None:
    """Tell the worker how the start went, then let go of stdout."""
    os.write(1, (line + "\n").encode())
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def _stop_reason(deadline: float) -> str:
    late = time.monotonic() - deadline
    return (
        "stopped by its supervisor: the worker did not renew its lease in time "
        f"(lease deadline passed {late:.2f} s ago); the master reruns it after the lease expires"
    )


def _record(order: dict[str, Any], reason: str) -> None:
    with contextlib.suppress(OSError):
        with open(order["reason"], "w") as f:
            f.write(reason + "\n")
        os.write(2, f"orchlive supervisor: {reason}\n".encode())


def _exit_like(status: int) -> None:
    """Exit as the task did: its exit code, or killed by its signal (the worker reads ``-N``)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP keep their default anyway
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _kill_group() -> None:
    """SIGKILL to this process group: the task, whatever it started, and this supervisor."""
    os.killpg(os.getpgrp(), signal.SIGKILL)


def supervise_process(order: dict[str, Any]) -> None:
    """Process mode: run the task, kill the group at the lease deadline or when the worker dies."""
    parent = int(order.get("parent") or os.getppid())
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: _kill_group())
    _set_parent_death_signal(signal.SIGTERM)
    try:
        child = _start_task(order)
    except (OSError, KeyError, ValueError, TypeError, subprocess.SubprocessError) as err:  # e.g. a NUL byte
        program = order["command"][0] if order.get("command") else ""
        detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        _answer(f"error cannot start {program!r}: {detail}")
        os._exit(127)
    _answer(f"ok {child.pid}")
    poll = float(order.get("poll") or 0.1)
    waiter = _exit_waiter(child.pid)
    while True:
        pid, status = os.waitpid(child.pid, os.WNOHANG)
        if pid == child.pid:  # first: a task that ended by itself is never reported as stopped
            _exit_like(status)
        if os.getppid() != parent:  # the worker died before the parent-death signal was set
            _kill_group()
        deadline = read_deadline(order.get("heartbeat"))
        if time.monotonic() >= deadline:
            _record(order, _stop_reason(deadline))
            _kill_group()
        waiter(poll)


def _exit_waiter(pid: int) -> Any:
    """A function that waits up to its argument (seconds) for ``pid`` to exit (pidfd where Linux has it)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return time.sleep
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return lambda seconds: poller.poll(max(0, seconds) * 1000)


def docker_call(host: str, method: str, path: str, timeout: float = 10.0) -> int:
    """One request to the Docker engine at ``host`` (``unix://PATH`` or ``tcp://HOST:PORT``); its status.

    For ``GET /containers/ID/json`` a container that exists but no longer runs answers 410.
    (http.client is imported here: with ssl it costs more than the rest of the supervisor.)
    """
    import http.client
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
            _record(order, _stop_reason(deadline))
            with contextlib.suppress(Exception):  # gone already, or the engine is down with it
                docker_call(host, "POST", f"/containers/{container}/kill")
            os._exit(0)
        if time.monotonic() - checked >= CONTAINER_CHECK_SECONDS:
            checked = time.monotonic()
            with contextlib.suppress(Exception):  # an engine that does not answer: ask again later
                if docker_call(host, "GET", f"/containers/{container}/json") in (404, 410):
                    os._exit(0)
        time.sleep(poll)


def main() -> None:
    """Read the order on stdin and supervise a process or a container."""
    order = json.loads(sys.stdin.buffer.read())
    if order.get("docker"):
        supervise_container(order)
    else:
        supervise_process(order)


if __name__ == "__main__":
    main()
