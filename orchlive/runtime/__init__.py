"""Task runtimes behind one small protocol: ``process`` (like Nomad's raw_exec) and ``docker``."""

from __future__ import annotations

from orchlive.runtime.base import Handle, Runtime, TaskSpec, TaskStartError, exit_reason, log_tail

__all__ = ["Handle", "Runtime", "TaskStartError", "TaskSpec", "exit_reason", "log_tail", "make_runtime"]


def make_runtime(name: str, **options: object) -> Runtime:
    """The runtime called ``name``; an unknown name raises ValueError listing the known ones."""
    if name == "process":
        from orchlive.runtime.process import ProcessRuntime

        return ProcessRuntime(**options)  # type: ignore[arg-type]
    if name == "docker":
        from orchlive.runtime.docker import DockerRuntime

        return DockerRuntime(**options)  # type: ignore[arg-type]
    raise ValueError(f"unknown runtime {name!r}; known runtimes: process, docker")
