"""The cluster's records: tasks, nodes, events. Stored in etcd as JSON, served by the API as-is.

JSON shapes follow the Go orchestrator this project descends from (``id``, ``name``,
``image``, ``command``, ``env``, ``resources: {cpu, memory}``, ``state``, ``node_id``,
``creation_time``, ``start_time``, ``end_time``, ``exit_code``); the extra fields
(``attempts``, ``reason``, ``timeout``...) are additions, never renames.
Units: cpu in millicores, memory in MiB, gpu in milli-GPU, times in UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

__all__ = [
    "Event",
    "Node",
    "NodeState",
    "Resources",
    "Task",
    "TaskCreate",
    "TaskState",
    "now",
]

NonNegative = Annotated[StrictInt, Field(ge=0)]


def now() -> datetime:
    """The current UTC time (the one clock every record uses)."""
    return datetime.now(UTC)


class TaskState(StrEnum):
    """Task lifecycle, as in the Go orchestrator."""

    PENDING = "PENDING"
    ASSIGNED = "ASSIGNED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED)

    @property
    def holds_resources(self) -> bool:
        return self in (TaskState.ASSIGNED, TaskState.RUNNING)


class NodeState(StrEnum):
    """READY: heartbeating and schedulable; NOT_READY: lease expired; DRAINING: cordoned."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    DRAINING = "DRAINING"


class Resources(BaseModel):
    """Requested or offered resources: whole millicores, MiB and milli-GPU (integers, >= 0)."""

    model_config = ConfigDict(extra="forbid")

    cpu: NonNegative = 0
    memory: NonNegative = 0
    gpu: NonNegative = 0

    def as_request(self) -> dict[str, float]:
        return {"cpu": float(self.cpu), "memory": float(self.memory), "gpu": float(self.gpu)}


class TaskCreate(BaseModel):
    """What a client submits (``POST /api/v1/tasks``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=253)
    image: str = Field(min_length=1)
    command: list[str] = []
    env: dict[str, str] = {}
    resources: Resources = Resources()
    timeout: float | None = Field(default=None, gt=0, description="seconds; the worker kills the task past it")
    node_selector: dict[str, str] = {}
    max_attempts: int = Field(default=3, ge=1, le=100)


class Task(TaskCreate):
    """A task as stored and served."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: TaskState = TaskState.PENDING
    node_id: str | None = None
    creation_time: datetime = Field(default_factory=now)
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    attempts: int = 0
    reason: str | None = None


class Node(BaseModel):
    """A worker as stored (``state`` is derived from its heartbeat by the master)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    address: str = ""
    runtime: str = "process"
    state: NodeState = NodeState.READY
    capacity: Resources
    allocated: Resources = Resources()
    labels: dict[str, str] = {}
    registered_time: datetime = Field(default_factory=now)
    last_heartbeat: datetime | None = None
    cordoned: bool = False
    tasks: list[str] = []


class Event(BaseModel):
    """A cluster event; ``id`` is the etcd revision that recorded it (ordered, resumable)."""

    id: int = 0
    type: str
    object: dict[str, Any]
    timestamp: datetime = Field(default_factory=now)
