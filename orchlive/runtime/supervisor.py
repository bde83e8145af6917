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

Run as ``python -I -S supervisor.py`` (standard library only, no package import, and a
task's environment cannot change what it imports). Every task pays its start, so it
imports only built-in modules, ``select`` and ``ctypes`` (for ``prctl``): no ``json``,
``subprocess``, ``contextlib`` or ``signal`` (whose enums import half the standard
library); the task is started with ``fork`` and ``execve`` as ``subprocess`` would. About
12 ms of CPU per task where those imports made it 31 (a bare ``python -I -S`` is 8). It
reads one ``marshal``-encoded dict on stdin (the worker runs the same interpreter)::

    {"command": [...], "env": {...}, "user": "nobody" | null,      # process mode
     "docker": {"host": "unix:///var/run/docker.sock", "container": "id"},  # or docker mode
     "heartbeat": "/path/lease-deadline" | null, "reason": "/path/x.stopped",
     "parent": 1234, "poll": 0.1}

and answers one line on stdout, ``ok GROUP PID`` or ``error MESSAGE`` (the task could not
start), then closes it. (The worker's launcher, ``launcher.py``, forks this supervisor
instead of starting it: there the order has an ``id`` that prefixes both answers.)
Process mode: the supervisor leads the process group the worker
created (``start_new_session``); the task runs in it (as ``user`` if given, with that
user's groups), with stdout and stderr on the supervisor's stderr (the task's log), so
the worker's ``killpg`` stops both. If the worker dies (even ``kill -9``) the
supervisor is told (parent-death signal, and a check of its parent) and kills the group:
processes never outlive their worker. It exits as the task did (same code, or the same
signal). Docker mode: containers outlive a worker restart (the new worker adopts them),
so the supervisor does too; it exits when the container is gone or has stopped.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import select
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


def _set_parent_death_signal(sig: int) -> None:
    """Ask Linux to send ``sig`` when the parent dies (no-op where prctl is unavailable)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _exec_arguments(order: dict[str, Any]) -> tuple[list[bytes], list[bytes], dict[bytes, bytes]]:
    """The task's argv, the paths to try for its program, and its environment, as bytes.

    Checked here, before the fork, as ``subprocess`` checks them: a NUL byte anywhere or
    an ``=`` in a variable's name is a ValueError the worker reports (nothing starts).
    """
    argv = [os.fsencode(arg) for arg in order["command"]]
    declared = order.get("env") or {}
    env = {os.fsencode(k): os.fsencode(v) for k, v in declared.items()}
    if any(b"\0" in arg for arg in argv) or any(b"\0" in k or b"\0" in v for k, v in env.items()):
        raise ValueError("embedded null byte")
    if any(b"=" in k or not k for k in env):
        raise ValueError("illegal environment variable name")
    program = argv[0]
    if os.path.dirname(program):
        return argv, [program], env
    return argv, [os.path.join(os.fsencode(d), program) for d in os.get_exec_path(declared)], env


def _in_child(argv: list[bytes], paths: list[bytes], env: dict[bytes, bytes], ids: Any, report: int) -> None:
    """Between fork and exec (the supervisor runs no threads): what ``subprocess.Popen`` does, then exec."""
    try:
        _set_parent_death_signal(signal.SIGKILL)
        for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ"):  # Python ignores these; a task gets the defaults
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(2, 1)  # stdout and stderr: the task's log
        if ids is not None:
            uid, gid, groups = ids
            os.setgroups(groups)
            os.setregid(gid, gid)
            os.setreuid(uid, uid)
        failure = OSError(2, "No such file or directory")
        for path in paths:
            try:
                os.execve(path, argv, env)
            except OSError as err:  # as execvpe: the first error other than "not there" wins
                if err.errno not in (2, 20) or failure.errno in (2, 20):
                    failure = err
        os.write(report, str(failure.errno or 0).encode())
    except BaseException as err:  # nothing may return into the supervisor's code
        os.write(report, str(getattr(err, "errno", None) or 0).encode())
    os._exit(255)


def _start_task(order: dict[str, Any]) -> int:
    """Start the task in this process group, as ``order['user']`` if given; its output to our stderr.

    Returns its pid. Raises OSError (the program cannot be run: its errno) or ValueError.
    """
    argv, paths, env = _exec_arguments(order)
    ids = None
    if user := order.get("user"):
        import pwd

        entry = pwd.getpwnam(user)
        ids = (entry.pw_uid, entry.pw_gid, os.getgrouplist(entry.pw_name, entry.pw_gid))
    _prctl()  # looked up before the fork: the child only calls it
    ready, report = os.pipe()  # close-on-exec: EOF on a successful exec
    pid = os.fork()
    if pid == 0:
        os.close(ready)
        _in_child(argv, paths, env, ids, report)
    os.close(report)
    answer = b""
    while chunk := os.read(ready, 64):
        answer += chunk
    os.close(ready)
    if answer:
        os.waitpid(pid, 0)
        code = int(answer or b"0")
        raise OSError(code, os.strerror(code) if code else "the task could not be started")
    return pid


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
    try:
        with open(order["reason"], "w") as f:
            f.write(reason + "\n")
        os.write(2, f"orchlive supervisor: {reason}\n".encode())
    except OSError:
        pass


def _exit_like(status: int) -> None:
    """Exit as the task did: its exit code, or killed by its signal (the worker reads ``-N``)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:  # noqa: SIM105 - contextlib costs every task's start 4 ms of imports
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP keep their default anyway
            pass
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _kill_group() -> None:
    """SIGKILL to this process group: the task, whatever it started, and this supervisor."""
    os.killpg(os.getpgrp(), signal.SIGKILL)


def supervise_process(order: dict[str, Any]) -> None:
    """Process mode: run the task, kill the group at the lease deadline or when the worker dies."""
    parent = int(order.get("parent") or os.getppid())
    tag = f"{order['id']} " if "id" in order else ""  # forked by the launcher: its answers name the order
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: _kill_group())
    _set_parent_death_signal(signal.SIGTERM)
    try:
        child = _start_task(order)
    except (OSError, KeyError, ValueError, TypeError, IndexError) as err:  # e.g. a NUL byte
        program = order["command"][0] if order.get("command") else ""
        detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        _answer(f"{tag}error cannot start {program!r}: {detail}")
        os._exit(127)
    _answer(f"{tag}ok {os.getpgrp()} {child}")
    poll = float(order.get("poll") or 0.1)
    waiter = _exit_waiter(child)
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid == child:  # first: a task that ended by itself is never reported as stopped
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
            _record(order, _stop_reason(deadline))
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
    """Read the order on stdin and supervise a process or a container."""
    order = marshal.loads(sys.stdin.buffer.read())
    if order.get("docker"):
        supervise_container(order)
    else:
        supervise_process(order)


if __name__ == "__main__":
    main()
