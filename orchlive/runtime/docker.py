"""The docker runtime: each task is a container with its CPU and memory limits enforced.

The only module that imports the docker SDK. Containers carry labels that tie them to
their task, placement and node (``orch.task``, ``orch.attempt``, ``orch.node``), so a
restarted worker can find them again: it adopts those still wanted and removes the
rest. An image is pulled only if it is not already present; a missing image that
cannot be pulled fails the task with that reason instead of leaving it stuck, as does a
task without an image (a process worker's task, placed here).

GPUs: on a node with real GPUs (``gpus=True``, or detected by ``nvidia-smi``) a task's
assigned GPUs are requested by id (``DeviceRequest(device_ids=[...], capabilities=[["gpu"]])``,
what ``docker run --gpus '"device=0,1"'`` sends); the container then sees only those,
numbered from 0, so ``CUDA_VISIBLE_DEVICES`` (host indices) is left out and ``ORCH_DEVICES``
keeps the host's. Without real GPUs the variables are set as the process runtime sets them.

At most one copy: each container gets a supervisor (``orchlive.runtime.supervisor`` in
docker mode), a process outside the worker that kills the container through the engine's
API once the worker's lease deadline (``heartbeat``) has passed, so that a frozen worker's
containers stop before the master reruns them elsewhere. The container is created, its
supervisor started, and only then the container started: none runs unsupervised. The
supervisor outlives a worker restart, as the container does; an adopted container gets a
new one as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import DeviceRequest

from orchlive.devices import GPU, detect_devices
from orchlive.runtime.base import Handle, TaskSpec, TaskStartError, task_environment
from orchlive.runtime.process import spawn_supervisor, stop_reason

__all__ = ["DockerHandle", "DockerRuntime"]

LABEL_TASK, LABEL_ATTEMPT, LABEL_NODE = "orch.task", "orch.attempt", "orch.node"


class DockerHandle:
    """A task's container."""

    def __init__(
        self,
        container: Any,
        log_path: Any = None,
        supervisor: asyncio.subprocess.Process | None = None,
        reason_path: Path | None = None,
    ) -> None:
        self.container = container
        self.log_path = log_path
        self.supervisor = supervisor
        self.reason_path = reason_path
        self.reason: str | None = None

    async def wait(self) -> int:
        result = await asyncio.to_thread(self.container.wait)
        code = int(result.get("StatusCode", -1))
        await asyncio.to_thread(self.container.reload)
        state = self.container.attrs.get("State", {})
        if state.get("OOMKilled"):
            limit = self.container.attrs.get("HostConfig", {}).get("Memory", 0) // (1024 * 1024)
            self.reason = f"OOMKilled: the container exceeded its {limit} MiB memory limit (exit {code})"
        if self.log_path is not None:
            logs = await asyncio.to_thread(self.container.logs, stdout=True, stderr=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_bytes(logs)
        await self._remove()
        return code

    def failure_reason(self) -> str | None:
        return self.fenced() or self.reason

    def fenced(self) -> str | None:
        return None if self.reason_path is None else stop_reason(self.reason_path)

    async def kill(self) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            await asyncio.to_thread(self.container.kill)
        await self._remove()

    async def _remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            await asyncio.to_thread(self.container.remove, force=True)
        if self.supervisor is not None and self.supervisor.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.supervisor.send_signal(signal.SIGTERM)  # the container is gone: nothing left to guard
            await self.supervisor.wait()

    def describe(self) -> str:
        return f"container {self.container.short_id}"


class DockerRuntime:
    """Runs tasks as containers on the local Docker engine (through its socket)."""

    name = "docker"

    def __init__(
        self,
        node_id: str = "",
        network: str = "none",
        client: Any = None,
        gpus: bool | None = None,
        heartbeat: Path | None = None,
    ) -> None:
        """``heartbeat``: the worker's lease-deadline file; None: containers are not supervised."""
        if network not in ("none", "host"):
            raise ValueError(f"docker network mode must be 'none' or 'host', got {network!r}")
        self.node_id = node_id
        self.network = network
        self.gpus = bool(detect_devices().get(GPU)) if gpus is None else gpus  # real GPUs to request
        self.heartbeat = heartbeat
        # What docker.from_env used: the supervisor talks to the same engine.
        self.docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        try:
            self.client = client or docker.from_env()
            self.client.ping()
        except docker.errors.DockerException as err:
            raise TaskStartError(f"cannot reach the Docker engine: {err}") from err

    async def _ensure_image(self, image: str) -> None:
        try:
            await asyncio.to_thread(self.client.images.get, image)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            await asyncio.to_thread(self.client.images.pull, image)
        except docker.errors.DockerException as err:
            raise TaskStartError(f"image {image!r} is not present and could not be pulled: {err}") from err

    def _gpu_options(self, spec: TaskSpec, env: dict[str, str]) -> dict[str, Any]:
        """The device request for the task's GPUs on a node with real ones (and the env without host indices)."""
        grant = spec.devices.get(GPU)
        if not self.gpus or grant is None:
            return {"environment": env}
        env = {k: v for k, v in env.items() if k != "CUDA_VISIBLE_DEVICES"}
        ids = [str(i) for i in grant.ids]
        return {"environment": env, "device_requests": [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]}

    async def start(self, spec: TaskSpec) -> Handle:
        if not spec.image:
            raise TaskStartError("the docker runtime needs an image; this task has none")
        await self._ensure_image(spec.image)
        options: dict[str, Any] = {
            "command": spec.command or None,
            **self._gpu_options(spec, task_environment(spec)),
            "labels": {LABEL_TASK: spec.task_id, LABEL_ATTEMPT: str(spec.attempt), LABEL_NODE: self.node_id},
            "name": f"orch-{self.node_id}-{spec.task_id}-{spec.attempt}",
            "network_mode": self.network,
        }
        if spec.cpu_millis:
            options["nano_cpus"] = spec.cpu_millis * 1_000_000  # 1000 millicores = 1e9 nano-CPUs
        if spec.memory_mib:
            options["mem_limit"] = f"{spec.memory_mib}m"
            options["memswap_limit"] = f"{spec.memory_mib}m"  # no swap beyond the limit
        try:
            container = await asyncio.to_thread(self.client.containers.create, spec.image, **options)
            reason_path = spec.log_path.with_suffix(".stopped")
            supervisor = await self._supervise(container, reason_path)
            await asyncio.to_thread(container.start)
        except docker.errors.DockerException as err:
            raise TaskStartError(f"cannot start container: {err}") from err
        return DockerHandle(container, spec.log_path, supervisor, reason_path)

    async def _supervise(self, container: Any, reason_path: Path) -> asyncio.subprocess.Process | None:
        """Start the container's supervisor (``orchlive.runtime.supervisor``); None without a heartbeat file."""
        if self.heartbeat is None:
            return None
        reason_path.parent.mkdir(parents=True, exist_ok=True)
        reason_path.unlink(missing_ok=True)
        order = {
            "docker": {"host": self.docker_host, "container": container.id},
            "heartbeat": str(self.heartbeat),
            "reason": str(reason_path),
        }
        # Its own session: it must outlive the worker, as the container does (adoption).
        return await spawn_supervisor(order, stderr=asyncio.subprocess.DEVNULL, new_session=True)

    async def orphans(self) -> dict[tuple[str, int], Handle]:
        """Containers this node started before a restart, by (task id, attempt)."""
        containers = await asyncio.to_thread(
            self.client.containers.list, all=True, filters={"label": f"{LABEL_NODE}={self.node_id}"}
        )
        found: dict[tuple[str, int], Handle] = {}
        for container in containers:
            labels = container.labels
            task, attempt = labels[LABEL_TASK], int(labels[LABEL_ATTEMPT])
            # Beside the log the worker will give it (``Worker._log_path``), as for a new start.
            reason_path = None
            if self.heartbeat is not None:
                reason_path = self.heartbeat.parent / "logs" / f"{task}-{attempt}.stopped"
            supervisor = None if reason_path is None else await self._supervise(container, reason_path)
            found[(task, attempt)] = DockerHandle(container, None, supervisor, reason_path)
        return found

    async def close(self) -> None:
        self.client.close()
