"""Scenario schema, part two: cluster events, an open set of kinds.

An event kind is one class: a subclass of ``ClusterEvent`` with ``kind:
Literal["name"]`` registers itself under that name, and scenario files can use it at
once (``events: [{kind: name, at: 60, ...}]``, errors naming ``events.<i>.<field>``).
What the simulator does with it is one handler, registered with
``orchsim.engine.node_events.handles``. The event also says how it scales with the
cluster (``scaled``, for ``orchsim.resize``) and which resources it brings
(``capacity_names``, for the cluster's resource list).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Field, SerializeAsAny

from orchsim.schema_base import STRICT, Capacity, NonNegativeFloat

__all__ = [
    "ClusterEvent",
    "CountedEvent",
    "EventEntry",
    "NodeDrain",
    "NodeFailure",
    "NodeJoin",
    "NodeLost",
    "NodeRecovery",
    "ScaleIn",
    "ScaleOut",
]


class ClusterEvent(BaseModel):
    """Something that happens to the cluster at time ``at`` (simulated seconds).

    Subclass it with ``kind: Literal["..."]`` to add a kind; ``KINDS`` maps names to classes.
    """

    model_config = STRICT
    KINDS: ClassVar[dict[str, type[ClusterEvent]]] = {}

    kind: str
    at: NonNegativeFloat

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        annotation = cls.model_fields["kind"].annotation
        if typing.get_origin(annotation) is Literal:
            for name in typing.get_args(annotation):
                ClusterEvent.KINDS[name] = cls

    def scaled(self, factor: float) -> ClusterEvent:
        """This event for a cluster ``factor`` times the size (default: unchanged)."""
        return self

    def capacity_names(self) -> list[str]:
        """Resources the event brings into the cluster (a scale-out's node shape), in order."""
        return []


class CountedEvent(ClusterEvent):
    """An event about ``count`` nodes; it scales by scaling the count (at least 1)."""

    count: int = Field(ge=1)

    def scaled(self, factor: float) -> ClusterEvent:
        return self.model_copy(update={"count": max(1, round(self.count * factor))})


class NodeFailure(CountedEvent):
    """``count`` running nodes (drawn with the scenario's seed) fail at ``at``."""

    kind: Literal["node_failure"]


class NodeRecovery(CountedEvent):
    """Up to ``count`` failed nodes (longest-failed first) come back empty at ``at``."""

    kind: Literal["node_recovery"]


class ScaleOut(CountedEvent):
    """``count`` new nodes join at ``at``."""

    kind: Literal["scale_out"]
    capacity: Capacity
    labels: dict[str, str] = {}

    def capacity_names(self) -> list[str]:
        return list(self.capacity)


class ScaleIn(CountedEvent):
    """``count`` nodes with the fewest tasks are drained at ``at``: no new tasks, removed when empty."""

    kind: Literal["scale_in"]


class NodeLost(ClusterEvent):
    """The node named ``node`` dies at ``at``: it stops heartbeating, as a killed worker does.

    Its last heartbeat is taken to be ``at``, so it is declared lost (its tasks go back to
    the queue) ``cluster.failure_timeout`` later, as the live master does when the
    worker's lease expires; until then the scheduler may still place tasks there. A
    recording's ``lost`` column (the moment the live master declared the loss) becomes
    one of these at ``lost - failure_timeout``.
    """

    kind: Literal["node_lost"]
    node: str = Field(min_length=1)


class NodeDrain(ClusterEvent):
    """The node named ``node`` is drained at ``at``: no new tasks; it leaves when its tasks have ended.

    A drain at 0 of a node that joins later (``node_join``) keeps it out until then.
    """

    kind: Literal["node_drain"]
    node: str = Field(min_length=1)


class NodeJoin(ScaleOut):
    """The node named ``node`` (in the cluster, but drained, absent or lost) joins, empty, at ``at``.

    ``capacity`` is the node's, so that a task only it could hold waits for it instead of
    being refused as unschedulable before it joins (the replay fills it in from the
    recording). One node: ``count`` is 1 and does not scale.
    """

    kind: Literal["node_join"]  # type: ignore[assignment]
    node: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=1)
    capacity: Capacity = {}

    def scaled(self, factor: float) -> ClusterEvent:
        return self


def _as_kind(item: Any) -> Any:
    """A mapping becomes the event class its ``kind`` names (validated there, errors in place)."""
    if not isinstance(item, dict):
        return item
    kind = item.get("kind")
    cls = ClusterEvent.KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        valid = ", ".join(sorted(ClusterEvent.KINDS))
        if kind is None:
            raise ValueError(f"an event needs a kind, one of: {valid}")
        raise ValueError(f"unknown event kind {kind!r}; valid kinds: {valid}")
    return cls.model_validate(item)


# One entry of ``Scenario.events``: any registered kind, dumped with its own fields.
EventEntry = SerializeAsAny[Annotated[ClusterEvent, BeforeValidator(_as_kind)]]
