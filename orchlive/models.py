"""The cluster's records: tasks, nodes, events. Stored in etcd as JSON, served by the API as-is.

JSON shapes follow the Go orchestrator this project descends from (``id``, ``name``,
``image``, ``command``, ``env``, ``resources: {cpu, memory}``, ``state``, ``node_id``,
``creation_time``, ``start_time``, ``end_time``, ``exit_code``); the extra fields
(``attempts``, ``reason``, ``timeout``, more resource names...) are additions, never renames.
Units: cpu in millicores, memory in MiB, gpu in milli-GPU, any other resource in its
user's unit, times in UTC.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    computed_field,
    model_validator,
)

from orchsim.scheduling.queueing import DEFAULTS

__all__ = [
    "RESOURCE_NAME_PATTERN",
    "STANDARD_RESOURCES",
    "Event",
    "Node",
    "NodeState",
    "Resources",
    "Task",
    "TaskCreate",
    "TaskState",
    "now",
    "resource_order",
]

NonNegative = Annotated[StrictInt, Field(ge=0)]
# Resource names beyond cpu and memory: lower case, so that "GPU" and "gpu" cannot be two resources.
RESOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_.-]*$"
ResourceName = Annotated[str, StringConstraints(pattern=RESOURCE_NAME_PATTERN, max_length=63)]
# An amount of any other resource: a JSON number (never a string or a bool), finite, >= 0.
# Integers stay integers, so {"gpu": 4000} is served back as 4000, not 4000.0.
Amount = Annotated[
    StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)],
    Field(ge=0),
    WithJsonSchema({"type": "number", "minimum": 0}),
]
# The resources with a unit fixed by the project, first in every matrix (in the simulator's
# order, so that live and simulated matrices list their rows alike).
STANDARD_RESOURCES = ("cpu", "memory", "gpu")


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


def resource_order(names: Iterable[str]) -> tuple[str, ...]:
    """Resource names in matrix row order: cpu, memory, gpu (those present), then the rest sorted."""
    unique = set(names)
    return tuple(r for r in STANDARD_RESOURCES if r in unique) + tuple(sorted(unique - set(STANDARD_RESOURCES)))


class Resources(BaseModel, Mapping[str, int | float]):
    """Requested or offered resources: a mapping of resource name to amount.

    ``cpu`` (millicores) and ``memory`` (MiB) are always present: whole numbers >= 0,
    0 by default. Any other name matching ``RESOURCE_NAME_PATTERN`` may be added with a
    finite amount >= 0: ``gpu`` in milli-GPU, the others in their user's unit. The JSON
    is one flat object, ``{"cpu": 500, "memory": 256, "gpu": 1000}``, so the fixed
    ``{cpu, memory, gpu}`` records of earlier versions load unchanged.

    Iterating yields the names (cpu, memory, then the others as given); ``r["gpu"]``
    raises KeyError for a resource not named, ``r.get("gpu", 0)`` does not.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"propertyNames": {"pattern": RESOURCE_NAME_PATTERN}})

    cpu: NonNegative = 0
    memory: NonNegative = 0
    __pydantic_extra__: dict[ResourceName, Amount] = Field(init=False)

    @model_validator(mode="after")
    def _check_others(self) -> Resources:
        # The annotation above already says this, but pydantic checks the keys of typed
        # extras only from 2.11 on (and 2.13 skips them when parsing JSON): say it again.
        for name, amount in self._others().items():
            if len(name) > 63 or not re.fullmatch(RESOURCE_NAME_PATTERN, name):
                raise ValueError(f"resource name {name!r} must match {RESOURCE_NAME_PATTERN} (at most 63 characters)")
            if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount < math.inf:
                raise ValueError(f"resource {name}: the amount must be a finite number >= 0, got {amount!r}")
        return self

    def _others(self) -> dict[str, int | float]:
        return self.__pydantic_extra__ or {}

    def __getitem__(self, name: str) -> int | float:
        if name == "cpu":
            return self.cpu
        if name == "memory":
            return self.memory
        return self._others()[name]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # names, as a Mapping does
        yield "cpu"
        yield "memory"
        yield from self._others()

    def __len__(self) -> int:
        return 2 + len(self._others())

    def as_request(self) -> dict[str, float]:
        """``{name: amount}`` as floats, the request ``orchsim.scheduling.select`` takes."""
        return {name: float(amount) for name, amount in self.items()}


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
    max_attempts: int = Field(default=DEFAULTS.max_attempts, ge=1, le=100)


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
    """A worker as stored (``state`` is derived from its heartbeat by the master).

    ``capacity`` names every resource the worker offers; ``allocated`` (filled in from the
    node's ledger when served) and ``free`` name the same resources.
    """

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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def free(self) -> Resources:
        """Capacity minus allocation, for every resource of the node (never below 0)."""
        allocated = self.allocated
        return Resources.model_validate(
            {name: _minus(amount, allocated.get(name, 0)) for name, amount in self.capacity.items()}
        )


def _minus(have: int | float, used: int | float) -> int | float:
    left = have - used
    return left if left > 0 else 0


class Event(BaseModel):
    """A cluster event; ``id`` is the etcd revision that recorded it (ordered, resumable)."""

    id: int = 0
    type: str
    object: dict[str, Any]
    timestamp: datetime = Field(default_factory=now)
