"""The runtime protocol the worker drives; the worker never knows which backend runs a task."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from orchlive.devices import Grant, environment

__all__ = ["Handle", "Runtime", "TaskSpec", "TaskStartError", "exit_reason", "log_tail", "task_environment"]


class TaskStartError(Exception):
    """A task that could not be started (bad command, missing image); the message is the reason."""


@dataclass(frozen=True)
class TaskSpec:
    """What a runtime needs to run one placement of a task.

    Attributes:
        task_id: The task's id (containers and process groups are labelled with it).
        attempt: The placement number, so a rerun never collides with a previous run.
        image: Container image (ignored by the process runtime, as by Nomad's raw_exec;
            the docker runtime fails a task without one).
        command: Program and arguments.
        env: The task's environment variables (the runtime adds ``task_environment``'s).
        cpu_millis: CPU limit in millicores (enforced by the docker runtime).
        memory_mib: Memory limit in MiB (enforced by the docker runtime).
        log_path: Where the task's combined stdout and stderr go.
        devices: The devices the master assigned, per kind (``orchlive.devices.Grant``).
        node_has_gpus: The node has GPUs: a task without any must not see them.
    """

    task_id: str
    attempt: int
    image: str | None
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cpu_millis: int = 0
    memory_mib: int = 0
    log_path: Path = Path("/dev/null")
    devices: Mapping[str, Grant] = field(default_factory=dict)
    node_has_gpus: bool = False


def task_environment(spec: TaskSpec) -> dict[str, str]:
    """A task's whole environment: what it declares, ``ORCH_TASK_ID``, ``ORCH_ATTEMPT`` and its devices.

    Nothing of the worker's own environment: it may hold credentials the task must not see.
    (Submissions cannot declare ``ORCH_*`` names, so these are always orchlive's.) Devices:
    ``ORCH_DEVICES`` and ``CUDA_VISIBLE_DEVICES`` (``orchlive.devices.environment``); the
    task's own ``CUDA_VISIBLE_DEVICES``, if it sets one, is replaced on a node with GPUs.
    """
    devices = environment(spec.devices, node_has_gpus=spec.node_has_gpus)
    return {**spec.env, "ORCH_TASK_ID": spec.task_id, "ORCH_ATTEMPT": str(spec.attempt), **devices}


class Handle(Protocol):
    """A running task."""

    async def wait(self) -> int:
        """Wait for the end; returns the exit code (negative: killed by that signal)."""
        ...

    async def kill(self) -> None:
        """Stop it now (idempotent)."""
        ...

    def describe(self) -> str:
        """A short id for logs (pid, container id)."""
        ...

    def failure_reason(self) -> str | None:
        """After ``wait``: why the runtime ended it (e.g. out of memory), if it knows."""
        ...

    def fenced(self) -> str | None:
        """After ``wait``: why its supervisor stopped it at the worker's lease deadline, if it did.

        Such a task did not fail: the worker sends it back to the queue.
        """
        ...


class Runtime(Protocol):
    """Starts tasks and finds the ones a previous worker incarnation left behind."""

    name: str

    async def start(self, spec: TaskSpec) -> Handle:
        """Start the task; raises TaskStartError with the reason if it cannot start."""
        ...

    async def orphans(self) -> dict[tuple[str, int], Handle]:
        """Tasks still running from before a worker restart, by (task id, attempt)."""
        ...

    async def close(self) -> None: ...


def exit_reason(code: int) -> str:
    """A failed task's reason: its exit code, or the signal that killed it (runtimes report -N)."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"killed by {name} (exit code {code})"


def log_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a task's output: what etcd keeps of it, however much it printed."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read(limit)
    except OSError:
        return b""
