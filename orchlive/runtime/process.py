"""The process runtime: a task is a child process group, like Nomad's ``raw_exec`` driver.

Children are started in their own session (so a kill reaches the whole group) and,
where util-linux's ``setpriv`` exists, with a parent-death signal: if the worker dies,
even by ``kill -9``, its tasks die with it, and a restarted worker cannot find a stale
copy still running. (``setpriv`` rather than ``prctl`` in a ``preexec_fn``: the worker
runs gRPC threads, and Python code between fork and exec is unsafe there.) The command
runs as given (no shell); its output goes to the task's log file.

The environment is clean: only what the task declares and the ``ORCH_*`` variables of
the task (``task_environment``), never the worker's own (its tokens, its etcd address).
With no ``PATH`` declared, the program is looked up in ``os.defpath`` (``/bin:/usr/bin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal

from orchlive.runtime.base import Handle, TaskSpec, TaskStartError, task_environment

__all__ = ["ProcessHandle", "ProcessRuntime"]

_SETPRIV = shutil.which("setpriv")


class ProcessHandle:
    """A running child process group."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def wait(self) -> int:
        return await self.process.wait()

    async def kill(self) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    def describe(self) -> str:
        return f"pid {self.process.pid}"

    def failure_reason(self) -> str | None:
        return None


class ProcessRuntime:
    """Runs ``command`` directly on the worker's machine."""

    name = "process"

    def __init__(self) -> None:
        pass

    async def start(self, spec: TaskSpec) -> Handle:
        if not spec.command:
            raise TaskStartError("the process runtime needs a command")
        env = task_environment(spec)
        argv = list(spec.command)
        if _SETPRIV is not None and shutil.which(argv[0], path=env.get("PATH", os.defpath)):
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "wb") as log:
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            except OSError as err:
                raise TaskStartError(f"cannot start {spec.command[0]!r}: {err.strerror or err}") from err
        return ProcessHandle(process)

    async def orphans(self) -> dict[tuple[str, int], Handle]:
        # Children die with the worker (PR_SET_PDEATHSIG), so a new worker never inherits any.
        return {}

    async def close(self) -> None:
        return None
