"""The cluster's records: tasks, nodes, ledgers, events. Stored in etcd as JSON.

JSON shapes follow the Go orchestrator this project descends from (``id``, ``name``,
``image``, ``command``, ``env``, ``resources: {cpu, memory}``, ``state``, ``node_id``,
``creation_time``, ``start_time``, ``end_time``, ``exit_code``); the extra fields
(``attempts``, ``reason``, ``timeout``, more resource names...) are additions, never renames.
Units: cpu in millicores, memory in MiB, gpu in milli-GPU, any other resource in its
user's unit, times in UTC.

Schema families, as in the FastAPI full-stack template: ``TaskCreate`` is what a client
sends and ``Task`` what is stored and served; ``NodeRecord`` is what a worker stores and
``NodePublic`` what is served, derived by ``node_public`` (the master and the API both
call it, so they cannot disagree on a node's state).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, computed_field, field_validator, model_validator

from orchlive import devices as dev
from orchlive.devices import DeviceUse, Grant
from orchlive.limits import (
    MAX_PARENTS,
    MAX_REPLICAS,
    Command,
    Env,
    Image,
    Name,
    Priority,
    Selector,
    Timeout,
    check_amounts,
)
from orchlive.resources import RESOURCE_NAME_PATTERN, STANDARD_RESOURCES, Resources, resource_order
from orchsim.scheduling.queueing import DEFAULTS

__all__ = [
    "RESOURCE_NAME_PATTERN",
    "STANDARD_RESOURCES",
    "Event",
    "Ledger",
    "NodePublic",
    "NodeRecord",
    "NodeState",
    "Resources",
    "Task",
    "TaskCreate",
    "TaskPublic",
    "TaskState",
    "node_public",
    "now",
    "replica_id",
    "resource_order",
    "task_public_json",
]


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
    SKIPPED = "SKIPPED"  # never ran: a parent failed and it had ``if_parent_fails: skip``, or a gang's spare replica

    @property
    def terminal(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.SKIPPED)

    @property
    def holds_resources(self) -> bool:
        return self in (TaskState.ASSIGNED, TaskState.RUNNING)


class NodeState(StrEnum):
    """READY: heartbeating and schedulable; NOT_READY: lease expired; DRAINING: cordoned."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    DRAINING = "DRAINING"


ParentRef = Name  # a parent's task id or name: printable, 1-253 characters


class TaskCreate(BaseModel):
    """What a client submits (``POST /api/v1/tasks``), within the bounds of ``orchlive.limits``.

    Anything accepted can be stored and started: strings are valid UTF-8 without NUL,
    environment names are portable (no ``=``), numbers are JSON numbers, finite and
    bounded, and no resource asks for more than any worker may ever declare.
    """

    model_config = ConfigDict(extra="forbid")

    name: Name
    image: Image | None = None
    command: Command = []
    env: Env = {}
    resources: Resources = Resources()
    timeout: Timeout | None = None
    node_selector: Selector = {}
    max_attempts: Annotated[StrictInt, Field(ge=1, le=100)] = DEFAULTS.max_attempts
    priority: Priority = 0
    # A gang (``orchlive.gangs``): ``replicas`` copies placed all at once or none, at least
    # ``min_replicas`` of them (default: all), each asking ``resources``.
    replicas: Annotated[StrictInt, Field(ge=1, le=MAX_REPLICAS)] = 1
    min_replicas: Annotated[StrictInt, Field(ge=1, le=MAX_REPLICAS)] | None = None
    # Dependencies (``orchlive.dependencies``): ids or names of the tasks this one waits for.
    after: Annotated[list[ParentRef], Field(max_length=MAX_PARENTS)] = []
    on: Literal["success", "completion"] = "success"
    if_parent_fails: Literal["fail", "skip"] = "fail"

    @field_validator("resources")
    @classmethod
    def _bounded(cls, resources: Resources) -> Resources:
        check_amounts(resources)
        dev.check_amount(dev.GPU, resources.get(dev.GPU, 0))  # a share of one GPU or whole GPUs
        return resources

    @model_validator(mode="after")
    def _gang(self) -> TaskCreate:
        if self.min_replicas is not None and self.min_replicas > self.replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed replicas ({self.replicas})")
        return self


class Task(TaskCreate):
    """A task as stored and served.

    Loaded as stored, without the submission bounds: a record written before a bound
    existed must still load (a master that cannot read a task cannot schedule at all).
    """

    model_config = ConfigDict(extra="ignore")

    name: str
    image: str | None = None
    command: list[str] = []
    env: dict[str, str] = {}
    timeout: float | None = None
    node_selector: dict[str, str] = {}
    max_attempts: int = DEFAULTS.max_attempts
    priority: int = 0
    replicas: int = 1
    min_replicas: int | None = None
    after: list[str] = []  # parent task ids, resolved at submission

    @field_validator("resources")
    @classmethod
    def _bounded(cls, resources: Resources) -> Resources:
        return resources

    @model_validator(mode="after")
    def _gang(self) -> Task:
        return self

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: TaskState = TaskState.PENDING
    node_id: str | None = None
    creation_time: datetime = Field(default_factory=now)
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    attempts: int = 0
    reason: str | None = None
    # The devices of its placement, {kind: indices on node_id}: set by the master with
    # ASSIGNED, cleared when the task goes back to PENDING, kept once it has ended.
    devices: dict[str, list[int]] = {}
    # A gang replica: the gang's id (its replica 0's task id) and this replica's index.
    gang: str | None = None
    replica: int = 0
    dag: str | None = None  # the DAG it belongs to (``GET /api/v1/dags/{dag}``), None outside any
    # Evicted on purpose (drain, preemption, a gang requeued): the node whose copy must confirm
    # it stopped before the task is placed again (``orchlive.stopping``); None otherwise.
    stopping: str | None = None
    # When it last joined the queue for a reason of its own: its eviction for a higher
    # priority, so a victim waits behind the tasks queued before it (as kube-scheduler re-adds
    # a pod; in front, it would take the next free room and be the next victim). None: its
    # creation. A task lost with its node keeps it. The queue's order (``cache.queue_key``),
    # the simulator's too (``Simulation.requeue``).
    queued_since: datetime | None = None

    @property
    def queue_time(self) -> datetime:
        """Its place in its priority's queue: ``queued_since``, else its creation."""
        return self.queued_since or self.creation_time

    @property
    def gang_size(self) -> tuple[int, int] | None:
        """``(replicas, min_replicas)`` of a gang, None for a single task (the core's ``Gang``)."""
        if self.replicas <= 1:
            return None
        return self.replicas, self.min_replicas or self.replicas

    def replica_ids(self) -> list[str]:
        """The ids of every replica of its gang (replica 0's id is the gang's), or just its own."""
        if self.gang is None:
            return [self.id]
        return [self.gang] + [replica_id(self.gang, i) for i in range(1, self.replicas)]


def replica_id(gang: str, replica: int) -> str:
    """Replica ``replica``'s task id in gang ``gang`` (replica 0 carries the gang's id itself)."""
    return gang if replica == 0 else f"{gang}-{replica}"


class TaskPublic(BaseModel):
    """A task as the API serves it and events carry it: the stored ``Task`` with env names, never values.

    Environment values are often secrets (``DB_PASSWORD``); they stay in etcd, for the
    worker, and leave the cluster only into the task's own environment. ``env_names``
    (sorted) says which variables the task sets.
    """

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    image: str | None = None
    command: list[str] = []
    env_names: list[str] = []
    resources: Resources = Resources()
    timeout: float | None = None
    node_selector: dict[str, str] = {}
    max_attempts: int = DEFAULTS.max_attempts
    priority: int = 0
    state: TaskState
    node_id: str | None = None
    creation_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    attempts: int = 0
    reason: str | None = None
    devices: dict[str, list[int]] = {}
    replicas: int = 1
    min_replicas: int | None = None
    gang: str | None = None
    replica: int = 0
    after: list[str] = []
    on: str = "success"
    queued_since: datetime | None = None
    if_parent_fails: str = "fail"
    dag: str | None = None
    stopping: str | None = None

    @classmethod
    def of(cls, task: Task) -> TaskPublic:
        fields = {name: getattr(task, name) for name in cls.model_fields if name != "env_names"}
        return cls.model_construct(**fields, env_names=sorted(task.env))


# What an event shows of a task's command (characters, all arguments together).
EVENT_COMMAND_CHARS = 1024
_PUBLIC_FIELDS = frozenset(name for name in TaskPublic.model_fields if name != "env_names")  # a task's, as named


def task_public_json(task: Task) -> dict[str, Any]:
    """What an event says of a task: ``TaskPublic.of(task)``, its command cut to ``EVENT_COMMAND_CHARS``.

    An event is written in the same transaction as the task itself, and etcd refuses a
    transaction over 1.5 MiB: a task record of 800 KB (one written before the submission
    limits) plus an event repeating it could never be placed, and would hold up the
    queue for ever. Cut commands end with ``...`` and the event says ``command_cut``; the
    task's record (``GET /api/v1/tasks/{id}``) has all of it.
    """
    body = task.model_dump(mode="json", include=_PUBLIC_FIELDS)  # ``TaskPublic.of``'s fields, in one dump
    body["env_names"] = sorted(task.env)
    if sum(len(arg) for arg in task.command) > EVENT_COMMAND_CHARS:
        left, cut = EVENT_COMMAND_CHARS, []
        for arg in task.command:
            if left <= 0:
                break
            cut.append(arg if len(arg) <= left else arg[:left] + "...")
            left -= len(arg)
        body["command"], body["command_cut"] = cut, True
    return body


class NodeRecord(BaseModel):
    """A worker as stored at ``PREFIX/nodes/<node>``: what it declared when it registered, and the cordon flag.

    The worker (registration), a drain or uncordon, and the master at a loss (the last
    heartbeat it saw) write it; everything that changes with the
    cluster (state, allocation, tasks) is derived, in ``NodePublic``. Records of earlier
    versions, which stored the derived fields too, load unchanged (extra keys are ignored).
    """

    model_config = ConfigDict(extra="ignore")

    id: str
    address: str = ""
    runtime: str = "process"
    capacity: Resources
    devices: dict[str, int] = {}  # devices per kind (``orchlive.devices``); capacity[kind] is count x 1000
    labels: dict[str, str] = {}
    registered_time: datetime = Field(default_factory=now)
    last_heartbeat: datetime | None = None
    cordoned: bool = False
    # Which worker holds the name: a token kept in its data dir. Another worker (another data
    # dir) registering the same name while this one's lease lives is refused, not merged.
    instance: str = ""


class NodePublic(NodeRecord):
    """A node as served (API, events, metrics): the record and what its heartbeat and ledger say.

    ``capacity``, ``allocated`` and ``free`` name the same resources: every one the worker offers.
    ``device_use`` shows each device (per kind): its capacity, what is used and by which tasks.
    """

    state: NodeState = NodeState.READY
    allocated: Resources = Resources()
    tasks: list[str] = []
    device_use: dict[str, list[DeviceUse]] = {}

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


def node_public(
    record: NodeRecord, ledger: Ledger, tasks: Iterable[str], *, alive: bool, heartbeat: datetime | None = None
) -> NodePublic:
    """The one derivation of a node's public view, used by the master and the API alike.

    Args:
        record: the node as stored.
        ledger: its allocation ledger (empty if it has none yet).
        tasks: the ids of the tasks placed on it (its inbox keys: the ledger keeps only a count).
        alive: whether its heartbeat key exists (its lease lives): NOT_READY if not,
            DRAINING if cordoned, READY otherwise.
        heartbeat: the time of its last beat, when known; else the record's.
    """
    state = NodeState.NOT_READY if not alive else NodeState.DRAINING if record.cordoned else NodeState.READY
    fields = dict(record) | {"last_heartbeat": heartbeat or record.last_heartbeat}
    return NodePublic(
        **fields,
        state=state,
        allocated=ledger.on(record.capacity),
        tasks=list(tasks),
        device_use=dev.device_use(record.devices, ledger.devices),
    )


# Float amounts (any resource but cpu and memory may be fractional) are summed and later
# subtracted by the very same numbers; what drift is left is a few ulps, read as 0.
_DRIFT = 1e-9


@dataclass
class Ledger:
    """What is allocated on one node: an amount per resource name, how many tasks hold them, their devices.

    Stored as ``{"allocated": {"cpu": 500, "memory": 256, "gpu": 1000}, "count": 3,
    "devices": {"gpu": {"<task>": {"ids": [2], "share": 500}}}}`` (``devices`` only when a
    task holds some). Its size does not grow with the tasks it counts (devices aside, which
    the devices' capacity bounds): every placement and every release reads, copies and
    writes it whole, so a list of task ids here made each cost grow with the node's backlog.
    Which tasks hold a node is its inbox (``PREFIX/assign/<node>/``), written in the same
    transactions. ``add`` and ``remove`` trust their caller: each transition compares the
    task's own revision in the transaction that moves the ledger, so a task is added once
    and released once. Earlier layouts (a ``"tasks"`` list; before that fixed
    ``{"cpu", "memory", "gpu", "tasks"}`` keys) still load. ``add`` refuses devices past
    their capacity (``DeviceConflictError``).
    """

    allocated: dict[str, int | float] = field(default_factory=dict)
    count: int = 0
    devices: dict[str, dict[str, Grant]] = field(default_factory=dict)  # kind -> task id -> grant

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        if "allocated" in data:
            amounts = dict(data["allocated"])
        else:  # written before resources had names: every key but "tasks" is an amount
            amounts = {name: amount for name, amount in data.items() if name != "tasks"}
        grants = {
            kind: {task_id: Grant.from_json(grant) for task_id, grant in held.items()}
            for kind, held in dict(data.get("devices", {})).items()
        }
        count = data["count"] if "count" in data else len(data.get("tasks", []))
        return cls(amounts, int(count), grants)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"allocated": dict(self.allocated), "count": self.count}
        if self.devices:
            body["devices"] = {
                kind: {task_id: grant.to_json() for task_id, grant in held.items()}
                for kind, held in self.devices.items()
            }
        return body

    def copy(self) -> Ledger:
        return Ledger(dict(self.allocated), self.count, {kind: dict(h) for kind, h in self.devices.items()})

    def add(self, task: Task) -> None:
        """Count ``task``'s request (and its devices) on this node; nothing changes if a device cannot hold it.

        Raises:
            DeviceConflictError: a device would hold more than its capacity, or the task's
                devices do not match its request.
        """
        grants = {kind: dev.grant_for(kind, task.resources.get(kind, 0), ids) for kind, ids in task.devices.items()}
        for kind, grant in grants.items():
            dev.check_grant(kind, self.devices.get(kind, {}), grant)
        for kind, grant in grants.items():
            self.devices.setdefault(kind, {})[task.id] = grant
        for name, amount in task.resources.items():
            if amount:
                self.allocated[name] = self.allocated.get(name, 0) + amount
        self.count += 1

    def remove(self, task: Task) -> None:
        """Give ``task``'s request (and its devices) back; the caller knows the task holds them here.

        A ledger that counts no task has nothing to give back, and no amount goes below 0:
        a task written ASSIGNED without its ledger (a faulty writer) cannot free others' room.
        """
        if self.count <= 0:
            return
        for name, amount in task.resources.items():
            if amount:
                left = self.allocated.get(name, 0) - amount
                self.allocated[name] = 0 if left < _DRIFT else left
        for kind in list(self.devices):
            self.devices[kind].pop(task.id, None)
            if not self.devices[kind]:
                del self.devices[kind]
        self.count = max(self.count - 1, 0)

    def on(self, capacity: Resources) -> Resources:
        """The allocation as Resources naming every resource of ``capacity`` (0 where nothing is held)."""
        amounts = dict.fromkeys(capacity, 0) | {name: max(amount, 0) for name, amount in self.allocated.items()}
        return Resources.model_validate(amounts)


class Event(BaseModel):
    """A cluster event; ``id`` is ``revision * 1000 + index`` of the transaction that recorded it (``event_ids``)."""

    id: int = 0
    type: str
    object: dict[str, Any]
    timestamp: datetime = Field(default_factory=now)
