"""The process runtime: a task is a child process group, like Nomad's ``raw_exec`` driver.

Every task is started and watched by the worker's launcher (``orchlive.runtime.launcher``),
one small long-lived process per worker: each task leads its own process group, and the
launcher kills the group when the worker's lease deadline passes (a frozen worker cannot
stop anything itself) or when the worker dies, even by ``kill -9`` (parent-death
signal), so a restarted worker never finds a stale copy still running. A stop from the
worker is a ``SIGKILL`` to the whole group. The command runs as given (no shell); its
output goes to the task's log file.

The environment is clean: only what the task declares and the ``ORCH_*`` variables of
the task (``task_environment``), never the worker's own (its tokens, its etcd address).
With no ``PATH`` declared, the program is looked up in ``os.defpath`` (``/bin:/usr/bin``).
With ``run_as`` (``--run-as``, ``ORCH_RUN_AS``) the task runs as that user and its
groups; the launcher stays with the worker's user, so it can always kill the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import marshal
import os
import pwd
import signal
import sys
from pathlib import Path

from orchlive.runtime import supervisor
from orchlive.runtime.base import Handle, TaskSpec, TaskStartError, task_environment

log = logging.getLogger(__name__)

__all__ = ["Launcher", "ProcessHandle", "ProcessRuntime", "check_run_as", "spawn_supervisor"]

# Seconds between the launcher's reads of the lease deadline: part of the worker's margin.
SUPERVISOR_POLL = 0.1
# Run as a script, never imported here: it puts its own directory on its sys.path.
LAUNCHER = str(Path(supervisor.__file__).with_name("launcher.py"))


def check_run_as(user: str | None) -> str | None:
    """``user`` if tasks can run as it here; ValueError (one line) if not.

    It must exist, and switching to it needs root unless it is the worker's own user.
    """
    if not user:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"no such user {user!r}") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise ValueError(f"running tasks as {user!r} needs the worker to run as root")
    return user


async def spawn_supervisor(order: dict[str, object], *, stderr: int, new_session: bool) -> asyncio.subprocess.Process:
    """Start the supervisor with ``order`` on its stdin; raises TaskStartError with its refusal."""
    order = {"poll": SUPERVISOR_POLL, **order}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        supervisor.__file__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env={},  # the task's environment goes on stdin: nothing of it may change the supervisor
        start_new_session=new_session,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(marshal.dumps(order))  # the supervisor runs this interpreter: no json to import there
    await process.stdin.drain()
    process.stdin.close()
    answer = (await process.stdout.readline()).decode().strip()
    if not answer.startswith("ok "):
        await process.wait()
        raise TaskStartError(answer.removeprefix("error ") or "the task's supervisor did not start")
    return process


def stop_reason(path: Path) -> str | None:
    """What a supervisor wrote when it stopped a task at the lease deadline (None: it did not)."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class ProcessHandle:
    """A running task: the leader of its process group, started and reaped by the launcher."""

    def __init__(self, group: int, exited: asyncio.Future[int], reason_path: Path) -> None:
        self.group = group
        self.exited = exited
        self.reason_path = reason_path

    async def wait(self) -> int:
        return await asyncio.shield(self.exited)

    async def kill(self) -> None:
        if self.exited.done():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.group, signal.SIGKILL)
        await self.wait()

    def describe(self) -> str:
        return f"pid {self.group}"

    def failure_reason(self) -> str | None:
        return self.fenced()

    def fenced(self) -> str | None:
        return stop_reason(self.reason_path)


class Launcher:
    """The worker's end of its task launcher (``orchlive.runtime.launcher``): orders out, answers in.

    Started on the first task; started again if it ever dies. Its tasks then die too: the
    worker kills the groups it knows of and reports them killed.
    """

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.starts: dict[str, asyncio.Future[int]] = {}
        self.exits: dict[str, asyncio.Future[int]] = {}
        self.groups: dict[str, int] = {}  # running tasks' process groups, by order
        self.numbers = itertools.count()
        self.reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()  # tasks started together must not start a launcher each

    async def start(self, order: dict[str, object]) -> tuple[int, asyncio.Future[int]]:
        """Send ``order``; the task's process group and a future of its exit code."""
        process = await self._running()
        assert process.stdin is not None
        name = str(next(self.numbers))
        loop = asyncio.get_running_loop()
        started, exited = self.starts[name], self.exits[name] = loop.create_future(), loop.create_future()
        blob = marshal.dumps(order | {"id": name})
        process.stdin.write(len(blob).to_bytes(4, "big") + blob)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the reader fails the start
            await process.stdin.drain()
        return await started, exited

    async def _running(self) -> asyncio.subprocess.Process:
        async with self._starting:
            if self.process is None or self.process.returncode is not None or self.reader is None or self.reader.done():
                await self._launch()
        assert self.process is not None
        return self.process

    async def _launch(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            LAUNCHER,
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={},  # nothing of the worker's environment may change the launcher or reach a task
            start_new_session=True,
        )
        self.reader = asyncio.create_task(self._read(self.process))

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                name, kind, rest = line.decode(errors="replace").rstrip("\n").split(" ", 2)
            except ValueError:  # not one of its answers: say so, and read on
                log.warning("task launcher: unexpected output %r", line[:200])
                continue
            if kind == "exit":  # always after the task's "ok"
                self.groups.pop(name, None)
                if (exited := self.exits.pop(name, None)) is not None and not exited.done():
                    exited.set_result(os.waitstatus_to_exitcode(int(rest)))  # -N: killed by N
            elif (started := self.starts.pop(name, None)) is not None and not started.done():
                if kind == "ok":
                    self.groups[name] = int(rest)
                    started.set_result(int(rest))
                else:
                    self.exits.pop(name, None)
                    started.set_exception(TaskStartError(rest))
        await process.wait()  # the launcher ended: so must what it started
        for group in self.groups.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for started in self.starts.values():
            if not started.done():
                started.set_exception(TaskStartError("the worker's task launcher stopped"))
        for exited in self.exits.values():
            if not exited.done():
                exited.set_result(-signal.SIGKILL)
        self.starts.clear()
        self.exits.clear()
        self.groups.clear()

    async def close(self) -> None:
        """Let the launcher go (it kills whatever still runs) and wait for it."""
        if self.process is not None and self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            await self.process.wait()
        if self.reader is not None:
            await self.reader


class ProcessRuntime:
    """Runs ``command`` directly on the worker's machine, each started and watched by the worker's launcher.

    Args:
        heartbeat: The worker's lease-deadline file (``Worker.heartbeat_path``); None:
            no deadline (the supervisor still ties the task to the worker's life).
        run_as: A user to run tasks as (``check_run_as``); None: the worker's user.
    """

    name = "process"

    def __init__(self, heartbeat: Path | None = None, run_as: str | None = None) -> None:
        self.heartbeat = heartbeat
        self.run_as = check_run_as(run_as)
        self.launcher = Launcher()

    async def start(self, spec: TaskSpec) -> Handle:
        if not spec.command:
            raise TaskStartError("the process runtime needs a command")
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        reason_path = spec.log_path.with_suffix(".stopped")
        reason_path.unlink(missing_ok=True)
        order = {
            "command": list(spec.command),
            "env": task_environment(spec),
            "user": self.run_as,
            "heartbeat": None if self.heartbeat is None else str(self.heartbeat),
            "reason": str(reason_path),
            "log": str(spec.log_path),
            "poll": SUPERVISOR_POLL,
        }
        try:
            group, exited = await self.launcher.start(order)
        except OSError as err:
            raise TaskStartError(f"cannot start the task's launcher: {err.strerror or err}") from err
        return ProcessHandle(group, exited, reason_path)

    async def orphans(self) -> dict[tuple[str, int], Handle]:
        # Tasks die with the worker (its launcher kills them), so a new worker never inherits any.
        return {}

    async def close(self) -> None:
        await self.launcher.close()
