"""A worker's task launcher: one long-lived process that forks each task's supervisor.

Why: a supervisor started as its own interpreter (``python -I -S supervisor.py``) costs
about 12 ms of CPU per task, several times what the worker spends on the task's
bookkeeping; under load that CPU is taken from the master and etcd on the same machine.
The launcher starts once per worker and ``fork``s: the child is exactly the per-task
supervisor of ``supervisor.supervise_process`` (it leads a new session, kills the task's
group at the lease deadline or when its parent dies, and exits as the task did), for
well under a millisecond of CPU.

Run as ``python -I -S launcher.py`` (standard library only, like the supervisor it loads
from this directory). The worker writes orders on stdin, each a 4-byte big-endian length
and a ``marshal``-encoded dict: the supervisor's order plus ``"id"`` (the worker's name
for it) and ``"log"`` (the task's log file, truncated). It answers lines on stdout::

    ID ok GROUP PID        the task runs: its supervisor leads process group GROUP
    ID error MESSAGE       it could not start (nothing runs)
    ID exit STATUS         the supervisor ended (raw wait status: the task's own)

Nothing outlives the worker: the launcher kills every task's group and leaves when its
stdin closes or the worker dies (parent-death signal, and a check of its parent), and
each supervisor kills its task if the launcher dies first.
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


def say(line: str) -> None:
    """One answer line to the worker (one ``write`` under PIPE_BUF: never interleaved)."""
    os.write(1, (line[:LINE_LIMIT].replace("\n", " ") + "\n").encode(errors="replace"))


def _supervise(order: dict[str, Any], launcher: int, closing: list[int]) -> None:
    """In the forked child: become the task's supervisor (never returns)."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in closing:
            os.close(fd)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 2)
        os.close(log)
        supervisor.supervise_process(order | {"parent": launcher})
    except BaseException as err:  # nothing may return into the launcher's loop
        detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        say(f"{order.get('id')} error cannot start the task's supervisor: {detail}")
    os._exit(127)


def _kill_all(groups: dict[int, str]) -> None:
    """SIGKILL to every task's group, then leave."""
    for group in groups:
        try:  # noqa: SIM105 - no contextlib here (see the supervisor's docstring)
            os.killpg(group, signal.SIGKILL)
        except OSError:  # ended already
            pass
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


def _reap(groups: dict[int, str]) -> None:
    """Report every supervisor that ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if (name := groups.pop(pid, None)) is not None:
            say(f"{name} exit {status}")


def serve(parent: int) -> None:
    """Fork a supervisor for each order until stdin closes or the worker dies."""
    launcher, groups = os.getpid(), {}
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears of it
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: _kill_all(groups))
    supervisor._set_parent_death_signal(signal.SIGTERM)
    poller = select.poll()
    poller.register(0, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    buffer = bytearray()
    while True:
        if os.getppid() != parent:  # the worker died before the parent-death signal was set
            _kill_all(groups)
        for fd, _ in poller.poll(1000):
            if fd == wake_read:
                while True:
                    try:
                        os.read(wake_read, 512)
                    except BlockingIOError:
                        break
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:  # the worker closed its end: it is leaving
                _kill_all(groups)
            buffer += chunk
            for order in _orders(buffer):
                pid = os.fork()
                if pid == 0:
                    _supervise(order, launcher, [wake_read, wake_write])
                groups[pid] = order["id"]
        _reap(groups)


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())
