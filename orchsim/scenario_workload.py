"""Scenario schema, part one: distributions, the cluster's nodes and the workload sources."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, model_validator

from orchsim.scheduling.dependencies import CycleError, topological_order
from orchsim.schema_base import (
    STRICT,
    Amount,
    Capacity,
    NonNegativeFloat,
    PositiveAmount,
    PositiveFloat,
    amount_of,
    checked_amount,
    resource_amount,
)

__all__ = [
    "MAX_PRIORITY",
    "Burst",
    "Choice",
    "Cluster",
    "Constant",
    "CsvTrace",
    "Distribution",
    "Diurnal",
    "Exponential",
    "LogNormal",
    "NodeGroup",
    "NodeRecording",
    "NodeSpec",
    "NodeTrace",
    "OpenbTrace",
    "OrchliveRecording",
    "Poisson",
    "SwfTrace",
    "Uniform",
    "WorkloadSource",
    "check_dependencies",
]


class _Strict(BaseModel):
    model_config = STRICT


# --------------------------------------------------------------------- distributions
class Constant(_Strict):
    """Always ``value``."""

    dist: Literal["constant"]
    value: Amount


class Uniform(_Strict):
    """Uniform on ``[low, high]``."""

    dist: Literal["uniform"]
    low: Amount
    high: Amount

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


class Exponential(_Strict):
    """Exponential with the given ``mean``."""

    dist: Literal["exponential"]
    mean: PositiveAmount


class LogNormal(_Strict):
    """Log-normal with the given ``mean`` of the variable itself and shape ``sigma`` (of its log)."""

    dist: Literal["lognormal"]
    mean: PositiveAmount
    sigma: NonNegativeFloat = 1.0


class Choice(_Strict):
    """One of ``values``, with optional ``weights`` (normalised)."""

    dist: Literal["choice"]
    values: list[Amount] = Field(min_length=1)
    weights: list[NonNegativeFloat] | None = None

    @model_validator(mode="after")
    def _weights_match(self) -> Choice:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"{len(self.weights)} weights for {len(self.values)} values")
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be 0")
        return self


DistributionSpec = Annotated[Constant | Uniform | Exponential | LogNormal | Choice, Field(discriminator="dist")]


def _number_is_constant(value: Any) -> Any:
    value = checked_amount(value)  # a resource's text that was no quantity: say why, here
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    if not isinstance(value, dict | BaseModel):  # a duration's text, a list, ... (a resource's text is converted)
        raise ValueError(f"{value!r}: expected a number or a distribution ({{dist: ..., ...}})")
    return value


# A bare number is shorthand for a constant.
Distribution = Annotated[DistributionSpec, BeforeValidator(_number_is_constant)]

_AMOUNT_FIELDS = ("value", "low", "high", "mean")  # a distribution's fields in the unit of what it draws


def _resource_units(value: Any) -> Any:
    """Each resource's request, a number or a distribution, with Kubernetes quantities converted to its unit."""
    if not isinstance(value, dict):
        return value
    converted = {}
    for name, spec in value.items():
        if isinstance(spec, dict):
            spec = {k: resource_amount(name, v) if k in _AMOUNT_FIELDS else v for k, v in spec.items()}
            if isinstance(spec.get("values"), list):
                spec["values"] = [resource_amount(name, v) for v in spec["values"]]
        elif isinstance(spec, int | float | str):
            spec = resource_amount(name, spec)
        converted[name] = spec
    return converted


# Resource name -> request: ``{cpu: 500m, memory: {dist: uniform, low: 128Mi, high: 2Gi}}``.
Requests = Annotated[dict[str, Distribution], BeforeValidator(_resource_units), Field(min_length=1)]


# --------------------------------------------------------------------- cluster
class NodeGroup(_Strict):
    """``count`` identical nodes."""

    count: int = Field(ge=1)
    capacity: Capacity
    labels: dict[str, str] = {}
    name: str | None = None


class NodeTrace(_Strict):
    """Nodes read from a trace file (the Alibaba openb node list)."""

    trace: Literal["openb"]
    path: str
    limit: int | None = Field(default=None, ge=1)
    # Keep this share of the nodes, picked evenly within each node shape (GPU model, GPUs,
    # cpu, memory), so a smaller model of the cluster keeps the trace's mix of machines.
    sample: Annotated[float, Field(gt=0, le=1)] | None = None
    # Put the nodes in a seeded random order (the scenario's seed). Where scores tie, the
    # lowest index wins, so this decides ties: the FGD artifact renames its nodes with a
    # random prefix (``syncClusterResourceList``) and its scheduler keeps the smallest name.
    shuffle: bool = False


class NodeRecording(_Strict):
    """The nodes of a live cluster's recording (``python -m orchlive record``): ``path`` is its folder.

    The nodes come in sorted id order, as the live master numbers them, and live through
    their recorded history (``orchsim.cluster.recorded_node_events``): a node that joined
    after the first submission is out until then; a lost one dies one failure timeout
    before the live master declared it lost; drains and returns happen when they did.
    ``failures: false`` leaves the losses out (what the failures cost: the same replay
    without them).
    """

    kind: Literal["orchlive"]
    path: str
    failures: bool = True


def _node_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "trace" if "trace" in value else "recording" if "kind" in value else "group"
    return "trace" if isinstance(value, NodeTrace) else "recording" if isinstance(value, NodeRecording) else "group"


NodeSpec = Annotated[
    Annotated[NodeGroup, Tag("group")]
    | Annotated[NodeTrace, Tag("trace")]
    | Annotated[NodeRecording, Tag("recording")],
    Discriminator(_node_kind),
]


class Cluster(_Strict):
    """The machines, and how failures are noticed.

    Attributes:
        heartbeat_interval: Seconds between worker heartbeats.
        failure_timeout: Seconds after the last heartbeat before a node is declared lost
            and its tasks are rescheduled (the lease TTL in ``orchlive``).
    """

    nodes: list[NodeSpec] = Field(min_length=1)
    heartbeat_interval: PositiveFloat = 5.0
    failure_timeout: PositiveFloat = 15.0
    # Resources backed by devices of 1000 units each (a GPU is 1000 milli-GPU): a node's
    # capacity of one must be whole devices, and a task takes a share of ONE device or
    # whole devices. ``[]`` treats every resource as one divisible amount per node.
    devices: list[str] = ["gpu"]


# --------------------------------------------------------------------- workload
# A task's priority: an integer (may be negative) or a distribution of non-negative values (rounded),
# within the live cluster's bound (``orchlive.limits.MAX_PRIORITY``).
MAX_PRIORITY = 10**9
Priority = Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)] | DistributionSpec


class _Source(_Strict):
    node_selector: dict[str, str] = {}
    # Higher goes first in the queue and, with ``scheduler.preemption``, may evict lower ones.
    priority: Priority = 0


class _Synthetic(_Source):
    """A generated source; ``name``, ``replicas`` and ``after`` make gangs and DAGs of its tasks.

    Attributes:
        name: How other entries refer to this one in ``after``.
        replicas: Each task is a gang of this many replicas, each asking ``resources``:
            all placed at once or none (at least ``min_replicas``, default all of them).
        after: Names of entries this one depends on: the i-th task of this entry waits
            for the i-th task of each of them (a DAG per job ``i``; counts must match).
        on: ``success``: a parent must complete; ``completion``: any end will do.
        if_parent_fails: With ``on: success``, a task whose parent failed (or was
            skipped, or can never run) ``fail``s or is ``skip``ped; either way it never runs.
    """

    count: int = Field(ge=1)
    resources: Requests
    duration: Distribution
    name: str | None = Field(default=None, min_length=1)
    replicas: int = Field(default=1, ge=1)
    min_replicas: int | None = Field(default=None, ge=1)
    after: list[str] = []
    on: Literal["success", "completion"] = "success"
    if_parent_fails: Literal["fail", "skip"] = "fail"

    @model_validator(mode="after")
    def _gang_sizes(self) -> _Synthetic:
        if self.min_replicas is not None and self.min_replicas > self.replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must be at most replicas ({self.replicas})")
        return self


class Poisson(_Synthetic):
    """Poisson arrivals at ``rate`` tasks per second from ``start``."""

    kind: Literal["poisson"]
    rate: PositiveFloat
    start: NonNegativeFloat = 0.0


class Burst(_Synthetic):
    """``count`` tasks at once at ``at`` (or spread evenly over ``over`` seconds)."""

    kind: Literal["burst"]
    at: NonNegativeFloat
    over: NonNegativeFloat = 0.0


class Diurnal(_Synthetic):
    """Non-homogeneous Poisson: ``rate * (1 + amplitude * sin(2 pi (t - start) / period))``."""

    kind: Literal["diurnal"]
    rate: PositiveFloat
    amplitude: Annotated[float, Field(ge=0, le=1)] = 0.5
    period: PositiveFloat = 86400.0
    start: NonNegativeFloat = 0.0


class _TraceSource(_Source):
    path: str
    limit: int | None = Field(default=None, ge=1)
    time_scale: PositiveFloat = 1.0  # multiply trace times (compress < 1, stretch > 1)
    # Keep this share of the jobs (after ``limit``), evenly spaced in submit order: the same time
    # window at a lower rate, for a cluster scaled down by the same share.
    sample: Annotated[float, Field(gt=0, le=1)] | None = None


class CsvTrace(_TraceSource):
    """CSV with columns submit_time, duration, cpu, memory[, more resources]."""

    kind: Literal["trace"]
    rebase: bool = False


class OpenbTrace(_TraceSource):
    """Alibaba openb pod list: cpu, memory, gpu, and creation and deletion times.

    ``mode: replay`` uses the real times. ``mode: arrivals`` replays the way the FGD paper
    (Weng et al., ATC 2023) does: pods arrive one every ``interval`` seconds in a seeded
    random order and never leave; with ``load``, pods are drawn (with replacement) until
    their total GPU request reaches ``load`` times the cluster's GPU capacity (1.3 in the
    paper), so what fails to fit measures fragmentation. ``fill: trace_then_clones`` is
    the artifact's own rule instead (``TunePodsByNodeTotalResource``): every trace pod
    once in a seeded shuffle, then random clones appended until the next clone's per-GPU
    share would pass the target. A pod's ``gpu_spec`` (GPU models it may use, ``A|B``)
    becomes its node selector on the node label ``gpu_model``.
    """

    kind: Literal["openb"]
    mode: Literal["replay", "arrivals"] = "replay"
    interval: PositiveFloat = 1.0
    load: PositiveFloat | None = None
    fill: Literal["resample", "trace_then_clones"] = "resample"


class SwfTrace(_TraceSource):
    """Standard Workload Format log; each processor becomes ``cpu_per_processor`` millicores.

    ``gangs: true`` makes each job a gang of one replica per processor (``cpu_per_processor``
    and ``memory_per_processor`` each), all placed at once: on a cluster of one node per
    processor, a job takes that many nodes together, as on the logged machine.
    """

    kind: Literal["swf"]
    gangs: bool = False
    cpu_per_processor: Annotated[float, BeforeValidator(amount_of("cpu")), Field(gt=0)] = 1000.0
    memory_per_processor: Annotated[float, BeforeValidator(amount_of("memory")), Field(ge=0)] = 0.0


class OrchliveRecording(_Source):
    """The tasks of a live cluster's recording (``python -m orchlive record``): ``path`` is its folder.

    Tasks arrive at their recorded submit times and run for their measured run time
    (``orchsim.traces.orchlive``). The folder is checked when the workload is built: a
    missing one is an error naming it.
    """

    kind: Literal["orchlive"]
    path: str
    limit: int | None = Field(default=None, ge=1)
    time_scale: PositiveFloat = 1.0
    sample: Annotated[float, Field(gt=0, le=1)] | None = None


def check_dependencies(workload: list[Any]) -> None:
    """Every ``after`` names an entry of the same count, and the entries form no cycle.

    Raises:
        ValueError: one line naming ``workload.<i>.after`` and the problem.
    """
    names: dict[str, int] = {}
    for i, source in enumerate(workload):
        name = getattr(source, "name", None)
        if name is not None:
            if name in names:
                raise ValueError(f"workload.{i}.name: {name!r} is also the name of workload.{names[name]}")
            names[name] = i
    parents: list[list[int]] = []
    for i, source in enumerate(workload):
        mine = []
        for parent in getattr(source, "after", []):
            if parent not in names:
                raise ValueError(f"workload.{i}.after: no workload entry is named {parent!r}")
            j = names[parent]
            if workload[j].count != source.count:
                raise ValueError(
                    f"workload.{i}.after: {parent!r} has {workload[j].count} tasks, this entry {source.count} "
                    "(the i-th task of each waits for the i-th of its parents)"
                )
            mine.append(j)
        parents.append(mine)
    try:
        topological_order(parents)
    except CycleError as err:
        cycle = " -> ".join(getattr(workload[k], "name", None) or str(k) for k in err.cycle)
        raise ValueError(f"workload.{err.cycle[0]}.after: a cycle of dependencies: {cycle}") from None


WorkloadSource = Annotated[
    Poisson | Burst | Diurnal | CsvTrace | OpenbTrace | SwfTrace | OrchliveRecording, Field(discriminator="kind")
]
