"""A worker's task launcher: one long-lived process that starts and supervises every process task.

Why one process: a supervisor started per task (its own interpreter) cost about 12 ms of
CPU per task, several times the worker's own bookkeeping, and under load that CPU is
taken from the master and etcd on the same machine. The launcher starts once per worker
and starts each task with ``posix_spawn`` (no copy of its own memory) in a new session,
so the task leads its own process group; about half a millisecond per task.

It does what each task's supervisor did (``supervisor.py``'s docstring says why): a
frozen worker can stop nothing, so the launcher reads the worker's lease deadline every
``poll`` seconds while tasks run and, once it has passed, writes why to each task's
reason file and log and kills each task's group. The launcher is a separate process in
its own session: a SIGSTOP to the worker does not freeze it.

Run as ``python -I -S launcher.py WORKER_PID`` (standard library only, as the supervisor
whose helpers it loads from this directory). The worker writes orders on stdin, each a
4-byte big-endian length and a ``marshal``-encoded dict::

    {"id": "17", "command": [...], "env": {...}, "user": "nobody" | null,
     "log": "/path/task.log", "heartbeat": "/path/lease-deadline" | null,
     "reason": "/path/task.stopped", "poll": 0.1}

and it answers lines on stdout::

    ID ok PID              the task runs; PID leads its process group
    ID error MESSAGE       it could not start (nothing runs)
    ID exit STATUS         it ended (raw wait status)

Nothing outlives the worker: the launcher kills every task's group and leaves when its
stdin closes or the worker dies (parent-death signal, and a check of its parent); a
worker that sees its launcher end kills the groups it knows of.
"""

from __future__ import annotations

import marshal
import os
import select
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import supervisor  # the sibling module, found through the line above

TYPE_CHECKING = False  # as in the supervisor: importing typing costs 11 ms
if TYPE_CHECKING:
    from typing import Any

signal = supervisor.signal
LINE_LIMIT = 1000  # characters of an error message: a line stays one atomic pipe write
# Python ignores these; a task gets the defaults (handled ones are reset by exec anyway).
DEFAULTED = [getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name)]
NOT_THERE = (2, 20)  # ENOENT, ENOTDIR: try the next directory of PATH


def say(line: str) -> None:
    """One answer line to the worker (one ``write`` under PIPE_BUF: never interleaved)."""
    os.write(1, (line[:LINE_LIMIT].replace("\n", " ") + "\n").encode(errors="replace"))


def exec_arguments(order: dict[str, Any]) -> tuple[list[bytes], list[bytes], dict[bytes, bytes]]:
    """The task's argv, the paths to try for its program, and its environment, as bytes.

    Checked here, before anything starts, as ``subprocess`` checks them: a NUL byte
    anywhere or an ``=`` in a variable's name is a ValueError the worker reports.
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


def _first_that_runs(paths: list[bytes], run: Any) -> int:
    """``run(path)`` for each path in turn, as ``execvpe``: the first error other than "not there" wins."""
    failure = OSError(2, "No such file or directory")
    for path in paths:
        try:
            return run(path)
        except OSError as err:
            if err.errno not in NOT_THERE or failure.errno in NOT_THERE:
                failure = err
    raise failure


def _as_user(user: str, log: int, argv: list[bytes], paths: list[bytes], env: dict[bytes, bytes]) -> int:
    """Fork and exec as ``user`` and its groups (``posix_spawn`` cannot change users); the child's pid."""
    import pwd

    entry = pwd.getpwnam(user)
    groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    ready, report = os.pipe()  # close-on-exec: EOF on a successful exec
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, *DEFAULTED):  # not the launcher's handlers
                signal.signal(sig, signal.SIG_DFL)
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.setgroups(groups)
            os.setregid(entry.pw_gid, entry.pw_gid)
            os.setreuid(entry.pw_uid, entry.pw_uid)
            _first_that_runs(paths, lambda path: os.execve(path, argv, env))
        except BaseException as err:  # nothing may return into the launcher's loop
            os.write(report, str(getattr(err, "errno", None) or 0).encode())
        os._exit(255)
    os.close(report)
    answer = b""
    while chunk := os.read(ready, 64):
        answer += chunk
    os.close(ready)
    if answer:
        os.waitpid(pid, 0)
        code = int(answer)
        raise OSError(code, os.strerror(code) if code else "the task could not be started")
    return pid


def spawn(order: dict[str, Any]) -> int:
    """Start the task in a new session, stdin from /dev/null, stdout and stderr to its log; its pid."""
    argv, paths, env = exec_arguments(order)
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if order.get("user"):
            return _as_user(order["user"], log, argv, paths, env)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2),
        ]
        return _first_that_runs(
            paths,
            lambda path: os.posix_spawn(path, argv, env, file_actions=actions, setsid=True, setsigdef=DEFAULTED),
        )
    finally:
        os.close(log)


def _start(order: dict[str, Any], tasks: dict[int, dict[str, Any]]) -> None:
    try:
        pid = spawn(order)
    except (OSError, KeyError, ValueError, TypeError, IndexError) as err:  # e.g. a NUL byte
        program = order["command"][0] if order.get("command") else ""
        detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        say(f"{order.get('id')} error cannot start {program!r}: {detail}")
        return
    tasks[pid] = order
    say(f"{order['id']} ok {pid}")


def _reap(tasks: dict[int, dict[str, Any]]) -> None:
    """Report every task that ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if (order := tasks.pop(pid, None)) is not None:
            say(f"{order['id']} exit {status}")


def _fence(tasks: dict[int, dict[str, Any]]) -> None:
    """Kill the group of every task whose worker's lease deadline has passed, saying why."""
    deadlines: dict[str, float] = {}
    for pid, order in tasks.items():
        path = order.get("heartbeat")
        if path is None or order.get("fenced"):
            continue
        if path not in deadlines:
            deadlines[path] = supervisor.read_deadline(path)
        if supervisor.time.monotonic() >= deadlines[path]:
            order["fenced"] = True
            reason = supervisor.stop_reason(deadlines[path])
            supervisor.record(order, reason)
            _kill_group(pid)


def _kill_group(pid: int) -> None:
    """SIGKILL to the process group ``pid`` leads (gone already: reaped next, or reaped)."""
    try:  # noqa: SIM105 - no contextlib here (see the supervisor's docstring)
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _kill_all(tasks: dict[int, dict[str, Any]]) -> None:
    """SIGKILL to every task's group, then leave."""
    for pid in tasks:
        _kill_group(pid)
    os._exit(0)


def _orders(buffer: bytearray) -> list[dict[str, Any]]:
    """The whole frames at the front of ``buffer`` (removed from it)."""
    orders = []
    while len(buffer) >= 4:
        size = int.from_bytes(buffer[:4], "big")
        if len(buffer) < 4 + size:
            break
        orders.append(marshal.loads(bytes(buffer[4 : 4 + size])))
        del buffer[: 4 + size]
    return orders


def _drain(fd: int) -> None:
    while True:
        try:
            os.read(fd, 512)
        except BlockingIOError:
            return


def serve(parent: int) -> None:
    """Start and watch tasks until stdin closes or the worker dies."""
    tasks: dict[int, dict[str, Any]] = {}
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears of it
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: _kill_all(tasks))
    supervisor.set_parent_death_signal(signal.SIGTERM)
    poller = select.poll()
    poller.register(0, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    buffer, checked = bytearray(), 0.0
    poll = 1.0  # seconds between reads of the lease deadline: the orders' own (a worker's are all alike)
    while True:
        if os.getppid() != parent:  # the worker died before the parent-death signal was set
            _kill_all(tasks)
        for fd, _ in poller.poll(1000 * (poll if tasks else 1.0)):
            if fd == wake_read:
                _drain(wake_read)
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:  # the worker closed its end: it is leaving
                _kill_all(tasks)
            buffer += chunk
            for order in _orders(buffer):
                poll = min(poll, float(order.get("poll") or poll))
                _start(order, tasks)
        _reap(tasks)
        if tasks and supervisor.time.monotonic() - checked >= poll:  # not on every order: a file read each
            checked = supervisor.time.monotonic()
            _fence(tasks)


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
