"""What a worker checks of a task assigned to it before running it, against what it declared.

The master already decided on this node, so these only catch a master that saw another
capacity or other devices (a worker restarted with new flags): the task is then requeued
with the reason, never run on a node that cannot hold it. ``assigned_copy`` decides whether
the copy of the task that came with the assignment may be started without reading it again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from orchlive import devices as dev
from orchlive.models import Resources, Task
from orchlive.store_types import WatchEvent
from orchsim.scheduling import NodeMatrix, could_ever_fit, explain_never

__all__ = ["AssignmentCheck", "assigned_copy"]


def assigned_copy(event: WatchEvent, lease_deadline: float, registered: int) -> tuple[Task, int] | None:
    """The task as its placement wrote it into the inbox key, at the event's revision; None: read it.

    The start compares that revision, so a copy that moved on starts nothing that gets
    recorded, and the inbox key's delete (next in the same watch) stops what started. The
    copy is trusted only from a placement after the worker's registration at revision
    ``registered`` and while its lease deadline (``time.monotonic()``) has not passed: a
    worker back from a pause, whose node the master may have given up and whose watch
    brings old news, reads the task first, as it does for a key written before inbox keys
    carried their task.
    """
    if not event.value.startswith(b"{") or event.mod_revision <= registered or time.monotonic() >= lease_deadline:
        return None
    try:
        return Task.model_validate_json(event.value), event.mod_revision
    except ValueError:
        return None


class AssignmentCheck:
    """A worker's declared capacity and devices, and the two checks an assigned task passes."""

    def __init__(self, capacity: Resources, devices: Mapping[str, int]) -> None:
        self.capacity = capacity
        self.devices = devices
        self._shapes: dict[tuple[str, ...], NodeMatrix] = {}  # this worker as a one-node matrix, per resource names

    def never_fits(self, task: Task) -> str | None:
        """Why this worker could never hold ``task``, even empty; None if it could.

        The scheduling core's own never-fits rule, on this worker alone (a one-node matrix
        of its declared capacity, built once per set of resource names; a resource it does
        not declare counts as 0).
        """
        names = tuple(sorted(set(self.capacity) | {name for name, amount in task.resources.items() if amount > 0}))
        if (shape := self._shapes.get(names)) is None:
            shape = self._shapes[names] = NodeMatrix.from_capacities({n: [self.capacity.get(n, 0)] for n in names})
        request = shape.request_vector(dict(task.resources.items()))
        if could_ever_fit(shape, request, np.ones(1, dtype=bool)):
            return None
        return explain_never(shape, request)

    def grants(self, task: Task) -> dict[str, dev.Grant]:
        """The task's devices as grants, each checked against this worker's devices (ValueError if absent)."""
        grants = {}
        for kind, ids in task.devices.items():
            grant = dev.grant_for(kind, task.resources.get(kind, 0), ids)
            missing = [i for i in grant.ids if not 0 <= i < self.devices.get(kind, 0)]
            if missing:
                raise ValueError(f"{kind} {missing} (it has {self.devices.get(kind, 0)})")
            grants[kind] = grant
        return grants
